"""Reading the event outbox: a user's events after a position, where a reconnecting stream resumes, and the
purge of events past their retention."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from app.models.notifications import Event, EventRecipient
from app.models.users import User
from app.schemas.notifications import EventOut, EventPage
from app.services.auth import active_session


@dataclass(frozen=True)
class Resume:
    """Where a stream starts: after this position. `gap` when events the client asked for are gone (past
    retention) or its id is not one this server gave: it should reload its lists."""

    after: int
    gap: bool = False


def resume_point(session: Session, last_event_id: int | None) -> Resume:
    """Without Last-Event-ID a stream starts with what comes next; with it, right after that event."""
    oldest, newest = session.exec(select(func.min(Event.position), func.max(Event.position))).one()
    newest = newest or 0
    if last_event_id is None:
        return Resume(after=newest)
    if last_event_id > newest:
        return Resume(after=newest, gap=True)
    purged = oldest is not None and last_event_id < oldest - 1
    return Resume(after=last_event_id, gap=purged)


def addressed_to(
    session: Session, user_id: uuid.UUID, after: int, limit: int, *, up_to: int
) -> list[EventOut]:
    """The user's events at positions in (after, up_to], in order."""
    rows = session.exec(
        select(Event)
        .join(EventRecipient, col(EventRecipient.event_id) == Event.id)
        .where(
            col(EventRecipient.user_id) == user_id, col(Event.position) > after, col(Event.position) <= up_to
        )
        .order_by(col(Event.position))
        .limit(limit)
    ).all()
    return [view(row) for row in rows]


def newest_position(session: Session) -> int:
    return session.exec(select(func.max(Event.position))).one() or 0


def page(session: Session, user_id: uuid.UUID, resume: Resume, limit: int) -> EventPage:
    """One page for a polling client: its events after the resume point, and where to resume next."""
    # Positions become visible in order: once `newest` is seen, nothing at or below it can appear.
    newest = newest_position(session)
    items = addressed_to(session, user_id, resume.after, limit, up_to=newest)
    last = items[-1].id if len(items) == limit else max(resume.after, newest)
    return EventPage(items=items, last_event_id=last, gap=resume.gap)


def view(event: Event) -> EventOut:
    assert event.position is not None, "only sequenced events leave the server"
    return EventOut(
        id=event.position,
        type=event.type,
        case_id=event.case_id,
        circle_id=event.circle_id,
        object_id=event.object_id,
        created_at=event.created_at,
    )


def recipients_between(session: Session, positions: range) -> set[uuid.UUID]:
    """Who the events at these positions are addressed to: the streams to wake."""
    query = (
        select(EventRecipient.user_id)
        .join(Event, col(Event.id) == EventRecipient.event_id)
        .where(col(Event.position) >= positions.start, col(Event.position) < positions.stop)
        .distinct()
    )
    return set(session.exec(query).all())


def may_still_listen(session: Session, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    """Whether an open stream may go on: its login session not ended, its user still verified and active."""
    user = session.get(User, user_id)
    return user is not None and user.can_act and active_session(session, session_id, user_id) is not None


def purge(session: Session, before: datetime) -> int:
    """Deletes sequenced events created before `before`, with their recipients and webhook deliveries, but
    always keeps the newest one: the sequencer continues numbering after it."""
    newest = session.exec(select(func.max(Event.position))).one()
    if newest is None:
        return 0
    result = session.exec(
        delete(Event)
        .where(col(Event.created_at) < before, col(Event.position) < newest)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount

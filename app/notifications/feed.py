"""Reading the event outbox: a user's events after a position, where a reconnecting stream resumes, and the
purge of events past their retention."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, delete, func, or_, union, union_all
from sqlmodel import Session, col, select

from app.models.auth import AuthSession
from app.models.circles import CircleMember, MembershipStatus
from app.models.notifications import Event, EventRecipient
from app.models.users import User
from app.schemas.notifications import EventOut, EventPage


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


def _case_events(user_id: uuid.UUID) -> Select:
    """Ids and positions of the case events listed for the user."""
    return (
        select(col(Event.id), col(Event.position))
        .join(EventRecipient, col(EventRecipient.event_id) == Event.id)
        .where(col(EventRecipient.user_id) == user_id)
    )


def _circle_events(user_id: uuid.UUID) -> Select:
    """Ids and positions of the circle events that reach the user: of the circles where it was an active
    member when they happened (joined at or before, not yet left or removed), but those it caused. A rejoin
    reuses the membership row, so it reaches back to the latest joining only."""
    still_member = and_(
        col(CircleMember.status) == MembershipStatus.ACTIVE, col(CircleMember.ended_at).is_(None)
    )
    return (
        select(col(Event.id), col(Event.position))
        .join(CircleMember, col(CircleMember.circle_id) == Event.circle_id)
        .where(
            col(CircleMember.user_id) == user_id,
            col(Event.created_at) >= CircleMember.joined_at,
            or_(still_member, col(Event.created_at) < CircleMember.ended_at),
            or_(col(Event.actor_id).is_(None), col(Event.actor_id) != user_id),
        )
    )


def addressed_to(
    session: Session, user_id: uuid.UUID, after: int, limit: int, *, up_to: int
) -> list[EventOut]:
    """The user's events at positions in (after, up_to], in order: the first `limit` of its case events and
    of its circle events (each an index range scan), merged."""
    firsts = [
        query.where(col(Event.position) > after, col(Event.position) <= up_to)
        .order_by(col(Event.position))
        .limit(limit)
        .subquery()
        for query in (_case_events(user_id), _circle_events(user_id))
    ]
    chosen = union_all(*(select(first.c.id) for first in firsts)).subquery()
    rows = session.exec(
        select(Event).join(chosen, chosen.c.id == Event.id).order_by(col(Event.position)).limit(limit)
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
    """Who the events at these positions may be addressed to: the streams to wake (a woken stream that finds
    nothing new for it, such as an actor's, simply waits again)."""
    in_range = and_(col(Event.position) >= positions.start, col(Event.position) < positions.stop)
    case_recipients = select(EventRecipient.user_id).join(Event, col(Event.id) == EventRecipient.event_id)
    circle_members = (
        select(CircleMember.user_id)
        .join(Event, col(Event.circle_id) == CircleMember.circle_id)
        .where(col(CircleMember.status) == MembershipStatus.ACTIVE)
    )
    query = union(case_recipients.where(in_range), circle_members.where(in_range))
    return set(session.execute(query).scalars().all())


def may_still_listen(session: Session, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    """Whether an open stream may go on: its login session not ended, its user still verified and active."""
    user = session.get(User, user_id)
    if user is None or not user.can_act:
        return False
    active = select(AuthSession.id).where(
        col(AuthSession.id) == session_id,
        col(AuthSession.user_id) == user_id,
        col(AuthSession.revoked_at).is_(None),
    )
    return session.exec(active).first() is not None


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

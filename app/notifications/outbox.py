"""Events: what happened to a case, addressed to the users who may learn it, written in the transaction of the
action (an outbox), so that a rolled-back action leaves no event. An event holds ids, a type and a time only.

The actor is never a recipient: events tell each user what others did (or what the deadlines job did).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Set
from datetime import datetime

from sqlalchemy import bindparam, insert
from sqlmodel import Session, col, select

from app.authz import queries
from app.authz.cases import Member
from app.authz.notifications import may_be_notified
from app.authz.visibility import in_queue, is_specialist_of, participant_ids
from app.models.base import table_of
from app.models.cases import Case, Transition
from app.models.notifications import Event, EventRecipient, EventType, Webhook, WebhookDelivery
from app.models.rows import insert_rows
from app.models.users import User

# Set on a session that wrote events; the event sequencer wakes when it commits (app/notifications).
EVENTS_WRITTEN = "confrere.events_written"

TRANSITION_EVENTS = {
    Transition.CLAIM: EventType.CLAIMED,
    Transition.DECLINE: EventType.DECLINED,
    Transition.REQUEST_INFO: EventType.INFO_REQUESTED,
    Transition.PROVIDE_INFO: EventType.INFO_PROVIDED,
    Transition.ANSWER: EventType.REPORT_AVAILABLE,
    Transition.CLOSE: EventType.CLOSED,
    Transition.WITHDRAW: EventType.WITHDRAWN,
}


# Built once, like the queue audience below: every case action runs them.
_NEW_EVENT = insert(table_of(Event)).returning(table_of(Event).c.id)
_WEBHOOKS_OF = select(Webhook.id).where(col(Webhook.owner_id).in_(bindparam("owner_ids", expanding=True)))


def emit(
    session: Session,
    case: Case,
    event_type: EventType,
    candidates: Iterable[uuid.UUID | None],
    now: datetime,
    *,
    shared: Set[uuid.UUID],
    object_id: uuid.UUID | None = None,
    members: Mapping[uuid.UUID, Member] | None = None,
) -> int | None:
    """Writes the event for those candidates the policy lets learn of the case, and a pending delivery for
    each of their webhooks; nothing when nobody is left. The candidates are loaded, unless the caller
    gives `members` loaded already (holding every candidate who exists). The event's id, if written."""
    wanted = {user_id for user_id in candidates if user_id is not None}
    if members is None:
        members = queries.load_members(session, wanted)
    recipients = sorted(
        user_id
        for user_id in wanted
        if (member := members.get(user_id)) is not None and may_be_notified(member, case, shared)
    )
    if not recipients:
        return None
    # Core, with the id returned: no ORM flush of its own.
    event_id = session.execute(
        _NEW_EVENT,
        {"type": event_type.value, "case_id": case.id, "object_id": object_id, "created_at": now},
    ).scalar_one()
    # Core, not ORM objects: a queued case has a recipient per specialist of its specialty.
    insert_rows(
        session, EventRecipient, [{"user_id": user_id, "event_id": event_id} for user_id in recipients]
    )
    webhooks = session.exec(_WEBHOOKS_OF, params={"owner_ids": recipients}).all()
    session.add_all(
        WebhookDelivery(webhook_id=webhook_id, event_id=event_id, next_attempt_at=now, created_at=now)
        for webhook_id in webhooks
    )
    session.info[EVENTS_WRITTEN] = True
    return event_id


_QUEUE_AUDIENCE = queries.specialists_of(select(User.id), bindparam("specialty")).where(
    col(User.id) != bindparam("requester_id")
)


def queue_audience(session: Session, case: Case) -> set[uuid.UUID]:
    """The verified, active specialists of the case's specialty, but its requester: those whose queue
    shows the case while it waits there unclaimed and not named."""
    params = {"specialty": case.specialty, "requester_id": case.requester_id}
    return set(session.exec(_QUEUE_AUDIENCE, params=params).all())


def case_created(session: Session, case: Case, now: datetime, members: Mapping[uuid.UUID, Member]) -> None:
    """case.queued: to the named specialist, or to the specialty's queue. `members` holds the named
    specialist, or the specialty's specialists (queries.load_members(..., with_specialists_of=...)), the
    Python twin of queue_audience's query."""
    if case.named_specialist_id is not None:
        audience = {case.named_specialist_id}
    else:
        audience = {
            user_id
            for user_id, member in members.items()
            if user_id != case.requester_id and is_specialist_of(member, case.specialty)
        }
    emit(session, case, EventType.QUEUED, audience, now, shared=frozenset(), members=members)


def case_moved(
    session: Session, case: Case, action: Transition, actor_id: uuid.UUID, was_queued: bool, now: datetime
) -> None:
    """The event of a transition, for the case's participants; a claim or a withdrawal also tells the
    specialty's specialists that the case left their queue, and a decline that it is back in it."""
    shared = queries.shared_user_ids(session, case.id)
    recipients = participant_ids(case, shared)
    if was_queued:
        recipients |= queue_audience(session, case)
    emit(session, case, TRANSITION_EVENTS[action], recipients - {actor_id}, now, shared=shared)
    if action is Transition.DECLINE and in_queue(case):
        emit(session, case, EventType.QUEUED, queue_audience(session, case) - {actor_id}, now, shared=shared)


def case_shared(
    session: Session,
    case: Case,
    shared: Set[uuid.UUID],
    recipient_id: uuid.UUID,
    sharer_id: uuid.UUID,
    now: datetime,
) -> None:
    """case.shared: to the colleague whose devices just received the case's keys."""
    emit(session, case, EventType.SHARED, {recipient_id} - {sharer_id}, now, shared=shared)


def message_posted(
    session: Session,
    case: Case,
    shared: Set[uuid.UUID],
    message_id: uuid.UUID,
    author_id: uuid.UUID,
    now: datetime,
    members: Mapping[uuid.UUID, Member] | None = None,
) -> None:
    """message.posted: to the case's participants but its author (`members`: loaded already, holding
    them)."""
    recipients = message_audience(case, shared, author_id)
    emit(
        session,
        case,
        EventType.MESSAGE_POSTED,
        recipients,
        now,
        shared=shared,
        object_id=message_id,
        members=members,
    )


def message_audience(case: Case, shared: Set[uuid.UUID], author_id: uuid.UUID) -> set[uuid.UUID]:
    return participant_ids(case, shared) - {author_id}

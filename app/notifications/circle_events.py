"""Circle events (stream and webhooks): to the circle's members, written in the action's transaction like
case events (app/notifications/outbox.py). They hold the circle's id, a type, a time and at most the id of a
post or session: never content, never who wrote a post (a pseudonymous author stays unknown to members).
The actor is never a recipient."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Select, insert, literal
from sqlmodel import Session, col, select

from app.authz import queries
from app.models.circles import CircleMember, MembershipStatus
from app.models.notifications import Event, EventRecipient, EventType, Webhook, WebhookDelivery
from app.models.users import User
from app.notifications.outbox import EVENTS_WRITTEN


def _audience(circle_id: uuid.UUID, excluded: set[uuid.UUID], *columns: Any) -> Select:
    """The circle's verified, active members but the excluded, selected with `columns` by the database
    itself: a circle of thousands costs one statement, not a row per member through Python."""
    query = (
        select(*columns)
        .select_from(CircleMember)
        .join(User, col(User.id) == CircleMember.user_id)
        .where(
            col(CircleMember.circle_id) == circle_id,
            col(CircleMember.status) == MembershipStatus.ACTIVE,
            queries.acting_users(),
        )
    )
    return query.where(col(CircleMember.user_id).not_in(excluded)) if excluded else query


def emit(
    session: Session,
    circle_id: uuid.UUID,
    event_type: EventType,
    now: datetime,
    *,
    excluded: Iterable[uuid.UUID] = (),
    object_id: uuid.UUID | None = None,
) -> None:
    left_out = set(excluded)
    if session.execute(_audience(circle_id, left_out, CircleMember.user_id).limit(1)).first() is None:
        return
    event = Event(type=event_type.value, circle_id=circle_id, object_id=object_id, created_at=now)
    session.add(event)
    session.flush()
    event_id = cast(int, event.id)
    session.execute(
        insert(EventRecipient).from_select(
            ["user_id", "event_id"],
            _audience(circle_id, left_out, CircleMember.user_id, literal(event_id, BigInteger())),
        )
    )
    webhooks = session.exec(
        select(Webhook.id).where(
            col(Webhook.owner_id).in_(_audience(circle_id, left_out, CircleMember.user_id).scalar_subquery())
        )
    ).all()
    session.add_all(
        WebhookDelivery(webhook_id=webhook_id, event_id=event_id, next_attempt_at=now, created_at=now)
        for webhook_id in webhooks
    )
    session.info[EVENTS_WRITTEN] = True


def rotation_required(session: Session, circle_id: uuid.UUID, now: datetime) -> None:
    emit(session, circle_id, EventType.CIRCLE_ROTATION_REQUIRED, now)


def member_changed(
    session: Session, circle_id: uuid.UUID, user_id: uuid.UUID, *, joined: bool, now: datetime
) -> None:
    event = EventType.CIRCLE_MEMBER_JOINED if joined else EventType.CIRCLE_MEMBER_LEFT
    emit(session, circle_id, event, now, excluded={user_id})


def post_created(
    session: Session, circle_id: uuid.UUID, post_id: uuid.UUID, author_id: uuid.UUID, now: datetime
) -> None:
    """No author in the event: members learn that a post exists, and read who wrote it in the post."""
    emit(session, circle_id, EventType.CIRCLE_POST_CREATED, now, excluded={author_id}, object_id=post_id)


def session_round(
    session: Session, circle_id: uuid.UUID, session_id: uuid.UUID, actor_id: uuid.UUID | None, now: datetime
) -> None:
    excluded = {actor_id} if actor_id is not None else set()
    emit(session, circle_id, EventType.CIRCLE_SESSION_ROUND, now, excluded=excluded, object_id=session_id)

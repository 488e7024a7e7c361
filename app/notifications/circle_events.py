"""Circle events (stream and webhooks): to the circle's members, written in the action's transaction like
case events (app/notifications/outbox.py). They hold the circle's id, a type, a time and at most the id of a
post or session: never content, never who wrote a post (a pseudonymous author stays unknown to members).

One event row per circle event, whatever the circle's size: members receive it when they read their events
(app/notifications/feed.py), if they were active members when it happened. The actor, kept on the row and
never shown, is never a recipient. Webhook deliveries stay one row per member's webhook."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select
from sqlmodel import Session, col, select

from app.authz import queries
from app.models.circles import CircleMember, MembershipStatus
from app.models.notifications import Event, EventType, Webhook, WebhookDelivery
from app.models.users import User
from app.notifications.outbox import EVENTS_WRITTEN


def _audience(circle_id: uuid.UUID, actor_id: uuid.UUID | None, *columns: Any) -> Select:
    """The circle's verified, active members but the actor, selected with `columns` by the database itself."""
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
    return query.where(col(CircleMember.user_id) != actor_id) if actor_id is not None else query


def emit(
    session: Session,
    circle_id: uuid.UUID,
    event_type: EventType,
    now: datetime,
    *,
    actor_id: uuid.UUID | None = None,
    object_id: uuid.UUID | None = None,
) -> None:
    if session.execute(_audience(circle_id, actor_id, CircleMember.user_id).limit(1)).first() is None:
        return
    event = Event(
        type=event_type.value, circle_id=circle_id, object_id=object_id, actor_id=actor_id, created_at=now
    )
    session.add(event)
    session.flush()
    event_id = cast(int, event.id)
    webhooks = session.exec(
        select(Webhook.id).where(
            col(Webhook.owner_id).in_(_audience(circle_id, actor_id, CircleMember.user_id).scalar_subquery())
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
    emit(session, circle_id, event, now, actor_id=user_id)


def post_created(
    session: Session, circle_id: uuid.UUID, post_id: uuid.UUID, author_id: uuid.UUID, now: datetime
) -> None:
    """No author in the event: members learn that a post exists, and read who wrote it in the post."""
    emit(session, circle_id, EventType.CIRCLE_POST_CREATED, now, actor_id=author_id, object_id=post_id)


def session_round(
    session: Session, circle_id: uuid.UUID, session_id: uuid.UUID, actor_id: uuid.UUID | None, now: datetime
) -> None:
    emit(session, circle_id, EventType.CIRCLE_SESSION_ROUND, now, actor_id=actor_id, object_id=session_id)

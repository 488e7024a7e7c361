"""Notifications: the event outbox with its recipients, and webhook subscriptions with their deliveries.

An event says that something happened to a case or a circle, to whom it is addressed, and when: ids, a type
and a time, never anything sealed (DESIGN.md section 2). It is written in the transaction of the action it
reports. A case event lists its recipients (EventRecipient); a circle event has none: it reaches the circle's
members when they read (app/notifications/feed.py), so a post costs the same whatever the circle's size.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow


class EventType(StrEnum):
    QUEUED = "case.queued"
    CLAIMED = "case.claimed"
    DECLINED = "case.declined"
    INFO_REQUESTED = "case.info_requested"
    INFO_PROVIDED = "case.info_provided"
    MESSAGE_POSTED = "case.message_posted"
    SHARED = "case.shared"
    REPORT_AVAILABLE = "case.report_available"
    CLOSED = "case.closed"
    WITHDRAWN = "case.withdrawn"
    OVERDUE = "case.overdue"
    ESCALATED = "case.escalated"
    CIRCLE_POST_CREATED = "circle.post.created"
    CIRCLE_MEMBER_JOINED = "circle.member.joined"
    CIRCLE_MEMBER_LEFT = "circle.member.left"
    CIRCLE_ROTATION_REQUIRED = "circle.rotation.required"
    CIRCLE_SESSION_ROUND = "circle.session.round"


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        # The event sequencer scans events without a position (NULL) in insertion order.
        Index("ix_events_position_id", "position", "id"),
        # A member's circle events: per circle, in delivery order (app/notifications/feed.py).
        Index("ix_events_circle_position", "circle_id", "position"),
    )

    # Insertion order only. On PostgreSQL ids are not in commit order, so streams never resume by id.
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    # Delivery order: given by the single event sequencer after commit (app/notifications/sequencer.py);
    # the SSE `id:` and the `id` clients see. NULL until sequenced.
    position: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True, nullable=True))
    type: str = Field(sa_type=String(40))
    # The case or the circle the event is about (exactly one of them).
    case_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("cases.id"), nullable=True))
    circle_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("circles.id", ondelete="CASCADE"), nullable=True)
    )
    # The message an event is about (case.message_posted), the post (circle.post.created) or the
    # session (circle.session.round), else NULL.
    object_id: uuid.UUID | None = Field(default=None)
    # Who caused a circle event, who does not receive it. Never leaves the server: a pseudonymous author
    # stays unknown to members.
    actor_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("users.id"), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class EventRecipient(SQLModel, table=True):
    """One user a case event is addressed to, resolved when the event was written."""

    __tablename__ = "event_recipients"

    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), primary_key=True))
    event_id: int = Field(
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"),
            ForeignKey("events.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        )
    )


class Webhook(SQLModel, table=True):
    """An owner's subscription: every event addressed to the owner is POSTed, signed, to `url`."""

    __tablename__ = "webhooks"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), index=True, nullable=False))
    url: str = Field(sa_type=String(2048))
    # The signing secret, sealed with the server key and bound to this webhook's id (app/crypto/sealing.py).
    secret_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last attempt


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook: its attempts so far and when the next one is due."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The delivery worker takes pending deliveries that are due, earliest first.
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # The owner's log, newest first.
        Index("ix_webhook_deliveries_log", "webhook_id", "created_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    webhook_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False)
    )
    event_id: int = Field(
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"),
            ForeignKey("events.id", ondelete="CASCADE"),
            index=True,
            nullable=False,
        )
    )
    status: str = Field(default=DeliveryStatus.PENDING, sa_type=String(20))
    attempts: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False))
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The receiver's HTTP status, or NULL when no response came (see last_error).
    last_status_code: int | None = Field(default=None, sa_column=Column(SmallInteger, nullable=True))
    # A short code (`timeout`, `connection_error`, `http_status`, ...), never the receiver's body.
    last_error: str | None = Field(default=None, sa_type=String(40))
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

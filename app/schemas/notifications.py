"""Events (the SSE stream's and webhooks' payload) and webhook subscriptions with their delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.models.notifications import DeliveryStatus, EventType
from app.schemas.common import RequestModel, ResponseModel

_NEXT_CURSOR = "Pass as `cursor` to get the next page; null on the last."


class EventOut(ResponseModel):
    """Ids, a type and a time: never anything sealed, no names, no free text."""

    id: int = Field(description="Position in the event sequence: the SSE `id:`, increasing, no gaps.")
    type: EventType
    case_id: uuid.UUID | None = Field(default=None, description="The case of a `case.*` event.")
    circle_id: uuid.UUID | None = Field(default=None, description="The circle of a `circle.*` event.")
    object_id: uuid.UUID | None = Field(
        default=None,
        description="The message of a `case.message_posted` event, the post of a `circle.post.created` "
        "event, the session of a `circle.session.round` event; absent otherwise.",
    )
    created_at: datetime = Field(description="When the action happened.")


class EventPage(ResponseModel):
    """The JSON answer of GET /v1/events (without `Accept: text/event-stream`), for clients that poll."""

    items: list[EventOut]
    last_event_id: int = Field(description="Send it back as `Last-Event-ID` to get what comes next.")
    gap: bool = Field(
        description="Events after the given Last-Event-ID were purged (past retention) or the id is unknown: "
        "reload your case lists."
    )


class WebhookCreate(RequestModel):
    url: str = Field(
        min_length=8,
        max_length=2048,
        examples=["https://integration.hospital.example/confrere/events"],
        description="http(s) URL, no credentials; it must resolve to public addresses.",
    )
    secret: str = Field(
        min_length=32,
        max_length=256,
        description="Shared secret for the HMAC-SHA256 signatures (at least 32 characters, random); "
        "stored sealed and never returned.",
    )


class WebhookOut(ResponseModel):
    id: uuid.UUID
    url: str
    created_at: datetime


class DeliveryOut(ResponseModel):
    id: uuid.UUID = Field(description="Also sent as the `Confrere-Delivery` header.")
    event_id: int | None = Field(description="The event's position; null until it is sequenced.")
    event_type: EventType
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="When the next attempt is due; null once settled.")
    last_attempt_at: datetime | None
    last_status_code: int | None = Field(description="The receiver's HTTP status on the last attempt.")
    last_error: str | None = Field(
        description="`timeout`, `connection_error`, `target_not_allowed`, `http_status`, "
        "`secret_unavailable`, `delivery_error`, or null."
    )
    delivered_at: datetime | None
    created_at: datetime


class DeliveryPage(ResponseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = Field(description=_NEXT_CURSOR)

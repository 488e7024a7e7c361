"""Webhook subscriptions and their delivery log; the delivery worker's side: taking due deliveries and
recording attempts (the HTTP part is app/notifications/delivery.py).

A webhook carries its owner's events, exactly those the owner's event stream shows: a webhook is another way
for a clinician (or the hospital system acting for them) to receive their own notifications, so it can
never widen who learns what.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
import httpx
from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from app.authz.queries import acting_users
from app.config import Settings
from app.crypto.sealing import SecretSealer
from app.errors import Conflict, InvalidInput, NotFound
from app.models.notifications import DeliveryStatus, Event, Webhook, WebhookDelivery
from app.models.users import User
from app.notifications import egress, feed
from app.platform.keyset import Keyset
from app.schemas.notifications import DeliveryOut, DeliveryPage, EventOut, WebhookCreate

NEWEST_FIRST = Keyset(WebhookDelivery.created_at, WebhookDelivery.id, descending=True)


class WebhookNotFound(NotFound):
    code = "webhook_not_found"
    title = "No such webhook"


class WebhookUrlNotAllowed(InvalidInput):
    code = "webhook_url_not_allowed"
    title = "Webhooks go to http(s) URLs on public addresses"


class WebhookLimitReached(Conflict):
    code = "webhook_limit_reached"
    title = "You have as many webhooks as allowed: delete one first"


def secret_context(webhook_id: uuid.UUID) -> bytes:
    return b"confrere/v1/webhook-secret/" + webhook_id.bytes


async def checked_target(url: str, settings: Settings) -> httpx.URL | WebhookUrlNotAllowed:
    """The webhook URL, parsed and its host resolved to allowed addresses, or why not. Called before the
    request's transaction opens: a DNS answer can take seconds, and on SQLite a transaction holds the one
    write lock. The refusal is returned, to be raised by `register` inside the transaction, where it is
    audited."""
    try:
        parsed = egress.parse(url)
        with anyio.fail_after(settings.webhook_timeout_seconds):
            await anyio.to_thread.run_sync(
                egress.resolve, parsed, settings.webhook_allow_private_targets, abandon_on_cancel=True
            )
    except TimeoutError:
        return WebhookUrlNotAllowed("the host did not resolve in time")
    except egress.TargetNotAllowed as refused:
        return WebhookUrlNotAllowed(refused.reason)
    return parsed


def register(
    session: Session,
    owner_id: uuid.UUID,
    target: httpx.URL | WebhookUrlNotAllowed,
    request: WebhookCreate,
    sealer: SecretSealer,
    settings: Settings,
    now: datetime,
) -> Webhook:
    """Registers a webhook to `target`, the answer of `checked_target` for `request.url`."""
    if isinstance(target, WebhookUrlNotAllowed):
        raise target
    # The owner's row, locked, serializes one user's registrations (PostgreSQL): otherwise concurrent ones
    # all count below the cap and all insert. SQLite runs write transactions one at a time anyway.
    session.exec(select(User.id).where(col(User.id) == owner_id).with_for_update())
    count = session.exec(
        select(func.count()).select_from(Webhook).where(col(Webhook.owner_id) == owner_id)
    ).one()
    if count >= settings.max_webhooks_per_user:
        raise WebhookLimitReached()
    webhook_id = uuid.uuid4()
    webhook = Webhook(
        id=webhook_id,
        owner_id=owner_id,
        url=str(target),
        secret_sealed=sealer.seal(request.secret.encode(), secret_context(webhook_id)),
        created_at=now,
    )
    session.add(webhook)
    return webhook


def list_own(session: Session, owner_id: uuid.UUID) -> list[Webhook]:
    query = (
        select(Webhook)
        .where(col(Webhook.owner_id) == owner_id)
        .order_by(col(Webhook.created_at), col(Webhook.id))
    )
    return list(session.exec(query).all())


def get_own(session: Session, owner_id: uuid.UUID, webhook_id: uuid.UUID) -> Webhook:
    """The caller's webhook; someone else's answers 404 like a missing one."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or webhook.owner_id != owner_id:
        raise WebhookNotFound()
    return webhook


def remove(session: Session, owner_id: uuid.UUID, webhook_id: uuid.UUID) -> None:
    """Deletes the webhook and its delivery log (the database cascades); pending deliveries are dropped."""
    webhook = get_own(session, owner_id, webhook_id)
    session.execute(delete(Webhook).where(col(Webhook.id) == webhook.id))


def delivery_log(
    session: Session, owner_id: uuid.UUID, webhook_id: uuid.UUID, *, limit: int, cursor: str | None
) -> DeliveryPage:
    webhook = get_own(session, owner_id, webhook_id)
    query = select(WebhookDelivery).where(col(WebhookDelivery.webhook_id) == webhook.id)
    if cursor is not None:
        query = query.where(NEWEST_FIRST.after(cursor))
    rows = list(session.exec(query.order_by(*NEWEST_FIRST.order_by()).limit(limit + 1)).all())
    page = NEWEST_FIRST.page(rows, limit)
    events = {
        event.id: event
        for event in session.exec(
            select(Event).where(col(Event.id).in_([row.event_id for row in page.items]))
        )
    }
    return DeliveryPage(
        items=[_delivery_view(row, events[row.event_id]) for row in page.items], next_cursor=page.next_cursor
    )


def _delivery_view(row: WebhookDelivery, event: Event) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        event_id=event.position,
        event_type=event.type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == DeliveryStatus.PENDING else None,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )


@dataclass(frozen=True)
class DueDelivery:
    id: uuid.UUID
    webhook_id: uuid.UUID
    url: str
    secret_sealed: bytes
    event: EventOut


def take_due(session: Session, now: datetime, *, limit: int, lease: timedelta) -> list[DueDelivery]:
    """Pending deliveries that are due, of sequenced events, to owners who may still act; each is leased
    (its next attempt moved past the lease) so that other workers leave it alone meanwhile. A worker that
    dies mid-attempt leaves it due again when the lease ends: delivery is at least once."""
    rows = session.exec(
        select(WebhookDelivery, Webhook, Event)
        .join(Webhook, col(Webhook.id) == WebhookDelivery.webhook_id)
        .join(Event, col(Event.id) == WebhookDelivery.event_id)
        .join(User, col(User.id) == Webhook.owner_id)
        .where(
            col(WebhookDelivery.status) == DeliveryStatus.PENDING,
            col(WebhookDelivery.next_attempt_at) <= now,
            col(Event.position).is_not(None),
            acting_users(),
        )
        .order_by(col(WebhookDelivery.next_attempt_at), col(Event.position))
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    ).all()
    due = []
    for delivery, webhook, event in rows:
        delivery.next_attempt_at = now + lease
        due.append(
            DueDelivery(
                id=delivery.id,
                webhook_id=webhook.id,
                url=webhook.url,
                secret_sealed=webhook.secret_sealed,
                event=feed.view(event),
            )
        )
    return due


@dataclass(frozen=True)
class Attempt:
    status_code: int | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """Exponential backoff: base, 2 x base, 4 x base, ... capped."""
    seconds = settings.webhook_retry_base_seconds * 2 ** (attempts - 1)
    return timedelta(seconds=min(seconds, settings.webhook_retry_max_seconds))


def record(
    session: Session, delivery_id: uuid.UUID, attempt: Attempt, settings: Settings, now: datetime
) -> None:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:  # the webhook was deleted during the attempt
        return
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code, delivery.last_error = attempt.status_code, attempt.error
    if attempt.succeeded:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
    elif delivery.attempts >= settings.webhook_max_attempts:
        delivery.status = DeliveryStatus.FAILED
    else:
        delivery.next_attempt_at = now + retry_delay(settings, delivery.attempts)

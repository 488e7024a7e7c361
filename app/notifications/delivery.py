"""Webhook delivery: POST each due event, signed, to its webhook; record the outcome; retry with backoff.

No database session is held during an HTTP call: deliveries are taken (leased) in one short transaction,
sent, and each outcome recorded in another. A pass sends to its webhooks side by side (asyncio, on the
worker's own thread), each attempt within the webhook timeout in all.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine

from app.config import Settings
from app.crypto.sealing import SealingError, SecretSealer
from app.crypto.webhooks import SIGNATURE_HEADER, signature_header
from app.models.base import utcnow
from app.notifications import egress, webhooks
from app.notifications.webhooks import Attempt, DueDelivery
from app.platform.background import BackgroundLoop
from app.runtime.database import transaction

logger = logging.getLogger(__name__)

BATCH_SIZE = 20
USER_AGENT = "Confrere-Webhooks/1"


def http_client(settings: Settings) -> httpx.AsyncClient:
    # No redirects (they could lead inward) and no proxy from the environment (the address is pinned).
    return httpx.AsyncClient(
        timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
    )


def deliver_due(engine: Engine, sealer: SecretSealer, settings: Settings, now: datetime | None = None) -> int:
    """One pass: up to BATCH_SIZE due deliveries; how many were attempted. `now`, when given, is the clock
    deliveries are due and rescheduled by (tests move it); signatures carry the real time."""
    lease = timedelta(seconds=BATCH_SIZE * settings.webhook_timeout_seconds + 60)
    with transaction(engine) as session:
        due = webhooks.take_due(session, now or utcnow(), limit=BATCH_SIZE, lease=lease)
    if not due:
        return 0
    attempts = asyncio.run(_send_all(due, sealer, settings))
    for delivery, attempt in attempts:
        with transaction(engine) as session:
            webhooks.record(session, delivery.id, attempt, settings, now or utcnow())
    return len(attempts)


async def _send_all(
    due: list[DueDelivery], sealer: SecretSealer, settings: Settings
) -> list[tuple[DueDelivery, Attempt]]:
    """Each webhook's deliveries in their order, the webhooks side by side: a receiver that is slow or down
    delays its own deliveries only."""
    by_webhook: defaultdict[uuid.UUID, list[DueDelivery]] = defaultdict(list)
    for delivery in due:
        by_webhook[delivery.webhook_id].append(delivery)
    async with http_client(settings) as client:
        groups = await asyncio.gather(
            *(_send_in_order(deliveries, sealer, settings, client) for deliveries in by_webhook.values())
        )
    return [attempt for group in groups for attempt in group]


async def _send_in_order(
    deliveries: list[DueDelivery], sealer: SecretSealer, settings: Settings, client: httpx.AsyncClient
) -> list[tuple[DueDelivery, Attempt]]:
    # After a failed attempt the webhook's other deliveries are left to their lease (then due again): a
    # receiver that is down or slow costs one attempt a pass, not one per queued event.
    attempts = []
    for delivery in deliveries:
        attempt = await send(delivery, sealer, settings, client)
        attempts.append((delivery, attempt))
        if attempt.error is not None:
            break
    return attempts


async def send(
    delivery: DueDelivery, sealer: SecretSealer, settings: Settings, client: httpx.AsyncClient
) -> Attempt:
    """One attempt, within `webhook_timeout_seconds` in all: httpx's timeouts bound each read, so a receiver
    that answers a byte at a time would otherwise hold the attempt as long as it likes."""
    try:
        async with asyncio.timeout(settings.webhook_timeout_seconds):
            return await _attempt(delivery, sealer, settings, client)
    except TimeoutError:
        return Attempt(error="timeout")


async def _attempt(
    delivery: DueDelivery, sealer: SecretSealer, settings: Settings, client: httpx.AsyncClient
) -> Attempt:
    try:
        secret = sealer.open(delivery.secret_sealed, webhooks.secret_context(delivery.webhook_id))
        url = egress.parse(delivery.url)
        address = await asyncio.to_thread(egress.resolve, url, settings.webhook_allow_private_targets)
    except SealingError:
        logger.error("webhook %s: its secret does not open under this server key", delivery.webhook_id)
        return Attempt(error="secret_unavailable")
    except egress.TargetNotAllowed:
        return Attempt(error="target_not_allowed")
    body = delivery.event.model_dump_json(exclude_none=True).encode()
    target, host_headers, extensions = egress.pinned_request(url, address)
    headers = {
        **host_headers,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(secret, int(time.time()), body),
        "Confrere-Event-Id": str(delivery.event.id),
        "Confrere-Event-Type": delivery.event.type,
        "Confrere-Delivery": str(delivery.id),
    }
    try:
        # Streamed and closed unread: a receiver's answer body is never needed, whatever its size.
        async with client.stream(
            "POST", target, content=body, headers=headers, extensions=extensions
        ) as response:
            status = response.status_code
    except httpx.TimeoutException:
        return Attempt(error="timeout")
    except httpx.HTTPError:
        return Attempt(error="connection_error")
    except Exception:
        # Anything else (an address httpx will not take, say) is still an attempt: counted, retried, and
        # given up after the last one, never left holding its lease.
        logger.exception("webhook %s: delivery failed unexpectedly", delivery.webhook_id)
        return Attempt(error="delivery_error")
    return Attempt(status_code=status, error=None if 200 <= status < 300 else "http_status")


class DeliveryWorker(BackgroundLoop):
    """Delivery passes in a daemon thread: every interval, at once when woken (new events sequenced here),
    and back to back while passes are full."""

    name = "webhook-delivery"

    def __init__(self, engine: Engine, sealer: SecretSealer, settings: Settings) -> None:
        super().__init__()
        self._engine = engine
        self._sealer = sealer
        self._settings = settings

    def run_pass(self) -> float:
        attempted = deliver_due(self._engine, self._sealer, self._settings)
        return 0 if attempted == BATCH_SIZE else self._settings.webhook_delivery_interval_seconds

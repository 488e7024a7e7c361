"""Webhook delivery: POST each due event, signed, to its webhook; record the outcome; retry with backoff.

No database session is held during an HTTP call: deliveries are taken (leased) in one short transaction,
sent, and each outcome recorded in another.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine

from app.background import BackgroundLoop
from app.config import Settings
from app.crypto.sealing import SealingError, SecretSealer
from app.crypto.webhooks import SIGNATURE_HEADER, signature_header
from app.db import transaction
from app.models.base import utcnow
from app.notifications import egress
from app.services import webhooks
from app.services.webhooks import Attempt, DueDelivery

logger = logging.getLogger(__name__)

BATCH_SIZE = 20
USER_AGENT = "Confrere-Webhooks/1"


def http_client(settings: Settings) -> httpx.Client:
    # No redirects (they could lead inward) and no proxy from the environment (the address is pinned).
    return httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False)


def deliver_due(
    engine: Engine,
    sealer: SecretSealer,
    settings: Settings,
    client: httpx.Client,
    now: datetime | None = None,
) -> int:
    """One pass: up to BATCH_SIZE due deliveries, attempted once each; how many were attempted. `now`, when
    given, is the clock deliveries are due and rescheduled by (tests move it); signatures carry the real
    time."""
    lease = timedelta(seconds=BATCH_SIZE * settings.webhook_timeout_seconds + 60)
    with transaction(engine) as session:
        due = webhooks.take_due(session, now or utcnow(), limit=BATCH_SIZE, lease=lease)
    for delivery in due:
        attempt = send(delivery, sealer, settings, client)
        with transaction(engine) as session:
            webhooks.record(session, delivery.id, attempt, settings, now or utcnow())
    return len(due)


def send(delivery: DueDelivery, sealer: SecretSealer, settings: Settings, client: httpx.Client) -> Attempt:
    try:
        secret = sealer.open(delivery.secret_sealed, webhooks.secret_context(delivery.webhook_id))
        url = egress.parse(delivery.url)
        address = egress.resolve(url, settings.webhook_allow_private_targets)
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
        with client.stream("POST", target, content=body, headers=headers, extensions=extensions) as response:
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
        self._client: httpx.Client | None = None

    def run(self) -> None:
        with http_client(self._settings) as self._client:
            super().run()

    def run_pass(self) -> float:
        assert self._client is not None
        attempted = deliver_due(self._engine, self._sealer, self._settings, self._client)
        return 0 if attempted == BATCH_SIZE else self._settings.webhook_delivery_interval_seconds

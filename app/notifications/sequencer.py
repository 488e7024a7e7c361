"""The event sequencer: gives committed events their delivery positions 1, 2, 3, ... (the SSE `id:`).

Why not deliver by the insertion id: on PostgreSQL ids are taken when a row is inserted, not when its
transaction commits, so event 41 may become visible after event 42 was streamed; a client resuming from 42
would never see 41. Holding back ids above the oldest transaction still in flight needs xid bookkeeping
that SQLite lacks. Instead, as the audit log does, one sequencer at a time (a PostgreSQL advisory lock;
SQLite has one writer anyway) numbers the events that have committed, after the last position, in one
transaction. A late commit simply gets a later position; positions become visible in order and without
gaps, so `position > Last-Event-ID` misses nothing.

Latency: a commit that wrote events wakes this process's sequencer at once (`after_commit` below); events
written elsewhere (another worker, the jobs CLI) are picked up by the fallback poll. After numbering a
batch it publishes the range: NOTIFY on PostgreSQL (every API worker listens), a direct call on SQLite.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from app.models.base import table_of
from app.models.notifications import Event
from app.notifications.outbox import EVENTS_WRITTEN
from app.platform.background import BackgroundLoop
from app.platform.positions import number_rows, unnumbered_in_order

logger = logging.getLogger(__name__)

EVENTS = table_of(Event)
CHANNEL = "confrere_events"
# pg_try_advisory_xact_lock key: "cfevents" in ASCII (the audit sequencer holds another key).
ADVISORY_LOCK_KEY = 0x6366_6576_656E_7473
DEFAULT_BATCH_SIZE = 1000
LOCK_RETRY_SECONDS = 0.05

_WAKE_ON_COMMIT: WeakKeyDictionary[Engine, threading.Event] = WeakKeyDictionary()


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop(EVENTS_WRITTEN, False):
        bind = session.get_bind()
        wake = _WAKE_ON_COMMIT.get(bind if isinstance(bind, Engine) else bind.engine)
        if wake is not None:
            wake.set()


def sequence_batch(engine: Engine, batch_size: int = DEFAULT_BATCH_SIZE) -> range | None:
    """Numbers up to batch_size committed events; the positions given (empty when none waited), or None
    when another sequencer holds the lock."""
    with engine.begin() as connection:
        postgres = connection.dialect.name == "postgresql"
        locked = select(func.pg_try_advisory_xact_lock(ADVISORY_LOCK_KEY))
        if postgres and not connection.execute(locked).scalar():
            return None
        pending = list(
            connection.execute(unnumbered_in_order(select(EVENTS.c.id), EVENTS).limit(batch_size)).scalars()
        )
        # The newest event is never purged (app/notifications/feed.py), so positions never restart.
        last = connection.execute(select(func.max(EVENTS.c.position))).scalar() or 0
        if not pending:
            return range(last + 1, last + 1)
        number_rows(connection, EVENTS, pending, last + 1)
        positions = range(last + 1, last + 1 + len(pending))
        if postgres:
            # Sent at commit, to every listening worker: the range whose recipients to wake.
            payload = f"{positions.start}:{positions.stop - 1}"
            connection.execute(select(func.pg_notify(CHANNEL, payload)))
    return positions


def sequence_pending(engine: Engine, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Numbers batches until none is full; how many events were numbered (0 if another sequencer ran)."""
    total = 0
    while True:
        positions = sequence_batch(engine, batch_size)
        total += len(positions or ())
        if positions is None or len(positions) < batch_size:
            return total


class BackgroundEventSequencer(BackgroundLoop):
    """The sequencer as a daemon thread: woken by commits that wrote events, else polling every interval.
    `published` receives each numbered range after its commit."""

    name = "event-sequencer"
    retry_seconds = 2.0

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float,
        published: Callable[[range], None],
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__()
        self._engine = engine
        self._interval = interval
        self._published = published
        self._batch_size = batch_size

    def start(self) -> None:
        _WAKE_ON_COMMIT[self._engine] = self._wake
        super().start()

    def stop(self) -> None:
        _WAKE_ON_COMMIT.pop(self._engine, None)
        super().stop()

    def run_pass(self) -> float:
        positions = sequence_batch(self._engine, self._batch_size)
        if positions is None:  # another worker is numbering; ours may have committed after its scan
            return LOCK_RETRY_SECONDS
        if positions:
            self._publish(positions)
        return 0 if len(positions) == self._batch_size else self._interval

    def _publish(self, positions: range) -> None:
        try:
            self._published(positions)
        except Exception:
            # Streams still poll at every heartbeat and the delivery worker on its interval.
            logger.exception("could not publish event positions %s", positions)

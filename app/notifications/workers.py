"""The notification machinery of one API process, started and stopped by the app's lifespan.

Every process runs the event sequencer (one at a time numbers, under a lock), the webhook delivery worker
(deliveries are leased), on PostgreSQL a LISTEN thread that wakes its streams, and unless disabled the
deadline jobs. Nothing here is needed for correctness of a single request: streams also poll at every
heartbeat and deliveries on their interval.
"""

from __future__ import annotations

from sqlalchemy import Engine

from app.config import Settings
from app.crypto.sealing import SecretSealer
from app.notifications.delivery import DeliveryWorker
from app.notifications.jobs import BackgroundJobs
from app.notifications.sequencer import BackgroundEventSequencer
from app.notifications.stream import EventStreams
from app.notifications.wakeup import Dispatcher, PostgresListener, StreamWaker
from app.platform.background import BackgroundLoop


class Notifications:
    def __init__(self, engine: Engine, read_engine: Engine, sealer: SecretSealer, settings: Settings) -> None:
        waker = StreamWaker(settings.events_max_streams_per_user)
        # Streams and wake-ups only read: on SQLite they must not queue for the write lock
        # (app.runtime.database).
        self.streams = EventStreams(read_engine, waker, settings)
        self._dispatcher = Dispatcher(read_engine, waker)
        self._delivery = DeliveryWorker(engine, sealer, settings)
        postgres = engine.dialect.name == "postgresql"
        # On PostgreSQL every process hears the sequencer's NOTIFY, its own included; SQLite has one process.
        self._listener = PostgresListener(engine, self._dispatcher) if postgres else None
        workers: list[BackgroundLoop | None] = [
            self._listener,
            BackgroundEventSequencer(
                engine, interval=settings.events_sequencer_interval_seconds, published=self._published
            ),
            self._delivery,
            BackgroundJobs(engine, settings) if settings.jobs_in_process else None,
        ]
        self._workers = [worker for worker in workers if worker is not None]

    def _published(self, positions: range) -> None:
        if self._listener is None:
            self._dispatcher.published(positions)
        self._delivery.wake()

    def start(self) -> None:
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        for worker in reversed(self._workers):
            worker.stop()

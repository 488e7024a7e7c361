"""Waking the open event streams of this process when events addressed to their users are sequenced.

A stream waits on its own asyncio event; any thread may wake it. The sequencer publishes each numbered range
(directly on SQLite; on PostgreSQL through NOTIFY, which a listener thread in every worker receives), the
users those events are addressed to are looked up once, and only their streams wake and query.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Engine

from app.notifications import feed
from app.notifications.sequencer import CHANNEL
from app.platform.background import BackgroundLoop
from app.runtime.database import new_session

# How long a stop may wait for the LISTEN loop; a poll costs one select() on an idle socket.
LISTEN_POLL_SECONDS = 0.25
RECONNECT_SECONDS = 2.0


class Waiter:
    """One stream's wake-up: created in the stream's event loop, set from any thread."""

    def __init__(self, user_id: uuid.UUID) -> None:
        self.user_id = user_id
        # Set when a newer stream of the same user took this one's place (StreamWaker.subscribe).
        self.superseded = False
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def wake(self) -> None:
        # A closed loop means the stream is gone.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, seconds: float) -> bool:
        """True when woken, False after `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


class StreamWaker:
    """The open streams of this process, at most `max_per_user` a user: each costs a read per wake-up and
    heartbeat, so one account opening streams without end would tie up the worker threads. A new stream
    past the cap ends the user's oldest, which its client (a tab left open) may reopen with Last-Event-ID."""

    def __init__(self, max_per_user: int) -> None:
        self._max_per_user = max_per_user
        self._lock = threading.Lock()
        # Insertion-ordered, so the first of a user's waiters is their oldest stream.
        self._waiters: defaultdict[uuid.UUID, dict[Waiter, None]] = defaultdict(dict)

    def subscribe(self, user_id: uuid.UUID) -> Waiter:
        waiter = Waiter(user_id)
        with self._lock:
            streams = self._waiters[user_id]
            superseded = []
            while len(streams) >= self._max_per_user:
                oldest = next(iter(streams))
                del streams[oldest]
                superseded.append(oldest)
            streams[waiter] = None
        for oldest in superseded:
            oldest.superseded = True
            oldest.wake()
        return waiter

    def unsubscribe(self, waiter: Waiter) -> None:
        with self._lock:
            waiters = self._waiters.get(waiter.user_id)
            if waiters is not None:
                waiters.pop(waiter, None)
                if not waiters:
                    del self._waiters[waiter.user_id]

    @property
    def listening(self) -> bool:
        with self._lock:
            return bool(self._waiters)

    def wake(self, user_ids: Iterable[uuid.UUID]) -> None:
        with self._lock:
            waiters = [waiter for user_id in user_ids for waiter in self._waiters.get(user_id, ())]
        for waiter in waiters:
            waiter.wake()

    def wake_all(self) -> None:
        with self._lock:
            waiters = [waiter for group in self._waiters.values() for waiter in group]
        for waiter in waiters:
            waiter.wake()


class Dispatcher:
    """Turns a published range of positions into wake-ups of the streams it concerns."""

    def __init__(self, engine: Engine, waker: StreamWaker) -> None:
        self._engine = engine
        self.waker = waker

    def published(self, positions: range) -> None:
        if not positions or not self.waker.listening:
            return
        with new_session(self._engine) as session:
            users = feed.recipients_between(session, positions)
        self.waker.wake(users)


def parse_payload(payload: str) -> range | None:
    first, _, last = payload.partition(":")
    if not (first.isdigit() and last.isdigit()):
        return None
    return range(int(first), int(last) + 1)


class PostgresListener(BackgroundLoop):
    """LISTEN on a connection of its own (outside the pool), in a daemon thread; reconnects after errors
    and then wakes every stream, since notifications sent meanwhile were lost."""

    name = "event-listener"
    retry_seconds = RECONNECT_SECONDS
    stop_timeout = 5.0

    def __init__(self, engine: Engine, dispatcher: Dispatcher) -> None:
        super().__init__()
        self._engine = engine
        self._dispatcher = dispatcher

    def _connect(self):
        dialect = self._engine.dialect
        args, kwargs = dialect.create_connect_args(self._engine.url)
        connection = dialect.connect(*args, **kwargs)
        connection.autocommit = True
        connection.execute(f"LISTEN {CHANNEL}")
        return connection

    def run_pass(self) -> float:
        """Listens until stopped; an error ends the pass, and the loop reconnects."""
        connection = self._connect()
        try:
            self._dispatcher.waker.wake_all()
            while not self.stopping:
                for notify in connection.notifies(timeout=LISTEN_POLL_SECONDS):
                    if (positions := parse_payload(notify.payload)) is not None:
                        self._dispatcher.published(positions)
        finally:
            connection.close()
        return 0

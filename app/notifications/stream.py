"""The Server-Sent Events stream of one user's events (GET /v1/events).

The stream holds neither a database session nor a worker thread while it waits: each read is a short
session in a pool thread, and between reads it sleeps on its wake-up (app/notifications/wakeup.py) or until
the next heartbeat. At every heartbeat it checks that the login session is still open and the account still
active, and it ends after `events_stream_max_seconds`: clients reconnect with Last-Event-ID, so a revoked
session or a suspended account stops receiving within a heartbeat.

Wire format (docs/notifications.md): each event is `id: <position>`, `event: <type>`, `data: <JSON>`.
A block with only an `id:` field moves the client's Last-Event-ID forward past events addressed to others,
so a reconnection after a quiet spell does not rescan them nor report them purged.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import anyio
from sqlalchemy import Engine

from app.config import Settings
from app.notifications import feed
from app.notifications.feed import Resume
from app.notifications.wakeup import StreamWaker
from app.runtime.database import new_session
from app.schemas.notifications import EventOut

BATCH_SIZE = 100
RETRY_MILLISECONDS = 3000
GAP_EVENT = "stream.gap"


def format_event(event: EventOut) -> str:
    data = event.model_dump_json(exclude_none=True)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"


class EventStreams:
    def __init__(self, engine: Engine, waker: StreamWaker, settings: Settings) -> None:
        self._engine = engine
        self._waker = waker
        self._heartbeat = settings.events_heartbeat_seconds
        self._lifetime = settings.events_stream_max_seconds

    async def stream(self, user_id: uuid.UUID, session_id: uuid.UUID, resume: Resume) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lifetime
        after = resume.after
        # Subscribed before the first read, so that nothing sequenced meanwhile goes unnoticed.
        waiter = self._waker.subscribe(user_id)
        try:
            yield f"retry: {RETRY_MILLISECONDS}\nid: {after}\n\n"
            if resume.gap:
                data = f'{{"type":"{GAP_EVENT}","after":{after}}}'
                yield f"id: {after}\nevent: {GAP_EVENT}\ndata: {data}\n\n"
            next_heartbeat = loop.time() + self._heartbeat
            while True:
                waiter.clear()
                events, newest = await anyio.to_thread.run_sync(self._read, user_id, after)
                for event in events:
                    yield format_event(event)
                if len(events) == BATCH_SIZE:
                    after = events[-1].id
                    continue
                # Every event up to `newest` addressed to this user has now been sent.
                after = max(after, newest)
                now = loop.time()
                if now >= deadline:
                    yield f"id: {after}\n\n"
                    return
                if now >= next_heartbeat:
                    if not await anyio.to_thread.run_sync(self._may_listen, user_id, session_id):
                        return
                    yield f": heartbeat\nid: {after}\n\n"
                    next_heartbeat = now + self._heartbeat
                await waiter.wait(min(next_heartbeat, deadline) - now)
                if waiter.superseded:
                    yield f"id: {after}\n\n"
                    return
        finally:
            self._waker.unsubscribe(waiter)

    def _read(self, user_id: uuid.UUID, after: int) -> tuple[list[EventOut], int]:
        with new_session(self._engine) as session:
            # Positions become visible in order: once `newest` is seen, nothing at or below it can appear.
            newest = feed.newest_position(session)
            events = feed.addressed_to(session, user_id, after, BATCH_SIZE, up_to=newest)
        return events, newest

    def _may_listen(self, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        with new_session(self._engine) as session:
            return feed.may_still_listen(session, user_id, session_id)

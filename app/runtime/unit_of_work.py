"""The unit of work of a request: its one transaction, its audit record, and its one commit point.

The transaction of a request is opened and committed here and nowhere else. Its audit record is added
to it before commit, and the commit happens before the response leaves (dependency scope "function"),
so a read is on record before its data is sent. On an error the transaction rolls back and the denial
is recorded, with any durable write the error carries, in a short transaction of its own.

A GET only reads (on SQLite in a read-only transaction that takes no write lock and in which any write
fails: app.runtime.database.create_read_engine), and its record is then committed in a group with those of
other requests (WriteGate), still before the response leaves: a read commits nothing of its own. Every other
request is one transaction with its record. On SQLite, which has one writer, such a request waits for its
turn on the event loop before its transaction starts.

Handlers are `async def` and hand their database work to `RequestDb.run`, which runs it where it costs
least: a SQLite read inline on the event loop, anything else on a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.audit import recorder
from app.audit.records import AuditTrail
from app.errors import AppError, DurableWrite
from app.runtime.context import declares_inline_read, trail_of
from app.runtime.database import WriteGate, new_session, transaction
from app.runtime.state import runtime_of

logger = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD"})

P = ParamSpec("P")
T = TypeVar("T")


class RequestDb:
    """The request's session, and the one way a handler runs database work on it."""

    def __init__(self, session: Session, *, reading: bool, inline: bool) -> None:
        self._session = session
        self.reading = reading
        # A light SQLite read (routes marked `inline_read()`) is in-process and waits for no lock (WAL): on
        # a worker thread it would cost more in thread handoffs than its queries take, so it runs right on
        # the event loop. Heavier reads (statistics, audit tiles) stay on worker threads.
        self.inline = inline
        self._read_done = False

    async def run(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`work(session, *args, **kwargs)`, a handler's database work, inline or on a worker thread. A read's
        transaction ends right after it, on the same thread (on PostgreSQL a round trip saved), so a read
        handler makes exactly one call (a second one is refused: it would see another snapshot)."""
        if not self.reading:
            return await run_in_threadpool(work, self._session, *args, **kwargs)
        if self._read_done:
            raise RuntimeError("a read handler runs its database work in one call")
        self._read_done = True
        if self.inline:
            return work(self._session, *args, **kwargs)
        return await run_in_threadpool(partial(self._then_end, work, *args, **kwargs))

    async def run_keeping_transaction(
        self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Like `run`, for a dependency's work (loading the caller), after which the handler's follows in
        the same transaction."""
        if self.inline:
            return work(self._session, *args, **kwargs)
        return await run_in_threadpool(work, self._session, *args, **kwargs)

    def _then_end(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return work(self._session, *args, **kwargs)
        finally:
            self._session.close()


def _record_failure(engine: Engine, trail: AuditTrail, status: int, writes: list[DurableWrite]) -> None:
    if trail.action is None and not writes:
        return
    try:
        with transaction(engine) as session:
            for write in writes:
                write(session)
            if trail.action is not None:
                recorder.add(session, trail, status)
    except Exception:
        # The caller still gets its error response; losing this record is logged loudly.
        logger.exception("could not record a failed request", extra={"request_id": trail.request_id})


def _commit(session: Session, trail: AuditTrail, status: int) -> None:
    try:
        if trail.action is not None:
            recorder.add(session, trail, status)
        session.commit()
    finally:
        session.close()


def _abandon(
    session: Session, engine: Engine, trail: AuditTrail, status: int, writes: list[DurableWrite]
) -> None:
    session.rollback()
    session.close()
    _record_failure(engine, trail, status, writes)


async def unit_of_work(request: Request) -> AsyncIterator[RequestDb]:
    # Declared with another scope, FastAPI would solve it twice, and a SQLite write would wait on the gate
    # it already holds: every declaration goes through `DB` below, and a second entry is refused.
    if getattr(request.state, "unit_of_work_open", False):
        raise RuntimeError("the unit of work is declared twice on this route")
    request.state.unit_of_work_open = True
    runtime = runtime_of(request)
    trail = trail_of(request)
    engine, gate = runtime.engine, runtime.write_gate
    reading = request.method in READ_METHODS
    exclusive = gate.exclusive and not reading
    if exclusive:
        await gate.acquire()
    light = reading and declares_inline_read(request.scope.get("route"))
    db = RequestDb(
        new_session(runtime.light_read_engine if light else runtime.read_engine if reading else engine),
        reading=reading,
        inline=light and gate.exclusive,
    )
    status: int | None = None
    writes: list[DurableWrite] = []
    try:
        yield db
        route_status = getattr(request.scope.get("route"), "status_code", None) or 200
        if not reading:
            await run_in_threadpool(_commit, db._session, trail, route_status)
        else:
            await _end_read(db)
            if trail.action is not None:
                await gate.insert(recorder.values(trail, route_status))
    except AppError as error:
        status, writes = error.status, error.durable_writes
        raise
    except RequestValidationError:
        status, writes = 422, []
        raise
    except Exception:
        status, writes = 500, []
        raise
    except BaseException:
        # Cancelled (shutdown): nothing to answer or record, but the transaction ends here rather than when
        # the session is collected, which on SQLite would hold the write lock until then.
        db._session.close()
        raise
    finally:
        try:
            if status is not None:
                if not reading:
                    await run_in_threadpool(_abandon, db._session, engine, trail, status, writes)
                else:
                    await _end_read(db)
                    await _record_read_failure(gate, engine, trail, status, writes)
        finally:
            if exclusive:
                gate.release()


async def _end_read(db: RequestDb) -> None:
    if db.inline or not db._session.in_transaction():
        db._session.close()  # a SQLite read transaction, or none left: ending it waits for nothing
    else:
        await run_in_threadpool(db._session.close)  # a round trip to the server


async def _record_read_failure(
    gate: WriteGate, engine: Engine, trail: AuditTrail, status: int, writes: list[DurableWrite]
) -> None:
    if gate.exclusive:  # SQLite's one writer: see WriteGate
        async with gate:
            await run_in_threadpool(_record_failure, engine, trail, status, writes)
    else:
        await run_in_threadpool(_record_failure, engine, trail, status, writes)


# The one declaration of the request's unit of work (app.deps.Db, the caller's loading in principals).
DB = Depends(unit_of_work, scope="function")

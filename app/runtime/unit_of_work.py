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
from typing import Concatenate, ParamSpec, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.audit import recorder
from app.audit.records import AuditTrail
from app.errors import AppError, DurableWrite
from app.runtime.context import trail_of
from app.runtime.database import WriteGate, new_session, transaction
from app.runtime.state import runtime_of

logger = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD"})

P = ParamSpec("P")
T = TypeVar("T")


class RequestDb:
    """The request's session, and the one way a handler runs database work on it."""

    def __init__(self, session: Session, *, reading: bool, inline: bool) -> None:
        self.session = session
        self.reading = reading
        # A SQLite read is in-process and waits for no lock (WAL): on a worker thread it would cost more
        # in thread handoffs than its queries take, so it runs right on the event loop.
        self.inline = inline

    async def run(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`work(session, *args, **kwargs)`, a handler's database work: inline for a SQLite read, else on a
        worker thread. A read's transaction ends right after it, on the same thread (on PostgreSQL a round
        trip saved), so a read handler makes one call; its objects stay loaded."""
        if self.inline:
            return work(self.session, *args, **kwargs)
        if self.reading:
            return await run_in_threadpool(self._then_end, work, *args, **kwargs)
        return await run_in_threadpool(work, self.session, *args, **kwargs)

    async def run_before_handler(
        self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Like `run`, for a dependency's work (loading the caller): the transaction stays open."""
        if self.inline:
            return work(self.session, *args, **kwargs)
        return await run_in_threadpool(work, self.session, *args, **kwargs)

    def _then_end(self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return work(self.session, *args, **kwargs)
        finally:
            self.session.close()


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


def _abandon(session: Session, engine: Engine, trail: AuditTrail, status: int, writes: list[DurableWrite]):
    session.rollback()
    session.close()
    _record_failure(engine, trail, status, writes)


async def unit_of_work(request: Request) -> AsyncIterator[RequestDb]:
    runtime = runtime_of(request)
    trail = trail_of(request)
    engine, gate = runtime.engine, runtime.write_gate
    reading = request.method in READ_METHODS
    exclusive = gate.exclusive and not reading
    if exclusive:
        await gate.acquire()
    db = RequestDb(
        new_session(runtime.read_engine if reading else engine),
        reading=reading,
        inline=reading and gate.exclusive,
    )
    status: int | None = None
    writes: list[DurableWrite] = []
    try:
        yield db
        route_status = getattr(request.scope.get("route"), "status_code", None) or 200
        if not reading:
            await run_in_threadpool(_commit, db.session, trail, route_status)
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
        db.session.close()
        raise
    finally:
        try:
            if status is not None:
                if not reading:
                    await run_in_threadpool(_abandon, db.session, engine, trail, status, writes)
                else:
                    await _end_read(db)
                    await _record_read_failure(gate, engine, trail, status, writes)
        finally:
            if exclusive:
                gate.release()


async def _end_read(db: RequestDb) -> None:
    if db.inline or not db.session.in_transaction():
        db.session.close()  # a SQLite read transaction, or none left: ending it waits for nothing
    else:
        await run_in_threadpool(db.session.close)  # a round trip to the server


async def _record_read_failure(
    gate: WriteGate, engine: Engine, trail: AuditTrail, status: int, writes: list[DurableWrite]
) -> None:
    if gate.exclusive:  # SQLite's one writer: see WriteGate
        async with gate:
            await run_in_threadpool(_record_failure, engine, trail, status, writes)
    else:
        await run_in_threadpool(_record_failure, engine, trail, status, writes)

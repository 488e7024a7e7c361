"""Engines and sessions: SQLite serialized through one writer, PostgreSQL as it is; WriteGate groups commits.

The request transaction itself is opened and committed in app.runtime.unit_of_work."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import Engine, Table, create_engine, event, insert, inspect, literal, select, table
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session

from app.config import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The dialect below, registered under this driver name: sqlite+confrere_serialized:///path
SERIALIZED_DRIVER = "confrere_serialized"


class FairLock:
    """A lock handed over in arrival order. threading.Lock lets a releasing thread take it straight back and
    wakes waiters in no particular order, so under load some requests wait far longer than others: the
    long tail this lock exists to remove."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if not waiter.acquire(timeout=timeout):
            with self._mutex:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                    return False
            # Handed over between the timeout and the mutex: ours after all.
        return True

    def release(self) -> None:
        with self._mutex:
            if not self._held:
                raise RuntimeError("release of an unheld FairLock")
            if self._waiters:
                self._waiters.popleft().release()  # ownership passes on; _held stays True
            else:
                self._held = False


class SerializedSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite whose transactions take the database's process-wide write lock, then BEGIN IMMEDIATE.

    Every request transaction here may write (its audit record), so each one needs SQLite's single write
    lock. Left to SQLite, the waiting threads poll with sleeps of up to 100 ms (its busy handler): at 32
    concurrent requests most time is spent asleep and p99 reaches seconds. Queued on a fair lock in the
    process instead, each transaction starts the moment the previous one ends. Python runs one thread at a
    time anyway, so this costs no parallelism; other processes on the same file still meet SQLite's lock
    and its busy timeout. The lock is released once the connection has left its transaction (commit or
    rollback), and by the pool when a connection is invalidated or closed in one, so no path leaks it.
    """

    name = "sqlite"
    driver = "pysqlite"
    supports_statement_cache = True

    def __init__(self, write_lock: FairLock | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.write_lock = write_lock or FairLock()
        self._holder: sqlite3.Connection | None = None

    def do_begin(self, dbapi_connection: Any) -> None:
        connection = _raw(dbapi_connection)
        # A transaction spans threads (each `RequestDb.run` of a request may run on another worker thread),
        # so the lock has no owning thread: it is held by the connection.
        if not self.write_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise sqlite3.OperationalError("database is locked (timed out waiting for the write lock)")
        self._holder = connection
        try:
            connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.release(connection)
            raise

    def do_commit(self, dbapi_connection: Any) -> None:
        try:
            super().do_commit(dbapi_connection)
        finally:
            self._release_unless_in_transaction(dbapi_connection)

    def do_rollback(self, dbapi_connection: Any) -> None:
        try:
            super().do_rollback(dbapi_connection)
        finally:
            self._release_unless_in_transaction(dbapi_connection)

    def _release_unless_in_transaction(self, dbapi_connection: Any) -> None:
        connection = _raw(dbapi_connection)
        # A failed COMMIT can leave the transaction open; the rollback that follows releases the lock.
        if not connection.in_transaction:
            self.release(connection)

    def release(self, connection: sqlite3.Connection | None) -> None:
        """Release the write lock if this connection holds it (idempotent)."""
        if connection is not None and self._holder is connection:
            self._holder = None
            self.write_lock.release()


registry.register(f"sqlite.{SERIALIZED_DRIVER}", __name__, SerializedSQLiteDialect.__name__)


def _raw(connection: Any) -> sqlite3.Connection:
    """The sqlite3 connection behind a pool proxy (the dialect is given either)."""
    return getattr(connection, "dbapi_connection", connection)


# One lock per database file, shared by every engine of the process (the tests build several apps).
_write_locks: dict[str, FairLock] = {}
_write_locks_mutex = threading.Lock()


def _write_lock(database: str) -> FairLock:
    key = str(Path(database).resolve())
    with _write_locks_mutex:
        return _write_locks.setdefault(key, FairLock())


def create_db_engine(settings: Settings) -> Engine:
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url.set(drivername=f"sqlite+{SERIALIZED_DRIVER}"),
            pool_size=settings.db_pool_size,
            max_overflow=0,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            write_lock=_write_lock(url.database or ":memory:"),
            # A failed statement's error (and so a logged traceback) would otherwise quote its parameters:
            # ciphertext, envelopes, e-mail addresses, password hashes.
            hide_parameters=True,
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, pool_size=settings.db_pool_size, max_overflow=10, hide_parameters=True)
    _hide_row_values(engine)
    _ping_idle_connections(engine)
    return engine


# A connection given back this recently is taken as alive. SQLAlchemy's pool_pre_ping tests every one at
# every checkout: a round trip, one in seven of a case read's on PostgreSQL (docs/benchmarks.md).
IDLE_BEFORE_PING_SECONDS = 5.0


def _ping_idle_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat idle (the server restarted, a firewall
    dropped them): a failed ping discards the connection and the pool hands out another."""

    @event.listens_for(engine, "checkin")
    def _given_back(_dbapi_connection, record) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_connection, record, _proxy) -> None:
        idle = time.monotonic() - record.info.get("checked_in", float("-inf"))
        if idle < IDLE_BEFORE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError() from error


def _hide_row_values(engine: Engine) -> None:
    # PostgreSQL's error DETAIL quotes row values ("Failing row contains (...)", "Key (email)=(...)"); the
    # primary message says what failed without them, in the exception and so in any logged traceback.
    @event.listens_for(engine, "handle_error")
    def _terse(context) -> None:
        original, wrapped = context.original_exception, context.sqlalchemy_exception
        diagnostic = getattr(original, "diag", None)
        if diagnostic is None or not diagnostic.message_primary:
            return
        original.args = (diagnostic.message_primary,)
        if wrapped is not None:  # its message was built from the original's before this hook ran
            kind = type(original)
            wrapped.args = (f"({kind.__module__}.{kind.__name__}) {diagnostic.message_primary}",)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite opens transactions lazily and as DEFERRED: a reader that later writes can fail with
    # SQLITE_BUSY that no timeout resolves. Every request here may write (audit records), so the dialect
    # begins each transaction itself, with BEGIN IMMEDIATE under the write lock (SerializedSQLiteDialect).
    dialect = engine.dialect
    assert isinstance(dialect, SerializedSQLiteDialect)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    # A connection dropped by the pool in the middle of a transaction (invalidated after an error, or
    # closed) never reaches do_commit/do_rollback: its lock is released here.
    @event.listens_for(engine, "invalidate")
    def _on_invalidate(dbapi_connection, _record, _exception) -> None:
        dialect.release(dbapi_connection)

    @event.listens_for(engine, "close")
    def _on_close(dbapi_connection, _record) -> None:
        dialect.release(dbapi_connection)


def create_read_engine(settings: Settings, engine: Engine) -> Engine:
    """The engine of the requests that only read (GET): on SQLite its own pool of connections that may not
    write (PRAGMA query_only) and read a WAL snapshot without taking the write lock; elsewhere `engine`.
    (Not PostgreSQL's autocommit for every read: streamed results need a transaction. The light reads have
    it: create_light_read_engine.)"""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite":
        return engine
    reader = create_engine(
        url,
        pool_size=settings.db_pool_size,
        # Unbounded: a read takes its connection on the event loop (app.runtime.unit_of_work), where waiting
        # for one that only the loop can give back would stall the process. A SQLite connection is a file
        # handle.
        max_overflow=-1,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(reader, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    # One snapshot for the whole request, as a transaction; DEFERRED takes no lock in WAL mode.
    @event.listens_for(reader, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN")

    return reader


def create_light_read_engine(read_engine: Engine) -> Engine:
    """The engine of the light reads (routes marked `inline_read()`: a few indexed lookups, no streamed
    results). On PostgreSQL its connections are in autocommit: no BEGIN and no ROLLBACK, two round trips of
    the six or so such a read makes, and nothing lost, since under READ COMMITTED each statement of a
    transaction takes its own snapshot anyway. On SQLite, the read engine itself: its transaction is the
    one WAL snapshot the whole read sees, and costs no round trip."""
    if read_engine.dialect.name != "postgresql":
        return read_engine
    return read_engine.execution_options(isolation_level="AUTOCOMMIT")


@dataclass
class _Queued:
    row: dict[str, Any]
    ended: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


GROUPS_IN_FLIGHT = 4


class WriteGate:
    """Group commit of the audit records of reads and, on SQLite (`exclusive`), one writing request at a
    time, queued on the event loop.

    Rows of `table` (the audit records of reads) are committed in groups: each waits for its place at the
    gate, and whichever request gets it first inserts every row queued by then, in one statement and one
    transaction; each request returns only once its own row is committed.

    On SQLite, a request thread waiting for the write lock would hold a worker thread while the request
    holding the lock needs one for its next step (each `RequestDb.run` takes a worker thread of its own),
    so under load every worker could end up waiting for a lock held by a request that
    cannot proceed. Write requests therefore take this gate, on the event loop and in arrival order, before
    their transaction starts, and so do the groups; the dialect's FairLock then only orders them with the
    background threads. PostgreSQL lets writers run together: there the groups alone take the gate, a few at
    a time.
    """

    def __init__(self, engine: Engine, table: Table, *, exclusive: bool) -> None:
        self.exclusive = exclusive
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._insert = insert(table)
        self._lock = anyio.Lock()
        # PostgreSQL flushes its log once for the commits that wait on it together: with a few groups in
        # flight, reads are no longer bound to one commit's flush (tens of ms on a busy disk) at a time.
        self._groups = self._lock if exclusive else anyio.Semaphore(GROUPS_IN_FLIGHT)
        self._queued: list[_Queued] = []

    async def acquire(self) -> None:
        await self._lock.acquire()

    def release(self) -> None:
        self._lock.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *_exc: object) -> None:
        self.release()

    async def insert(self, row: dict[str, Any]) -> None:
        """Inserts `row` with whatever other rows are queued meanwhile; returns once it is committed and
        raises if its group failed."""
        queued = _Queued(row)
        self._queued.append(queued)
        async with self._groups:
            # Nothing left when a group already in flight took this row (with every row queued by then):
            # waiting for that group is all there is to do, rather than committing an empty one.
            group, self._queued = self._queued, []
            if group:
                try:
                    await anyio.to_thread.run_sync(self._commit_group, [item.row for item in group])
                except Exception as error:
                    for item in group:
                        item.error = error
                finally:
                    for item in group:
                        item.ended.set()
        await queued.ended.wait()
        if queued.error is not None:
            raise RuntimeError("a group of rows failed to commit") from queued.error

    def _commit_group(self, rows: list[dict[str, Any]]) -> None:
        if self.exclusive:  # SQLite: its transaction is what takes the write lock (SerializedSQLiteDialect)
            with self._engine.begin() as connection:
                connection.execute(self._insert, rows)
            return
        # PostgreSQL: one multi-row INSERT in autocommit is atomic on its own, so the group costs one round
        # trip instead of three (BEGIN, INSERT, COMMIT).
        with self._autocommit.connect() as connection:
            connection.execute(self._insert.values(rows))


def holds_data(engine: Engine) -> bool:
    """Whether the database has accounts or audit records: then its server keys exist somewhere already."""
    tables = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        return any(
            connection.execute(select(literal(1)).select_from(table(name)).limit(1)).first() is not None
            for name in ("users", "audit_records")
            if name in tables
        )


def new_session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A short transaction of its own, for writes that must survive the caller's rollback."""
    with new_session(engine) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

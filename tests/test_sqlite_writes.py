"""SQLite's one writer (app.runtime.database): the fair write lock is never leaked, reads take no lock and
cannot write, the write gate commits groups, and a login's Argon2id work happens before its write
transaction.

These run on a SQLite file of their own whatever CONFRERE_TEST_DATABASE_URL says: they test the SQLite
machinery itself."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio
import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, event, exc, text

from app.config import Settings
from app.crypto.passwords import PasswordHasher
from app.runtime.database import (
    FairLock,
    SerializedSQLiteDialect,
    WriteGate,
    create_db_engine,
    create_read_engine,
    transaction,
)
from app.services.auth import PasswordCheck

WAIT = 5.0
INSERT = text("INSERT INTO items (name) VALUES (:n)")


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'writes.db'}", db_pool_size=8)


@pytest.fixture
def writer(sqlite_settings: Settings):
    engine = create_db_engine(sqlite_settings)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield engine
    engine.dispose()


def _lock(engine: Engine) -> FairLock:
    dialect = engine.dialect
    assert isinstance(dialect, SerializedSQLiteDialect)
    return dialect.write_lock


def assert_free(engine: Engine) -> None:
    """The write lock can be taken right away, from another thread."""
    taken: list[bool] = []
    probe = threading.Thread(target=lambda: taken.append(_lock(engine).acquire(timeout=WAIT)))
    probe.start()
    probe.join()
    assert taken == [True]
    _lock(engine).release()


def _waiters(lock: FairLock) -> int:
    return len(lock._waiters)


def test_fair_lock_hands_over_in_arrival_order():
    lock = FairLock()
    assert lock.acquire(timeout=WAIT)
    order: list[int] = []

    def take(number: int) -> None:
        assert lock.acquire(timeout=WAIT)
        order.append(number)
        lock.release()

    threads = []
    for number in range(6):
        thread = threading.Thread(target=take, args=(number,))
        thread.start()
        threads.append(thread)
        while _waiters(lock) != number + 1:  # queued before the next one arrives
            time.sleep(0.001)
    lock.release()
    for thread in threads:
        thread.join()
    assert order == list(range(6))


def test_fair_lock_times_out_and_leaves_no_waiter_behind():
    lock = FairLock()
    assert lock.acquire(timeout=WAIT)
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(lock.acquire(timeout=0.05)))
    waiter.start()
    waiter.join()
    assert results == [False]
    assert _waiters(lock) == 0
    lock.release()
    assert lock.acquire(timeout=0)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()


def test_the_write_lock_is_released_after_commit_and_after_every_failure(writer: Engine):
    with transaction(writer) as session:
        session.execute(text("INSERT INTO items (name) VALUES ('a')"))
    assert_free(writer)

    with pytest.raises(ZeroDivisionError), transaction(writer) as session:
        session.execute(text("INSERT INTO items (name) VALUES ('b')"))
        raise ZeroDivisionError
    assert_free(writer)

    with pytest.raises(exc.IntegrityError), transaction(writer) as session:
        session.execute(text("INSERT INTO items (name) VALUES ('a')"))
    assert_free(writer)

    # A connection left in its transaction and closed, or invalidated, gives the lock back too.
    connection = writer.connect()
    connection.execute(text("INSERT INTO items (name) VALUES ('c')"))
    connection.close()
    assert_free(writer)
    connection = writer.connect()
    connection.execute(text("INSERT INTO items (name) VALUES ('d')"))
    connection.invalidate()
    connection.close()
    assert_free(writer)
    with writer.connect() as connection:
        names = connection.execute(text("SELECT name FROM items ORDER BY name")).scalars().all()
    assert names == ["a"]


def test_concurrent_writers_queue_instead_of_failing(writer: Engine):
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for number in range(20):
                with transaction(writer) as session:
                    session.execute(INSERT, {"n": f"{worker}-{number}"})
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with writer.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM items")).scalar() == 160
    assert_free(writer)


def test_reads_take_no_write_lock_and_cannot_write(sqlite_settings: Settings, writer: Engine):
    reader = create_read_engine(sqlite_settings, writer)
    try:
        with transaction(writer) as session:
            session.execute(text("INSERT INTO items (name) VALUES ('a')"))
            with reader.connect() as connection:  # while the writer holds the lock
                assert connection.execute(text("SELECT count(*) FROM items")).scalar() == 0
        with reader.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM items")).scalar() == 1
            with pytest.raises(exc.OperationalError, match="readonly"):
                connection.execute(text("INSERT INTO items (name) VALUES ('b')"))
    finally:
        reader.dispose()


ITEMS = Table("items", MetaData(), Column("id", Integer, primary_key=True), Column("name", Text, unique=True))


def test_the_write_gate_commits_queued_rows_in_groups(writer: Engine):
    gate = WriteGate(writer, ITEMS, exclusive=True)
    groups: list[int] = []
    event.listen(writer, "commit", lambda _connection: groups.append(1))

    async def main() -> None:
        await gate.acquire()  # the rows below queue up behind it
        async with anyio.create_task_group() as group:
            for number in range(10):
                group.start_soon(gate.insert, {"name": f"item-{number}"})
            await anyio.sleep(0.05)
            gate.release()

    anyio.run(main)
    with writer.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM items")).scalar() == 10
    assert len(groups) == 1  # one transaction for the ten, not one each
    assert_free(writer)


def test_a_failed_group_fails_each_of_its_rows_and_frees_the_gate(writer: Engine):
    gate = WriteGate(writer, ITEMS, exclusive=True)
    outcomes: list[str] = []

    async def attempt(name: str) -> None:
        try:
            await gate.insert({"name": name})
            outcomes.append("committed")
        except RuntimeError:
            outcomes.append("failed")

    async def main() -> None:
        await gate.acquire()
        async with anyio.create_task_group() as group:
            for name in ("x", "y", "x"):  # the duplicate fails the whole group
                group.start_soon(attempt, name)
            await anyio.sleep(0.05)
            gate.release()
        await attempt("z")

    anyio.run(main)
    assert outcomes == ["failed", "failed", "failed", "committed"]
    assert_free(writer)


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "checks", 0)

    def verify(self, password: str, phc: str) -> bool:
        object.__setattr__(self, "checks", self.checks + 1)
        return super().verify(password, phc)


def test_a_password_checked_ahead_is_trusted_only_for_the_hash_it_was_checked_against():
    hasher = CountingHasher()
    stored = hasher.hash("correct horse battery staple")
    check = PasswordCheck(stored_hash=stored, matched=True)
    assert check.verify(hasher, "correct horse battery staple", stored)
    assert hasher.checks == 0
    changed = hasher.hash("another password entirely")
    assert not check.verify(hasher, "correct horse battery staple", changed)
    assert hasher.checks == 1

"""The group commit of read records (app.runtime.database.WriteGate) on the test database: a caller returns
once its row is committed and is told whether it was, however the rows were grouped, including when a group
fails; and no group is empty. (A caller whose row a group in flight had taken used to commit an empty group
and return before its own row was committed.)"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, event, select

from app.runtime.database import WriteGate, create_db_engine
from tests.conftest import make_settings

GATE_ITEMS = Table(
    "gate_items", MetaData(), Column("id", Integer, primary_key=True), Column("name", Text, unique=True)
)


@pytest.fixture
def gate_and_engine(tmp_path: Path, database_url: str) -> Iterator[tuple[WriteGate, Engine]]:
    settings = make_settings(tmp_path, database_url)
    engine = create_db_engine(settings)
    GATE_ITEMS.create(engine)
    try:
        yield WriteGate(engine, GATE_ITEMS, exclusive=settings.is_sqlite), engine
    finally:
        GATE_ITEMS.drop(engine)
        engine.dispose()


def _committed(engine: Engine) -> Counter[str]:
    with engine.connect() as connection:
        return Counter(connection.execute(select(GATE_ITEMS.c.name)).scalars())


def test_each_caller_returns_once_its_row_is_committed_and_learns_whether_it_was(
    gate_and_engine: tuple[WriteGate, Engine],
):
    gate, engine = gate_and_engine
    # Callers arrive while earlier groups are in flight; the repeated names fail whichever group they land in,
    # with every row of that group, and the other groups commit.
    names = [f"item-{number}" for number in range(40)] + [f"item-{number}" for number in range(0, 40, 8)]
    random.Random(16).shuffle(names)
    told: Counter[str] = Counter()
    failed: list[str] = []
    missing_on_return: list[str] = []
    groups: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: groups.append(args[2]))

    async def attempt(name: str) -> None:
        try:
            await gate.insert({"name": name})
        except RuntimeError:
            failed.append(name)
            return
        told[name] += 1
        # Committed by the time the caller is told so: a read's record before its answer leaves.
        if not _committed(engine)[name]:
            missing_on_return.append(name)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for number, name in enumerate(names, 1):
                group.start_soon(attempt, name)
                if number % 5 == 0:  # in bursts, each queued before any of it runs
                    await anyio.sleep(0.002)

    anyio.run(main)
    assert missing_on_return == []
    assert told == _committed(engine)
    assert told and failed, (told, failed)
    inserts = [sql for sql in groups if sql.startswith("INSERT")]
    assert 1 < len(inserts) < len(names), inserts
    assert not any("DEFAULT VALUES" in sql for sql in inserts), inserts

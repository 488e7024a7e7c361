"""The group commit of read records (app.runtime.database.WriteGate) on the test database: a caller is told
its row is committed exactly when it is, however the rows were grouped, including when a group fails; and no
group is empty (one was committed by each caller whose row a group in flight had taken)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, select

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


def test_each_caller_learns_whether_its_own_row_was_committed(gate_and_engine: tuple[WriteGate, Engine]):
    gate, engine = gate_and_engine
    # Duplicates fail whichever group they land in, with every row of that group.
    names = [f"item-{number % 24}" for number in range(30)]
    told: Counter[str] = Counter()

    async def attempt(name: str) -> None:
        try:
            await gate.insert({"name": name})
        except RuntimeError:
            return
        told[name] += 1

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for name in names:
                group.start_soon(attempt, name)

    anyio.run(main)
    assert told == _committed(engine)
    assert sum(told.values()) < len(names)

    async def later() -> None:
        await gate.insert({"name": "after the failures"})

    anyio.run(later)
    assert _committed(engine)["after the failures"] == 1

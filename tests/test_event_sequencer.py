"""The event sequencer on PostgreSQL: an event whose transaction commits late gets a later position, never a
skipped one, and one sequencer at a time numbers (SQLite has a single writer: neither can happen there)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from app.models.base import utcnow
from app.models.notifications import Event
from app.models.users import Role
from app.notifications.sequencer import ADVISORY_LOCK_KEY, sequence_batch
from tests.e2ee_helpers import clinician, create_case

EVENTS = Event.__table__


@pytest.fixture
def case_id(app, accounts, engine) -> uuid.UUID:
    if engine.dialect.name != "postgresql":
        pytest.skip(
            "SQLite has one writer: transactions cannot commit out of id order, nor sequencers overlap"
        )
    client = TestClient(app)  # no lifespan: no background sequencer
    physician = clinician(client, accounts, Role.PHYSICIAN)
    return uuid.UUID(create_case(client, physician, [], specialty="dermatology")["id"])


def _event(case_id: uuid.UUID) -> dict:
    return {"type": "case.overdue", "case_id": case_id, "created_at": utcnow()}


def test_an_event_committed_late_is_numbered_after_not_skipped(engine, case_id):
    sequence_batch(engine)
    with engine.connect() as connection:
        before = connection.execute(select(func.max(EVENTS.c.position))).scalar() or 0
    with engine.connect() as late:
        transaction = late.begin()
        late_id = late.execute(insert(EVENTS).values(**_event(case_id)).returning(EVENTS.c.id)).scalar()
        with engine.begin() as early:
            early_id = early.execute(insert(EVENTS).values(**_event(case_id)).returning(EVENTS.c.id)).scalar()
        assert late_id < early_id
        # A reader streaming now sees the early event at the next position...
        assert sequence_batch(engine) == range(before + 1, before + 2)
        transaction.commit()
    # ...and the late one right after it: a client resuming from the first misses nothing.
    assert sequence_batch(engine) == range(before + 2, before + 3)
    with engine.connect() as connection:
        order = connection.execute(
            select(EVENTS.c.id).where(EVENTS.c.position > before).order_by(EVENTS.c.position)
        ).scalars()
        assert list(order) == [early_id, late_id]


def test_one_sequencer_at_a_time(engine, case_id):
    with engine.begin() as connection:
        connection.execute(insert(EVENTS).values(**_event(case_id)))
    with engine.connect() as other:
        with other.begin():
            assert other.execute(select(func.pg_try_advisory_xact_lock(ADVISORY_LOCK_KEY))).scalar()
            assert sequence_batch(engine) is None  # skips its turn, numbers nothing
        assert len(sequence_batch(engine)) == 1

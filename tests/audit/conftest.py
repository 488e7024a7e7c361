"""Audit fixtures: the in-process sequencer is off here, so tests decide when records are sequenced."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, select

from app.audit import recorder
from app.audit.log import RECORDS
from app.audit.records import AuditTrail, Resource
from app.audit.sequencer import sequence_pending
from app.config import Environment, Settings
from app.crypto.merkle import CompactRange, MemoryNodeStore, leaf_hash
from app.crypto.signed_note import NoteSigner
from app.models.users import Role
from app.runtime.database import transaction
from tests.conftest import auth_headers


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        environment=Environment.TEST,
        data_dir=tmp_path,
        database_url=database_url,
        db_pool_size=10,
        audit_sequencer_in_process=False,
    )


@pytest.fixture
def signer(app) -> NoteSigner:
    return app.state.runtime.audit_log_signer


@pytest.fixture
def flush(engine: Engine, signer: NoteSigner) -> Callable[[], int]:
    return lambda: sequence_pending(engine, signer)


@pytest.fixture
def officer(accounts):
    return accounts.create(Role.COMPLIANCE_OFFICER)


@pytest.fixture
def officer_headers(client, officer) -> dict[str, str]:
    return auth_headers(client, officer)


def write_records(engine: Engine, count: int, action: str = "test.write", **trail_fields) -> None:
    """Records through the recorder, in one transaction (as many actions of one request would be)."""
    with transaction(engine) as session:
        for _ in range(count):
            trail = AuditTrail(request_id=uuid.uuid4().hex, action=action, **trail_fields)
            recorder.add(session, trail, 200)


def write_case_record(engine: Engine, case_id: uuid.UUID, status: int = 200) -> None:
    with transaction(engine) as session:
        trail = AuditTrail(
            request_id=uuid.uuid4().hex,
            action="case.read",
            resource=Resource(type="case", id=str(case_id), case_id=case_id),
        )
        recorder.add(session, trail, status)


def sequenced(engine: Engine) -> list[tuple[int, bytes]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(RECORDS.c.position, RECORDS.c.record)
            .where(RECORDS.c.position.is_not(None))
            .order_by(RECORDS.c.position)
        )
        return [(row.position, row.record) for row in rows]


def parsed_log(engine: Engine) -> list[dict]:
    return [orjson.loads(record) for _, record in sequenced(engine)]


def recompute(records: list[bytes]) -> tuple[CompactRange, MemoryNodeStore]:
    """An independent tree over records in position order: its root and every node."""
    compact, store = CompactRange(), MemoryNodeStore()
    for record in records:
        store.add(compact.append(leaf_hash(record)))
    return compact, store

"""The PostgreSQL grants documented in docs/audit-log.md: the API only inserts and reads the audit log, the
sequencer only numbers records and extends the tree; the API sequences the directory log itself, without
being able to rewrite or delete its entries."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, insert, select, text, update
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.pool import NullPool

from app.audit.log import NODES, RECORDS
from app.audit.sequencer import sequence_pending
from app.crypto.directory import EntryAction
from app.directory.log import DIRECTORY_LOG
from app.models.base import utcnow
from app.runtime.database import transaction
from tests.audit.conftest import write_records

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-log.md"


def documented_grants() -> str:
    section = DOC.read_text().split("## Database tables and PostgreSQL roles", 1)[1]
    return re.search(r"```sql\n(.*?)```", section, re.S).group(1)


def engine_as(database_url: str, role: str):
    engine = create_engine(database_url, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _set_role(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {role}")
        dbapi_connection.commit()

    return engine


def refused(engine, statement) -> bool:
    try:
        with engine.begin() as connection:
            connection.execute(statement)
    except ProgrammingError as error:
        return "permission denied" in str(error)
    return False


@pytest.fixture
def roles(engine, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("roles and grants are PostgreSQL's")
    suffix = uuid.uuid4().hex[:8]
    app_role, sequencer_role = f"confrere_app_{suffix}", f"confrere_sequencer_{suffix}"
    grants = (
        documented_grants().replace("confrere_app", app_role).replace("confrere_sequencer", sequencer_role)
    )
    with engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {app_role} NOLOGIN"))
        connection.execute(text(f"CREATE ROLE {sequencer_role} NOLOGIN"))
        connection.execute(text(grants))
    yield app_role, sequencer_role
    with engine.begin() as connection:
        for role in (app_role, sequencer_role):
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))


def test_the_documented_grants_separate_writing_from_sequencing(engine, signer, database_url, roles):
    app_role, sequencer_role = roles
    api = engine_as(database_url, app_role)
    sequencer = engine_as(database_url, sequencer_role)
    try:
        write_records(api, 4)
        assert refused(api, update(RECORDS).values(record=b"{}"))
        assert refused(api, update(RECORDS).values(position=0))
        assert refused(api, RECORDS.delete())
        assert refused(api, insert(NODES).values(level=0, index=0, hash=bytes(32)))

        assert sequence_pending(sequencer, signer) == 4
        assert refused(sequencer, update(RECORDS).values(record=b"{}"))
        assert refused(sequencer, RECORDS.delete())
        row = {"record": b"{}", "event_time": utcnow(), "action": "forged", "outcome": "success"}
        assert refused(sequencer, insert(RECORDS).values(**row))
    finally:
        api.dispose()
        sequencer.dispose()


def test_the_documented_grants_let_the_api_sequence_the_directory_log_but_not_rewrite_it(
    app, database_url, roles
):
    app_role, _ = roles
    api = engine_as(database_url, app_role)
    directory = app.state.runtime.directory_log
    entries = DIRECTORY_LOG.records
    try:
        # Each change and its sequenced, signed entry in one transaction, as a request does it.
        for action in (EntryAction.ACCOUNT_SUSPEND, EntryAction.ACCOUNT_REACTIVATE):
            with transaction(api) as session:
                directory.account_changed(session, uuid.uuid4(), action, utcnow())
        with api.connect() as connection:
            positions = connection.execute(select(entries.c.position).order_by(entries.c.id)).scalars().all()
            size = connection.execute(select(DIRECTORY_LOG.state.c.tree_size)).scalar_one()
        assert positions == [0, 1]
        assert size == 2

        assert refused(api, update(entries).values(record=b"{}"))
        assert refused(api, entries.delete())
        assert refused(api, update(DIRECTORY_LOG.nodes).values(hash=bytes(32)))
        assert refused(api, DIRECTORY_LOG.nodes.delete())
        assert refused(api, update(DIRECTORY_LOG.checkpoints).values(note=b"forged"))
        assert refused(api, DIRECTORY_LOG.checkpoints.delete())
        assert refused(api, DIRECTORY_LOG.state.delete())
    finally:
        api.dispose()

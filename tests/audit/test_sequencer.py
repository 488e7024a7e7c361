"""The sequencer: contiguous positions, a root anyone can recompute, signed checkpoints, one at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, insert, select, text

from app.audit import recorder, sequencer
from app.audit.log import CHECKPOINTS, NODES, RECORDS, load_state, verify_log
from app.audit.records import AuditTrail, Event, Outcome, encode
from app.audit.sequencer import ADVISORY_LOCK_KEY, sequence_batch, sequence_pending
from app.cli import main as confrere
from app.config import Settings, get_settings
from app.crypto.merkle import EMPTY_ROOT, root_at
from app.crypto.signed_note import open_checkpoint
from app.main import create_app
from app.models.base import utcnow
from app.models.users import Role
from app.platform.keyring import AUDIT_LOG_KEY_FILE, KeyringError, load_audit_log_signer
from app.runtime.database import transaction
from tests.audit.conftest import recompute, sequenced, write_records
from tests.conftest import auth_headers


def checkpoint(engine, signer):
    with engine.connect() as connection:
        return open_checkpoint(load_state(connection).checkpoint, signer.verifier())


def test_first_run_signs_the_empty_tree(engine, signer, flush):
    assert flush() == 0
    empty = checkpoint(engine, signer)
    assert (empty.origin, empty.size, empty.root_hash) == (signer.name, 0, EMPTY_ROOT)


def test_positions_are_contiguous_and_the_root_is_recomputable(engine, signer):
    write_records(engine, 10)
    assert sequence_pending(engine, signer, batch_size=4) == 10
    write_records(engine, 7)
    assert sequence_pending(engine, signer, batch_size=4) == 7
    log = sequenced(engine)
    assert [position for position, _ in log] == list(range(17))
    compact, store = recompute([record for _, record in log])
    signed = checkpoint(engine, signer)
    assert (signed.size, signed.root_hash) == (17, compact.root())
    with engine.connect() as connection:
        # One checkpoint per batch (4+4+2, 4+3) after the empty tree's first one; each root recomputes.
        notes = connection.execute(select(CHECKPOINTS.c.size, CHECKPOINTS.c.note)).all()
        assert sorted(size for size, _ in notes) == [4, 8, 10, 14, 17]
        for size, note in notes:
            assert open_checkpoint(note, signer.verifier()).root_hash == root_at(store, size)
        stored = {(row.level, row.index): row.hash for row in connection.execute(select(NODES))}
        assert stored == store.nodes
        assert verify_log(connection, signer.verifier()).tree_size == 17


def test_a_failed_batch_leaves_nothing_behind(engine, signer, monkeypatch):
    write_records(engine, 5)
    sequence_pending(engine, signer)
    write_records(engine, 3)

    def fail(*_):
        raise RuntimeError("crash before the checkpoint is signed")

    monkeypatch.setattr(sequencer, "sign_checkpoint", fail)
    with pytest.raises(RuntimeError):
        sequence_pending(engine, signer)
    with engine.connect() as connection:
        unsequenced = select(func.count()).select_from(RECORDS).where(RECORDS.c.position.is_(None))
        assert connection.execute(unsequenced).scalar() == 3
        assert (
            connection.execute(select(func.count()).select_from(NODES)).scalar() == 8
        )  # 5 leaves, 2 pairs, 1 of 4
        assert load_state(connection).tree_size == 5
    monkeypatch.undo()
    assert sequence_pending(engine, signer) == 3
    with engine.connect() as connection:
        assert verify_log(connection, signer.verifier()).tree_size == 8


def _insert_record(connection) -> int:
    trail = AuditTrail(request_id=uuid.uuid4().hex, action="test.late")
    event = Event(trail=trail, outcome=Outcome.SUCCESS, status=200, time=utcnow())
    row = {"record": encode(event), "event_time": event.time, "action": "test.late", "outcome": "success"}
    return connection.execute(insert(RECORDS).values(**row).returning(RECORDS.c.id)).scalar_one()


def test_a_record_committed_late_gets_a_later_position_not_a_skipped_one(engine, signer, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: a transaction cannot commit out of id order there")
    with engine.connect() as slow:
        slow_transaction = slow.begin()
        early_id = _insert_record(slow)  # the smaller id, still uncommitted
        with engine.begin() as fast:
            late_id = _insert_record(fast)
        assert early_id < late_id
        assert sequence_pending(engine, signer) == 1
        slow_transaction.commit()
    assert sequence_pending(engine, signer) == 1
    with engine.connect() as connection:
        positions = dict(connection.execute(select(RECORDS.c.id, RECORDS.c.position)).all())
        assert positions == {late_id: 0, early_id: 1}
        assert verify_log(connection, signer.verifier()).tree_size == 2


def test_a_record_committed_late_below_a_pass_cursor_is_numbered_by_the_next_pass(engine, signer):
    write_records(engine, 6)
    with engine.begin() as connection:
        ids = sorted(connection.execute(select(RECORDS.c.id)).scalars())
        late = connection.execute(select(RECORDS).where(RECORDS.c.id == ids[1])).one()._asdict()
        connection.execute(delete(RECORDS).where(RECORDS.c.id == ids[1]))
    first = sequence_batch(engine, signer, batch_size=2)
    assert (first.sequenced, first.last_id) == (2, ids[2])
    with engine.begin() as connection:  # a transaction that took its id early and commits only now
        connection.execute(insert(RECORDS).values(**late))
    second = sequence_batch(engine, signer, batch_size=2, after_id=first.last_id)
    assert (second.sequenced, second.last_id) == (2, ids[4])
    assert sequence_pending(engine, signer) == 2  # a new pass: ids[1], then ids[5]
    with engine.connect() as connection:
        numbered = dict(connection.execute(select(RECORDS.c.id, RECORDS.c.position)).all())
        verify_log(connection, signer.verifier())
    assert [numbered[record_id] for record_id in ids] == [0, 4, 1, 2, 3, 5]


def test_a_second_sequencer_skips_while_the_lock_is_held(engine, signer, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serializes sequencers with its write lock; there is no lock to skip")
    write_records(engine, 3)
    with engine.begin() as holder:
        holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        assert sequence_batch(engine, signer) is None
    assert sequence_batch(engine, signer).sequenced == 3


def test_concurrent_writers_and_two_sequencers_leave_no_gap_and_no_duplicate(engine, signer):
    writers, per_writer = 6, 40
    done = threading.Event()
    errors: list[BaseException] = []

    def write(number: int) -> None:
        try:
            for _ in range(per_writer):
                with transaction(engine) as session:
                    recorder.add(session, AuditTrail(request_id=f"w{number}", action="test.concurrent"), 200)
        except BaseException as error:
            errors.append(error)

    def sequence() -> None:
        try:
            while not done.is_set():
                sequence_batch(engine, signer, batch_size=7)
        except BaseException as error:
            errors.append(error)

    sequencers = [threading.Thread(target=sequence) for _ in range(2)]
    threads = [threading.Thread(target=write, args=(number,)) for number in range(writers)]
    for thread in sequencers + threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    for thread in sequencers:
        thread.join()
    assert errors == []
    sequence_pending(engine, signer)

    log = sequenced(engine)
    assert [position for position, _ in log] == list(range(writers * per_writer))
    compact, _ = recompute([record for _, record in log])
    assert checkpoint(engine, signer).root_hash == compact.root()
    with engine.connect() as connection:
        assert verify_log(connection, signer.verifier()).pending == 0


def test_the_api_process_sequences_in_the_background(settings, accounts):
    settings = settings.model_copy(
        update={"audit_sequencer_in_process": True, "audit_sequencer_interval_seconds": 0.05}
    )
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            auth_headers(client, accounts.create(Role.PHYSICIAN))
            deadline = time.monotonic() + 5
            size = None
            while size != "1" and time.monotonic() < deadline:
                time.sleep(0.05)
                note = client.get("/v1/audit/checkpoint")
                size = note.text.split("\n")[1] if note.status_code == 200 else None
            assert size == "1"
    finally:
        app.state.runtime.engine.dispose()


def test_the_sequencer_command_runs_once_or_until_sigterm(settings, engine, signer, monkeypatch, capsys):
    env = {
        "CONFRERE_DATA_DIR": str(settings.data_dir),
        "CONFRERE_DATABASE_URL": settings.resolved_database_url,
        "CONFRERE_AUDIT_SEQUENCER_INTERVAL_SECONDS": "0.05",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        assert confrere(["audit", "key"]) == 0
        assert capsys.readouterr().out.strip() == signer.verifier().key_string
        write_records(engine, 3)
        assert confrere(["audit", "sequencer", "--once"]) == 0
        assert "sequenced 3 records" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()

    command = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", command, "audit", "sequencer"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "running" in process.stdout.readline()
        write_records(engine, 2)
        deadline = time.monotonic() + 10
        while len(sequenced(engine)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sequenced(engine)) == 5
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "stopped" in process.stdout.read()
    finally:
        process.kill()
        process.stdout.close()


def test_the_signing_key_is_created_once_and_pinned_to_its_origin(tmp_path):
    settings = Settings(data_dir=tmp_path, audit_log_origin="hospital.example/audit")
    key_file = settings.resolved_keys_dir / AUDIT_LOG_KEY_FILE
    first = load_audit_log_signer(settings)
    assert first.name == "hospital.example/audit"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load_audit_log_signer(settings).key_string == first.key_string
    with pytest.raises(KeyringError, match=r"signs for origin 'hospital\.example/audit'"):
        load_audit_log_signer(settings.model_copy(update={"audit_log_origin": "elsewhere.example/audit"}))

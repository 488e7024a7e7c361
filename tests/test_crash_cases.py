"""Crash safety of cases: a real server creating encrypted cases and attachments under concurrent load is
killed with SIGKILL, then restarted. Every acknowledged (201) write must be there and intact, nothing
half-written may be visible, the audit log must verify, and no blob may stay that no row names once
`confrere blobs sweep` has run. Runs on the suite's database (SQLite, or CONFRERE_TEST_DATABASE_URL).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.log import RECORDS, verify_log
from app.crypto.e2ee import Suite
from app.models.cases import Case, CaseObject, Envelope
from app.models.users import Role
from app.platform.blobstore import INCOMING_PREFIX
from tests.e2ee_helpers import clinician, create_cases_until_stopped, open_object
from tests.live_server import ROOT, live_server, settings_env, wait_for

MIN_ACKNOWLEDGED = 20
WORKERS = 4
SERVER_ENV = {
    "CONFRERE_WRITE_RATE_PER_MINUTE": "0",  # the load is one user's; limits have their own tests
    "CONFRERE_AUDIT_SEQUENCER_INTERVAL_SECONDS": "0.05",
}


def _blob_files(blobs: Path) -> dict[str, Path]:
    return {path.name: path for path in blobs.glob("??/*")}


def _sweep(settings, grace_seconds: int) -> str:
    command = [
        sys.executable,
        "-c",
        "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))",
        "blobs",
        "sweep",
        "--grace-seconds",
        str(grace_seconds),
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=settings_env(settings), capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.mark.slow
def test_a_killed_server_keeps_every_acknowledged_case_whole(client, accounts, settings, engine, tmp_path):
    physician = clinician(client, accounts, Role.PHYSICIAN, suite=Suite.X25519)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",), suite=Suite.X25519)
    acked: dict[str, str] = {}
    with live_server(settings, tmp_path / "server.log", SERVER_ENV) as server:
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=create_cases_until_stopped, args=(server.url, physician, derm, stop, acked)
            )
            for _ in range(WORKERS)
        ]
        for worker in workers:
            worker.start()
        wait_for(lambda: len(acked) > MIN_ACKNOWLEDGED)
        server.process.send_signal(signal.SIGKILL)  # mid-load: uploads, commits, a sequencer batch in flight
        server.process.wait()
        stop.set()
        for worker in workers:
            worker.join()
    assert len(acked) > MIN_ACKNOWLEDGED, "too little load to mean anything"

    with live_server(settings, tmp_path / "restarted.log", SERVER_ENV) as server:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                pending = connection.execute(
                    select(func.count()).select_from(RECORDS).where(RECORDS.c.position.is_(None))
                ).scalar()
            if pending == 0:
                break
            time.sleep(0.1)
        assert pending == 0, "the restarted server did not sequence what the killed one left"
        # One acknowledged case, read back through the API, still opens on the specialist's device.
        case_id = next(iter(key for key in acked if key in _case_ids(engine)))
        detail = httpx.get(f"{server.url}/v1/cases/{case_id}", headers=derm.headers).json()
        assert open_object(detail["sealed"], derm.device) == b'{"question": "load"}'

    with engine.connect() as connection:
        cases = set(connection.execute(select(Case.id)).scalars())
        objects = connection.execute(
            select(
                CaseObject.id,
                CaseObject.case_id,
                CaseObject.kind,
                CaseObject.ciphertext,
                CaseObject.ciphertext_sha256,
            )
        ).all()
        envelopes = Counter(connection.execute(select(Envelope.object_id)).scalars())
        report = verify_log(connection, client.app.state.runtime.audit_log_signer.verifier())
        created = {
            row.case_id
            for row in connection.execute(select(RECORDS.c.case_id).where(RECORDS.c.action == "case.create"))
        }
    stored = {str(row.id): row for row in objects}
    # Every acknowledged write is there, with the very bytes that were sent.
    for object_id, sha256 in acked.items():
        assert object_id in stored, f"acknowledged {object_id} is missing"
        assert stored[object_id].ciphertext_sha256 == sha256
    # Nothing half-written: each case has its object and its audit record, each object its two envelopes.
    assert {row.case_id for row in objects if row.kind == "case"} == cases
    assert all(envelopes[row.id] == 2 for row in objects), "an object without all its envelopes"
    for row in objects:
        if row.kind == "case":
            assert hashlib.sha256(row.ciphertext).hexdigest() == row.ciphertext_sha256
    assert cases <= created
    assert report.tree_size > len(cases)

    # The blob store: every attachment's blob is whole; what no row names goes with the sweep.
    blobs = settings.resolved_blobs_dir
    attachments = {row.ciphertext_sha256 for row in objects if row.kind == "attachment"}
    for sha256 in attachments:
        assert hashlib.sha256((blobs / sha256[:2] / sha256).read_bytes()).hexdigest() == sha256
    crash_orphans = set(_blob_files(blobs)) - attachments  # blobs committed just before the kill
    interrupted = set(blobs.glob(f"{INCOMING_PREFIX}*"))  # uploads the kill cut short
    young = _plant_leftovers(blobs)
    print(
        f"crash: {len(acked)} acknowledged writes, {len(cases)} cases, {len(crash_orphans)} orphan blobs, "
        f"{len(interrupted)} interrupted uploads"
    )
    _sweep(settings, grace_seconds=60)
    assert set(_blob_files(blobs)) == attachments | crash_orphans | {young}, "an old orphan or a young blob"
    assert set(blobs.glob(f"{INCOMING_PREFIX}*")) == interrupted, "only the old interrupted upload goes"
    # With the server stopped nothing is in flight: a sweep without grace leaves only what rows name.
    _sweep(settings, grace_seconds=0)
    assert set(_blob_files(blobs)) == attachments
    assert not list(blobs.glob(f"{INCOMING_PREFIX}*"))


def _case_ids(engine) -> set[str]:
    with engine.connect() as connection:
        return {str(case_id) for case_id in connection.execute(select(Case.id)).scalars()}


def _plant_leftovers(blobs: Path) -> str:
    """What a crash between a blob's commit and its row's leaves, aged past the grace period; and one
    young orphan, which may be an upload about to commit and must stay. Returns the young one's hash."""
    old = time.time() - 3600
    for data in (b"orphan of a crash", b"x" * 10):
        digest = hashlib.sha256(data).hexdigest()
        path = blobs / digest[:2] / digest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (old, old))
    interrupted = blobs / f"{INCOMING_PREFIX}{uuid.uuid4().hex}"
    interrupted.write_bytes(b"half an upload")
    os.utime(interrupted, (old, old))
    young = hashlib.sha256(b"an upload about to commit").hexdigest()
    (blobs / young[:2]).mkdir(parents=True, exist_ok=True)
    (blobs / young[:2] / young).write_bytes(b"an upload about to commit")
    return young

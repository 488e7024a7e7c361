"""Several API nodes as one service: three API processes and a separate `confrere audit sequencer` on one
PostgreSQL and one S3-compatible store (moto's server). A case is created on one node, read, claimed and
answered on the others, its attachment stored on one node and downloaded from another, and its events
streamed (SSE) by a third; then one node is killed under load, and no acknowledged write is lost, the event
sequencers of the three nodes (one at a time, an advisory lock) leave no gap, and the audit log verifies.

`make test` runs it once on PostgreSQL (about a minute); `make test-multinode` runs it with a longer load.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from itertools import cycle

import boto3
import pytest
from sqlalchemy import func, select

from app.audit.log import RECORDS, verify_log
from app.client.api import ConfrereApi
from app.client.clinician import Attachment, Clinician
from app.crypto.e2ee import Suite
from app.models.cases import CaseObject
from app.models.notifications import Event
from app.models.users import Role
from tests.conftest import PASSWORD
from tests.e2ee_helpers import clinician, create_cases_until_stopped
from tests.live_server import ROOT, live_servers, settings_env
from tests.s3_server import S3_ENV

pytestmark = pytest.mark.slow

LOAD_SECONDS = float(os.environ.get("CONFRERE_MULTINODE_LOAD_SECONDS", "3"))
NODE_ENV = {
    "CONFRERE_AUDIT_SEQUENCER_IN_PROCESS": "false",  # its own process, below
    "CONFRERE_GENERATE_KEYS": "false",  # all use the keys the test's app made
    "CONFRERE_WRITE_RATE_PER_MINUTE": "0",  # the load is one user's; the shared limits have their own tests
    "CONFRERE_EVENTS_SEQUENCER_INTERVAL_SECONDS": "0.2",
    # Streams end soon (the follower reconnects until it is told to stop), so the nodes stop promptly.
    "CONFRERE_EVENTS_STREAM_MAX_SECONDS": "5",
}
CLI = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture
def postgres(settings):
    if settings.is_sqlite:
        pytest.skip("several nodes share PostgreSQL; SQLite serves one node")
    return settings


def _as(url: str, email: str, enrolled: Clinician | None = None) -> Clinician:
    """A clinician talking to the node at `url`: a new device, or the same device as `enrolled`."""
    api = ConfrereApi(url)
    api.login(email, PASSWORD)
    if enrolled is None:
        return Clinician.enrol_device(api, "x25519", "multinode test device")
    return Clinician(api, enrolled.user_id, enrolled.device_id, enrolled.keys)


def _wait_for(condition, seconds: float, failure: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)


def _pending(engine, column) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).where(column.is_(None))).scalar()


def test_three_nodes_serve_as_one_and_survive_the_loss_of_one(
    postgres, client, accounts, engine, s3, tmp_path
):
    bucket = s3.new_bucket()
    env = {**NODE_ENV, **s3.settings_env(bucket)}
    physician_account = accounts.create(Role.PHYSICIAN)
    derm_account = accounts.create(Role.SPECIALIST, specialties=("dermatology",))
    with ExitStack() as stack:
        with (tmp_path / "sequencer.log").open("ab") as log:
            sequencer = subprocess.Popen(
                [sys.executable, "-c", CLI, "audit", "sequencer"],
                cwd=ROOT,
                env={**settings_env(postgres), **env},
                stdout=log,
                stderr=log,
            )
        stack.callback(sequencer.wait, 15)
        stack.callback(sequencer.terminate)
        logs = [tmp_path / f"{name}.log" for name in "abc"]
        a, b, c = stack.enter_context(live_servers(postgres, logs, env))

        # One case across the three nodes: created on A, read and claimed on B, answered on C, its events
        # followed on C by the requester.
        physician = _as(a.url, physician_account.email)
        derm = _as(b.url, derm_account.email)
        received: list[dict] = []
        followed = threading.Event()

        def follow() -> None:
            api, last = _as(c.url, physician_account.email, physician).api, 0
            while not followed.is_set():
                for event in api.events(last_event_id=last, reconnect=False):
                    received.append(event)
                    last = event.get("id", last)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        photo = Attachment("photo.jpg", "image/jpeg", os.urandom(300_000))
        case_id = physician.create_case(specialty="dermatology", question="multinode", attachments=[photo])
        opened = derm.open_case(case_id)  # on B: the attachment comes from the shared store
        assert (opened.content.question, opened.attachments[0].data) == ("multinode", photo.data)
        assert derm.transition(case_id, "claim")["status"] == "claimed"
        derm_on_c = _as(c.url, derm_account.email, derm)
        report_id = derm_on_c.post(case_id, "report", "the answer")
        assert derm_on_c.transition(case_id, "answer", report_message_id=report_id)["status"] == "answered"
        assert [m.text for m in physician.read_messages(case_id)] == ["the answer"]  # on A
        expected = ["case.claimed", "case.message_posted", "case.report_available"]
        _wait_for(
            lambda: [e["type"] for e in received if e.get("case_id") == case_id] == expected,
            15,
            f"the stream on C did not see B's and C's events: {received}",
        )
        followed.set()

        # Load on every node; B is killed in the middle of it.
        load_physician = clinician(client, accounts, Role.PHYSICIAN, suite=Suite.X25519)
        load_derm = clinician(
            client, accounts, Role.SPECIALIST, specialties=("dermatology",), suite=Suite.X25519
        )
        acked: dict[str, str] = {}
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=create_cases_until_stopped, args=(node.url, load_physician, load_derm, stop, acked)
            )
            for node, _ in zip(cycle((a, b, c)), range(6), strict=False)
        ]
        for worker in workers:
            worker.start()
        time.sleep(LOAD_SECONDS)
        b.process.send_signal(signal.SIGKILL)
        b.process.wait()
        time.sleep(1)  # A and C go on serving
        stop.set()
        for worker in workers:
            worker.join()
        assert len(acked) > 20, "too little load to mean anything"

        # Every acknowledged write is there, its bytes those that were sent; attachments in the store.
        with engine.connect() as connection:
            stored = {
                str(row.id): row
                for row in connection.execute(
                    select(CaseObject.id, CaseObject.kind, CaseObject.ciphertext_sha256)
                )
            }
        for object_id, sha256 in acked.items():
            assert object_id in stored, f"acknowledged {object_id} is missing"
            assert stored[object_id].ciphertext_sha256 == sha256
        store = boto3.client("s3", endpoint_url=s3.endpoint_url, **_credentials())
        names = {
            item["Key"].rsplit("/", 1)[-1]
            for page in store.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="blobs/")
            for item in page.get("Contents", [])
        }
        attachments = {row.ciphertext_sha256 for row in stored.values() if row.kind == "attachment"}
        assert attachments <= names, "an attachment row without its blob"

        # A sweep without grace, while A and C still serve, keeps every blob a row names.
        swept = subprocess.run(
            [sys.executable, "-c", CLI, "blobs", "sweep", "--grace-seconds", "0"],
            cwd=ROOT,
            env={**settings_env(postgres), **env},
            capture_output=True,
            text=True,
            check=True,
        )
        assert "removed" in swept.stdout
        for sha256 in attachments:
            store.head_object(Bucket=bucket, Key=f"blobs/{sha256}")

        # The sequencers: the audit log's (its own process) and the events' (in each of the three nodes, one
        # at a time) leave nothing pending, and the log verifies.
        _wait_for(lambda: _pending(engine, RECORDS.c.position) == 0, 30, "audit records left unsequenced")
        _wait_for(lambda: _pending(engine, Event.position) == 0, 30, "events left unsequenced")
        with engine.connect() as connection:
            report = verify_log(connection, client.app.state.runtime.audit_log_signer.verifier())
            positions = list(connection.execute(select(Event.position).order_by(Event.position)).scalars())
        assert report.tree_size > len(acked)
        assert positions == list(range(positions[0], positions[0] + len(positions))), "a gap in the events"


def _credentials() -> dict[str, str]:
    return {
        "region_name": S3_ENV["AWS_REGION"],
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
    }

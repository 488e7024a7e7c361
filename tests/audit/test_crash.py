"""A server killed under load loses no acknowledged record: records commit with their action, before the
response, and the sequencer of the next process numbers whatever the dead one left pending."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from app.audit.log import RECORDS, verify_log
from app.models.users import Role
from app.schemas.professional_ids import luhn_valid
from tests.conftest import PASSWORD
from tests.live_server import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN_ACKNOWLEDGED = 50
STARTUP_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(settings, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "CONFRERE_ENVIRONMENT": "test",
        "CONFRERE_DATA_DIR": str(settings.data_dir),
        "CONFRERE_DATABASE_URL": settings.resolved_database_url,
        "CONFRERE_DB_POOL_SIZE": "16",
        "CONFRERE_AUDIT_SEQUENCER_INTERVAL_SECONDS": "0.05",
    }
    command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--log-level", "warning"], cwd=REPO_ROOT, env=env
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise AssertionError("the server did not start")


def rpps() -> str:
    prefix = "".join(random.choices("0123456789", k=10))
    return next(prefix + digit for digit in "0123456789" if luhn_valid(prefix + digit))


def load(base: str, token: str, stop: threading.Event, acknowledged: list[str], register: bool) -> None:
    """Reads (GET /v1/me) or registrations until stopped; keeps the request id of every 2xx answer."""
    with httpx.Client(base_url=base, timeout=5) as client:
        while not stop.is_set():
            request_id = uuid.uuid4().hex
            headers = {"X-Request-ID": request_id, "Authorization": f"Bearer {token}"}
            try:
                if register:
                    body = {
                        "email": f"crash-{request_id}@example.org",
                        "password": PASSWORD,
                        "display_name": "Dr Crash Test",
                        "professional_id_kind": "rpps",
                        "professional_id": rpps(),
                        "roles": ["physician"],
                    }
                    response = client.post("/v1/auth/register", json=body, headers=headers)
                else:
                    response = client.get("/v1/me", headers=headers)
            except httpx.TransportError:
                return  # the server is gone: whatever was in flight was never acknowledged
            if 200 <= response.status_code < 300:
                acknowledged.append(request_id)


@pytest.mark.slow
def test_a_killed_server_loses_no_acknowledged_record(app, settings, accounts, engine, signer):
    physician = accounts.create(Role.PHYSICIAN)
    port = free_port()
    server = start_server(settings, port)
    base = f"http://127.0.0.1:{port}"
    try:
        login = httpx.post(f"{base}/v1/auth/token", json={"email": physician.email, "password": PASSWORD})
        token = login.json()["access_token"]
        stop = threading.Event()
        acknowledged: list[str] = []
        workers = [
            threading.Thread(target=load, args=(base, token, stop, acknowledged, number == 0))
            for number in range(6)
        ]
        for worker in workers:
            worker.start()
        wait_for(lambda: len(acknowledged) > MIN_ACKNOWLEDGED)
        server.send_signal(signal.SIGKILL)  # mid-load: requests, commits and a sequencer batch in flight
        server.wait()
        stop.set()
        for worker in workers:
            worker.join()
    finally:
        server.kill()
        server.wait()
    assert len(acknowledged) > MIN_ACKNOWLEDGED

    restarted = start_server(settings, free_port())
    try:
        deadline = time.monotonic() + 10
        pending = None
        while pending != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
            with engine.connect() as connection:
                unsequenced = select(func.count()).select_from(RECORDS).where(RECORDS.c.position.is_(None))
                pending = connection.execute(unsequenced).scalar()
        assert pending == 0, "the restarted server's sequencer did not number the pending records"
    finally:
        restarted.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully (lifespan: the sequencer stops), then re-raises the signal.
        assert restarted.wait(timeout=15) in (0, -signal.SIGTERM)

    with engine.connect() as connection:
        report = verify_log(connection, signer.verifier())
        rows = connection.execute(select(RECORDS.c.record).where(RECORDS.c.position.is_not(None))).all()
    logged = {orjson.loads(row.record)["request"] for row in rows}
    assert report.tree_size == len(rows)
    missing = set(acknowledged) - logged
    assert not missing, f"{len(missing)} acknowledged requests have no record"

"""The event stream through real server processes and the reference client: reconnection with Last-Event-ID
after the server ends a stream, `confrere events`, and on PostgreSQL a stream on one worker woken (LISTEN/
NOTIFY) by a case created through another."""

from __future__ import annotations

import contextlib
import io
import threading
import time
import uuid
from contextlib import ExitStack

import pytest

from app.cli import main
from app.client.api import ConfrereApi
from app.client.clinician import Clinician
from app.models.users import Role
from tests.conftest import PASSWORD
from tests.live_server import live_server

pytestmark = pytest.mark.slow

STREAM_SECONDS = 15
# How long the test waits for an event: far less than a stream's life, so that an event that arrives in time
# was brought by a wake-up, not by the reading a stream does before it ends.
PATIENCE_SECONDS = 8
# No heartbeat within a stream's life: an event arrives before the stream ends only if a wake-up brought it.
ENV = {"CONFRERE_EVENTS_STREAM_MAX_SECONDS": str(STREAM_SECONDS), "CONFRERE_EVENTS_HEARTBEAT_SECONDS": "60"}


def _clinician(server_url: str, account) -> Clinician:
    api = ConfrereApi(server_url)
    api.login(account.email, PASSWORD)
    return Clinician.enrol_device(api, "x25519", "events test device")


def _wait_for(condition, seconds: float, failure: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.05)


def test_following_events_across_workers_and_reconnections(settings, accounts, tmp_path, database_url):
    postgres = database_url.startswith("postgresql")
    marker = f"MARKER-{uuid.uuid4().hex}"
    physician_account = accounts.create(Role.PHYSICIAN)
    derm_account = accounts.create(Role.SPECIALIST, specialties=("dermatology",))
    with ExitStack() as stack:
        # Two API processes on PostgreSQL; SQLite serves from one process.
        servers = [
            stack.enter_context(live_server(settings, tmp_path / f"server{n}.log", ENV))
            for n in range(2 if postgres else 1)
        ]
        derm = _clinician(servers[0].url, derm_account)
        physician = _clinician(servers[-1].url, physician_account)
        received: list[dict] = []

        def follow() -> None:
            for event in derm.api.events(last_event_id=0):
                received.append(event)
                if len(received) == 2:
                    return

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        time.sleep(1)
        created = []
        for attempt in range(2):
            if attempt:
                # Outlive the server's stream: this case reaches the client after it reconnected.
                time.sleep(STREAM_SECONDS + 1)
            created.append(physician.create_case(specialty="dermatology", question=marker))
            # Woken at once (NOTIFY across processes, or in process), not when the stream ends.
            _wait_for(
                lambda n=len(created): len(received) >= n,
                PATIENCE_SECONDS,
                "no wake-up: the event did not reach the open stream",
            )
        follower.join(5)

        assert [(event["type"], event["case_id"]) for event in received] == [
            ("case.queued", case_id) for case_id in created
        ]

        # The CLI replays the same, once, from a local profile.
        cli_home = tmp_path / "client"
        env = {"CONFRERE_CLIENT_HOME": str(cli_home), "CONFRERE_PASSWORD": PASSWORD}
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            login = ["login", "--server", servers[0].url, "--email", derm_account.email, "--profile", "t"]
            assert main(login) == 0
            output = _capture(lambda: main(["events", "--once", "--last-event-id", "0", "--profile", "t"]))
    lines = [line for line in output.splitlines() if "case.queued" in line]
    assert [line.split()[-1] for line in lines] == created
    assert marker not in output


def _capture(run) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert run() == 0
    return buffer.getvalue()

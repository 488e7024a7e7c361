"""Concurrency as documented (docs/reliability.md): racing transitions, racing re-shares and racing token
refreshes end in one consistent state, the losers get a 409 that says why, and an honest client that
retried a refresh keeps its session while a thief's late replay ends it.

Threads share one TestClient; sync routes run in its worker threads, so the transactions really overlap on
PostgreSQL. SQLite runs write transactions one at a time (app.runtime.database), which these tests also
accept.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest

from app.models.base import utcnow
from app.models.users import Role
from app.routers import auth as auth_router
from app.services import transitions
from tests.conftest import assert_problem, login
from tests.e2ee_helpers import clinician, create_case, devices_of, post_message, share_body

DERM = ("dermatology",)


def _move(client, person, case_id: str, action: str, **extra):
    body = {"action": action, **extra}
    return client.post(f"/v1/cases/{case_id}/transitions", json=body, headers=person.headers)


def _together(*calls):
    """Runs the calls at once (as far as threads go) and returns their responses in order."""
    start = threading.Barrier(len(calls), timeout=30)

    def run(call):
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.fixture
def team(client, accounts):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    colleague = clinician(client, accounts, Role.SPECIALIST, specialties=DERM, devices=2)
    return physician, derm, colleague


def _answered_or_withdrawn(client, physician, derm) -> tuple[list, dict]:
    case = create_case(client, physician, derm.devices, specialty="dermatology")
    assert _move(client, derm, case["id"], "claim").status_code == 200
    report = post_message(client, derm, case["id"], "report", "opinion", devices_of(physician, derm))
    assert report.status_code == 201, report.text
    responses = _together(
        lambda: _move(client, derm, case["id"], "answer", report_message_id=report.json()["id"]),
        lambda: _move(client, physician, case["id"], "withdraw"),
    )
    return responses, client.get(f"/v1/cases/{case['id']}", headers=physician.headers).json()


def test_an_answer_and_a_withdrawal_racing_leave_exactly_one_applied(client, team):
    physician, derm, _ = team
    for _ in range(4):
        (answer, withdraw), final = _answered_or_withdrawn(client, physician, derm)
        assert sorted([answer.status_code, withdraw.status_code]) == [200, 409], (answer.text, withdraw.text)
        loser = answer if answer.status_code == 409 else withdraw
        assert_problem(loser, 409, "illegal_transition")
        assert final["status"] == ("answered" if answer.status_code == 200 else "withdrawn")


def test_racing_transitions_that_decided_together_still_apply_once(client, team, engine, monkeypatch):
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs whole write transactions one at a time: no two decide on the same state")
    physician, derm, _ = team
    decided = threading.Barrier(2, timeout=30)
    apply = transitions._apply

    def apply_together(*args):
        decided.wait()
        apply(*args)

    monkeypatch.setattr(transitions, "_apply", apply_together)
    case = create_case(client, physician, derm.devices, specialty="dermatology")
    with ThreadPoolExecutor(2) as pool:
        claim = pool.submit(_move, client, derm, case["id"], "claim")
        withdraw = pool.submit(_move, client, physician, case["id"], "withdraw")
    statuses = sorted([claim.result().status_code, withdraw.result().status_code])
    assert statuses == [200, 409]
    # Whichever lost says what happened: a claim beaten by the withdrawal is not "already claimed".
    loser = claim.result() if claim.result().status_code == 409 else withdraw.result()
    assert_problem(loser, 409, "illegal_transition")


def test_two_participants_sharing_with_the_same_colleague_at_once(client, team):
    physician, derm, colleague = team
    case = create_case(client, physician, derm.devices, specialty="dermatology")
    assert _move(client, derm, case["id"], "claim").status_code == 200
    bodies = []
    for person in (physician, derm):
        detail = client.get(f"/v1/cases/{case['id']}", headers=person.headers).json()
        bodies.append((person, share_body(person.device, case["id"], [detail["sealed"]], colleague)))
    responses = _together(
        *(
            lambda person=person, body=body: client.post(
                f"/v1/cases/{case['id']}/envelopes", json=body, headers=person.headers
            )
            for person, body in bodies
        )
    )
    # Re-share is idempotent: both succeed, and the colleague holds one envelope per device, whoever won.
    assert [r.status_code for r in responses] == [201, 201]
    assert sorted(r.json()["envelope_count"] for r in responses) == [0, 2]
    detail = client.get(f"/v1/cases/{case['id']}", headers=colleague.headers).json()
    assert sorted(e["device_id"] for e in detail["sealed"]["envelopes"]) == sorted(
        d.id for d in colleague.devices
    )


def _refresh(client, token: str):
    return client.post("/v1/auth/refresh", json={"refresh_token": token})


def test_concurrent_refreshes_with_one_token_all_get_the_same_successor(client, accounts):
    tokens = login(client, accounts.create(Role.PHYSICIAN))
    responses = _together(*(lambda: _refresh(client, tokens["refresh_token"]) for _ in range(4)))
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    successors = {r.json()["refresh_token"] for r in responses}
    assert len(successors) == 1  # the family stays one chain
    for response in responses:
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        assert client.get("/v1/me", headers=headers).status_code == 200
    assert _refresh(client, successors.pop()).status_code == 200


def test_an_honest_retry_keeps_the_session_and_a_late_replay_ends_it(client, accounts, settings, monkeypatch):
    tokens = login(client, accounts.create(Role.PHYSICIAN))
    first = _refresh(client, tokens["refresh_token"]).json()  # the answer is "lost"
    clock = utcnow()
    monkeypatch.setattr(auth_router, "utcnow", lambda: clock + timedelta(seconds=5))
    retried = _refresh(client, tokens["refresh_token"])
    assert retried.status_code == 200
    assert retried.json()["refresh_token"] == first["refresh_token"]
    assert retried.json()["refresh_expires_in"] <= first["refresh_expires_in"]

    # Past the grace window the same replay is a theft: the whole session ends, successors included.
    late = clock + timedelta(seconds=settings.refresh_reuse_grace_seconds + 1)
    monkeypatch.setattr(auth_router, "utcnow", lambda: late)
    assert_problem(_refresh(client, tokens["refresh_token"]), 401, "refresh_token_reused")
    assert_problem(_refresh(client, first["refresh_token"]), 401, "invalid_refresh_token")
    headers = {"Authorization": f"Bearer {retried.json()['access_token']}"}
    assert_problem(client.get("/v1/me", headers=headers), 401, "invalid_token")


def test_a_replay_after_the_successor_was_used_ends_the_session_even_within_the_grace(client, accounts):
    tokens = login(client, accounts.create(Role.PHYSICIAN))
    second = _refresh(client, tokens["refresh_token"]).json()
    third = _refresh(client, second["refresh_token"]).json()
    assert_problem(_refresh(client, tokens["refresh_token"]), 401, "refresh_token_reused")
    assert_problem(_refresh(client, third["refresh_token"]), 401, "invalid_refresh_token")


def test_one_specialty_code_added_six_times_at_once_is_one_201_and_409s(client, accounts):
    admin = accounts.create(Role.ADMIN)
    headers = {"Authorization": f"Bearer {login(client, admin)['access_token']}"}
    for attempt in range(3):
        body = {
            "code": f"sleep-medicine-{attempt}",
            "name": "Sleep medicine",
            "snomed_code": f"15710001751{attempt}",
        }
        responses = _together(
            *[
                lambda body=body: client.post("/v1/admin/specialties", json=body, headers=headers)
                for _ in range(6)
            ]
        )
        assert sorted(response.status_code for response in responses) == [201] + [409] * 5
        for response in responses:
            if response.status_code == 409:
                assert_problem(response, 409, "specialty_exists")


def test_ten_webhooks_registered_at_once_keep_the_cap(app, client, accounts, settings):
    receivers_here = settings.model_copy(update={"webhook_allow_private_targets": True})
    app.state.runtime = replace(app.state.runtime, settings=receivers_here)
    physician = clinician(client, accounts, Role.PHYSICIAN)
    body = {"url": "http://127.0.0.1:9/hook", "secret": "s3cr3t-" + "x" * 40}
    responses = _together(
        *[lambda: client.post("/v1/webhooks", json=body, headers=physician.headers) for _ in range(10)]
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * settings.max_webhooks_per_user + [409] * (10 - settings.max_webhooks_per_user)
    assert len(client.get("/v1/webhooks", headers=physician.headers).json()) == settings.max_webhooks_per_user

"""The case state machine: legal moves, refusals, decline back to the queue, concurrent claims, due dates."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from app.models.audit import AuditRecord
from app.models.base import utcnow
from app.models.cases import Case
from app.models.users import Role
from app.runtime.database import new_session, transaction
from app.services import transitions
from tests.conftest import assert_problem
from tests.e2ee_helpers import clinician, create_case, devices_of, post_message

DERM = ("dermatology",)


def move(client, person, case_id: str, action: str, **extra):
    return client.post(
        f"/v1/cases/{case_id}/transitions", json={"action": action, **extra}, headers=person.headers
    )


def _setup(client, accounts, **case_options):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    case = create_case(client, physician, derm.devices, specialty="dermatology", **case_options)
    return physician, derm, case


def test_illegal_and_unauthorized_transitions(client, accounts):
    physician, derm, case = _setup(client, accounts)
    case_id = case["id"]
    for action, extra in [("close", {}), ("provide_info", {}), ("request_info", {})]:
        assert_problem(move(client, physician, case_id, action, **extra), 409, "illegal_transition")
    assert_problem(
        move(client, derm, case_id, "answer", report_message_id=case_id), 409, "illegal_transition"
    )
    assert_problem(move(client, physician, case_id, "claim"), 403, "transition_not_allowed")
    # Only a named specialist declines an open case; the queue's specialists simply leave it.
    assert_problem(
        move(client, derm, case_id, "decline", reason="unavailable"), 403, "transition_not_allowed"
    )
    assert_problem(move(client, derm, case_id, "withdraw"), 403, "transition_not_allowed")
    assert_problem(move(client, derm, case_id, "decline"), 422, "invalid_input")  # a reason is required
    assert_problem(move(client, derm, case_id, "claim", reason="other"), 422, "invalid_input")
    assert_problem(
        move(client, derm, case_id, "decline", reason="Patient is my neighbour"), 422, "invalid_input"
    )

    assert move(client, derm, case_id, "claim").status_code == 200
    assert_problem(move(client, derm, case_id, "claim"), 409, "already_claimed")
    assert_problem(move(client, physician, case_id, "request_info"), 403, "transition_not_allowed")
    assert_problem(move(client, physician, case_id, "close"), 409, "illegal_transition")

    # Answering needs a report message by the assignee on this very case.
    message = post_message(
        client, derm, case_id, "message", "a plain note", devices_of(physician, derm)
    ).json()
    for report_id in (message["id"], case_id):
        assert_problem(
            move(client, derm, case_id, "answer", report_message_id=report_id), 422, "report_required"
        )
    assert_problem(move(client, derm, case_id, "answer"), 422, "invalid_input")

    withdrawn = move(client, physician, case_id, "withdraw")
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["closed_at"] is not None
    assert_problem(move(client, physician, case_id, "withdraw"), 409, "illegal_transition")
    response = post_message(client, physician, case_id, "message", "too late", devices_of(physician, derm))
    assert_problem(response, 409, "case_closed")

    records = select(AuditRecord.action, AuditRecord.outcome).where(AuditRecord.case_id == uuid.UUID(case_id))
    with new_session(client.app.state.runtime.engine) as session:
        actions = session.exec(records).all()
    assert ("case.claim", "success") in actions
    assert ("case.withdraw", "success") in actions
    assert ("case.close", "error") in actions  # a 409 is recorded too


def test_writers_follow_their_part_in_the_case(client, accounts):
    physician, derm, case = _setup(client, accounts)
    everyone = devices_of(physician, derm)
    # While open, the queue's specialists see the thread but write nothing.
    assert_problem(
        post_message(client, derm, case["id"], "message", "hi", everyone), 403, "write_not_allowed"
    )
    move(client, derm, case["id"], "claim")
    assert_problem(
        post_message(client, physician, case["id"], "report", "x", everyone), 403, "write_not_allowed"
    )
    assert_problem(
        post_message(client, physician, case["id"], "info_request", "x", everyone), 403, "write_not_allowed"
    )
    assert_problem(
        post_message(client, derm, case["id"], "info_response", "x", everyone), 403, "write_not_allowed"
    )
    for person, kind in [(physician, "message"), (derm, "message"), (derm, "info_request"), (derm, "report")]:
        assert post_message(client, person, case["id"], kind, "ok", everyone).status_code == 201


def test_declines_return_the_case_to_the_specialty_queue(client, accounts):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    named = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    case = create_case(client, physician, named.devices, specialty="dermatology", named=named.id)
    assert client.get("/v1/cases/queue", headers=derm.headers).json()["items"] == []

    declined = move(client, named, case["id"], "decline", reason="outside_expertise").json()
    assert (declined["status"], declined["named_specialist_id"]) == ("open", None)
    assert declined["decline_reason"] == "outside_expertise"
    # Back in the queue of the specialty (whose devices hold no envelope until the requester re-shares).
    queue = client.get("/v1/cases/queue", headers=derm.headers).json()["items"]
    assert [item["id"] for item in queue] == [case["id"]]
    assert client.get(f"/v1/cases/{case['id']}", headers=derm.headers).json()["sealed"]["envelopes"] == []

    assert move(client, derm, case["id"], "claim").json()["assignee_id"] == derm.id
    assert_problem(client.get(f"/v1/cases/{case['id']}", headers=named.headers), 404, "case_not_found")
    reopened = move(client, derm, case["id"], "decline", reason="unavailable").json()
    assert (reopened["status"], reopened["assignee_id"], reopened["decline_reason"]) == (
        "open",
        None,
        "unavailable",
    )
    assert [item["id"] for item in client.get("/v1/cases/queue", headers=derm.headers).json()["items"]] == [
        case["id"]
    ]


def test_concurrent_claims_have_exactly_one_winner(client, accounts):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    specialists = [clinician(client, accounts, Role.SPECIALIST, specialties=DERM) for _ in range(6)]
    for _ in range(3):
        case = create_case(client, physician, devices_of(*specialists), specialty="dermatology")
        barrier = threading.Barrier(len(specialists))
        results: dict[str, object] = {}

        def claim(person, case_id=case["id"], barrier=barrier, results=results):
            barrier.wait()
            results[person.id] = move(client, person, case_id, "claim")

        threads = [threading.Thread(target=claim, args=(person,)) for person in specialists]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [user for user, response in results.items() if response.status_code == 200]
        assert len(winners) == 1, {user: r.text for user, r in results.items()}
        for user, response in results.items():
            if user not in winners:
                assert_problem(response, 409, "already_claimed")
        owner = client.get(f"/v1/cases/{case['id']}", headers=physician.headers).json()
        assert (owner["status"], owner["assignee_id"]) == ("claimed", winners[0])


def test_claims_that_all_read_the_open_case_still_have_one_winner(client, accounts, engine, monkeypatch):
    if engine.dialect.name == "sqlite":
        pytest.skip(
            "SQLite runs whole write transactions one at a time: no two claims read the case together"
        )
    physician = clinician(client, accounts, Role.PHYSICIAN)
    specialists = [clinician(client, accounts, Role.SPECIALIST, specialties=DERM) for _ in range(4)]
    case = create_case(client, physician, devices_of(*specialists), specialty="dermatology")
    # Every request decides on the open case before any writes: only the conditional UPDATE can part them.
    decided = threading.Barrier(len(specialists), timeout=30)
    apply = transitions._apply

    def apply_together(*args):
        decided.wait()
        apply(*args)

    monkeypatch.setattr(transitions, "_apply", apply_together)
    with ThreadPoolExecutor(len(specialists)) as pool:
        responses = list(pool.map(lambda person: move(client, person, case["id"], "claim"), specialists))
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"already_claimed"}


def _set_due(engine, case_id: str, due_at: datetime) -> None:
    with transaction(engine) as session:
        session.execute(update(Case).where(Case.id == uuid.UUID(case_id)).values(due_at=due_at))


def test_due_dates_follow_priority_and_overdue_cases_are_flagged(client, accounts, settings, engine):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    routine = create_case(client, physician, derm.devices, specialty="dermatology")
    urgent = create_case(client, physician, derm.devices, specialty="dermatology", priority="urgent")
    for case, hours in ((routine, settings.routine_due_hours), (urgent, settings.urgent_due_hours)):
        created, due = (datetime.fromisoformat(case[key]) for key in ("created_at", "due_at"))
        assert due - created == timedelta(hours=hours)

    # Earliest due first: the urgent case leads, until the routine one is past its date.
    queue = client.get("/v1/cases/queue", headers=derm.headers).json()["items"]
    assert [(c["id"], c["overdue"]) for c in queue] == [(urgent["id"], False), (routine["id"], False)]
    _set_due(engine, routine["id"], utcnow() - timedelta(hours=1))
    queue = client.get("/v1/cases/queue", headers=derm.headers).json()["items"]
    assert [(c["id"], c["overdue"]) for c in queue] == [(routine["id"], True), (urgent["id"], False)]

    overdue = client.get("/v1/cases", params={"overdue": True}, headers=physician.headers).json()["items"]
    assert [c["id"] for c in overdue] == [routine["id"]]
    on_time = client.get("/v1/cases", params={"overdue": False}, headers=physician.headers).json()["items"]
    assert [c["id"] for c in on_time] == [urgent["id"]]
    # A withdrawn case is no longer overdue: nobody owes it an answer.
    move(client, physician, routine["id"], "withdraw")
    assert client.get("/v1/cases", params={"overdue": True}, headers=physician.headers).json()["items"] == []


def _all_pages(client, person, path: str, **params) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        response = client.get(
            path, params=params | ({"cursor": cursor} if cursor else {}), headers=person.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["id"] for item in body["items"]])
        if not (cursor := body["next_cursor"]):
            return pages


def test_lists_and_queue_paginate_with_keyset_cursors(client, accounts):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    other = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology", "cardiology"))
    mine = [create_case(client, physician, derm.devices, specialty="dermatology")["id"] for _ in range(5)]
    theirs = create_case(client, other, derm.devices, specialty="cardiology", priority="urgent")["id"]

    pages = _all_pages(client, physician, "/v1/cases", limit=2)
    assert pages == [mine[4:2:-1], mine[2:0:-1], mine[:1]]
    assert _all_pages(client, physician, "/v1/cases", status="open", specialty="cardiology") == [[]]

    # The derm's queue merges both specialties, earliest due first; claimed cases join their own list.
    assert _all_pages(client, derm, "/v1/cases/queue", limit=4) == [[theirs, *mine[:3]], mine[3:]]
    assert _all_pages(client, derm, "/v1/cases/queue", specialty="cardiology") == [[theirs]]
    move(client, derm, mine[0], "claim")
    move(client, derm, theirs, "claim")
    assert _all_pages(client, derm, "/v1/cases", limit=1) == [[theirs], [mine[0]]]
    assert _all_pages(client, derm, "/v1/cases/queue", limit=10) == [mine[1:]]
    assert_problem(
        client.get("/v1/cases", params={"cursor": "garbage"}, headers=derm.headers), 422, "invalid_cursor"
    )
    assert_problem(client.get("/v1/cases/queue", headers=physician.headers), 403, "role_required")


def test_the_case_answer_says_what_the_caller_may_do_now(client, accounts):
    physician, derm, case = _setup(client, accounts)
    case_id = case["id"]
    colleague = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)

    def allowed(person):
        body = client.get(f"/v1/cases/{case_id}", headers=person.headers).json()
        return body["allowed_transitions"], body["allowed_writes"]

    requester_writes = ["attachment", "message", "info_response"]
    assert (case["allowed_transitions"], case["allowed_writes"]) == (["withdraw"], requester_writes)
    assert allowed(derm) == (["claim"], [])
    assert move(client, derm, case_id, "claim").status_code == 200
    assert allowed(derm) == (
        ["decline", "request_info", "answer"],
        ["attachment", "message", "info_request", "report"],
    )
    assert allowed(physician) == (["withdraw"], requester_writes)
    assert_problem(client.get(f"/v1/cases/{case_id}", headers=colleague.headers), 404, "case_not_found")
    assert move(client, derm, case_id, "request_info").status_code == 200
    assert allowed(physician) == (["provide_info", "withdraw"], requester_writes)
    assert move(client, physician, case_id, "withdraw").status_code == 200
    assert allowed(physician) == ([], [])
    assert allowed(derm) == ([], [])

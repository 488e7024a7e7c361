"""How many statements the busiest requests send to the database (round trips on PostgreSQL): counts, never
timings. docs/benchmarks.md explains each; a change that adds one should say why there."""

from __future__ import annotations

import pytest

from app.models.users import Role
from tests.e2ee_helpers import case_body, clinician, message_body
from tests.statement_counter import Statements, counting, round_trips

SPECIALTY = "cardiology"


@pytest.fixture
def team(client, accounts):
    """A physician and 19 cardiologists, one device each: a new case is sealed for 20 devices."""
    physician = clinician(client, accounts, Role.PHYSICIAN)
    specialists = [clinician(client, accounts, Role.SPECIALIST, specialties=(SPECIALTY,)) for _ in range(19)]
    return physician, specialists


def _engines(app):
    runtime = app.state.runtime
    return runtime.engine, runtime.read_engine


def _create(client, physician, audience) -> tuple[dict, dict]:
    body = case_body(physician.device, [*audience, physician.device], "q", specialty=SPECIALTY)
    response = client.post("/v1/cases", json=body, headers=physician.headers)
    assert response.status_code == 201, response.text
    return body, response.json()


def _reads_back(seen: Statements) -> list[str]:
    return [sql for sql in seen.sql if "FROM case_objects" in sql or "FROM envelopes" in sql]


def test_creating_a_case_for_20_devices_takes_14_statements(app, client, team):
    """BEGIN; the caller; the specialty; the devices (the envelopes' and the requester's); the members
    (recipients and the event's audience, with their roles and specialties); the case, its object and its
    20 envelopes; the event, its recipients and their webhooks; the directory checkpoint with the entries
    (the answer's participants); the audit record; COMMIT. Nothing is read back."""
    physician, specialists = team
    audience = [person.device for person in specialists]
    _create(client, physician, audience)  # the directory proofs' cache is warm from here on
    with counting(*_engines(app)) as seen:
        _, created = _create(client, physician, audience)
    assert len(created["sealed"]["envelopes"]) == 1
    assert len(seen.sent) == 14, str(seen)
    assert not _reads_back(seen), str(seen)
    assert [sql.split(" (")[0] for sql in seen.sql if sql.startswith("INSERT")] == [
        "INSERT INTO cases",
        "INSERT INTO case_objects",
        "INSERT INTO envelopes",
        "INSERT INTO events",
        "INSERT INTO event_recipients",
        "INSERT INTO audit_records",
    ]


def test_posting_a_message_takes_9_statements_or_12_with_its_event(app, client, team):
    """BEGIN; the caller; the case with its shares; the devices; the members (with their roles and
    specialties); the message and its envelopes (20 here); the audit record; COMMIT. With someone to tell (the
    assignee's message to the requester), the event, its recipients and their webhooks too."""
    physician, specialists = team
    audience = [person.device for person in specialists]
    body, _ = _create(client, physician, audience)
    case_id = body["id"]
    everyone = [*audience, physician.device]

    message = message_body(physician.device, case_id, "message", "m", everyone)
    with counting(*_engines(app)) as seen:
        response = client.post(f"/v1/cases/{case_id}/messages", json=message, headers=physician.headers)
    assert response.status_code == 201, response.text
    assert [e["device_id"] for e in response.json()["sealed"]["envelopes"]] == [physician.device.id]
    assert len(seen.sent) == 9, str(seen)
    assert not _reads_back(seen), str(seen)

    assignee = specialists[0]
    claim = {"action": "claim"}
    claimed = client.post(f"/v1/cases/{case_id}/transitions", json=claim, headers=assignee.headers)
    assert claimed.status_code == 200, claimed.text
    reply = message_body(assignee.device, case_id, "message", "r", [assignee.device, physician.device])
    with counting(*_engines(app)) as seen:
        response = client.post(f"/v1/cases/{case_id}/messages", json=reply, headers=assignee.headers)
    assert response.status_code == 201, response.text
    assert len(seen.sent) == 12, str(seen)
    assert not _reads_back(seen), str(seen)


def test_round_trips_to_postgresql_of_the_busiest_requests(app, client, team, database_url):
    """On PostgreSQL each statement is a round trip, and so are BEGIN and COMMIT. A create is 14 (27 before
    the write path was reworked), a post 9 (15). A case read is 5 (12): the caller, the case with its
    objects and the caller's envelopes in one statement, the participants (users with their roles and
    specialties, devices, the directory checkpoint with the entries), no BEGIN nor ROLLBACK (autocommit);
    then its audit record's group commit, one INSERT in autocommit shared by the reads that wait together
    (it was BEGIN, INSERT, COMMIT)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("round trips are counted on PostgreSQL (libpq's protocol trace)")
    physician, specialists = team
    audience = [person.device for person in specialists]
    engine = app.state.runtime.engine
    _create(client, physician, audience)
    with round_trips(engine) as trips:
        body, _ = _create(client, physician, audience)
    assert trips.count == 14, str(trips)
    case_id = body["id"]
    message = message_body(physician.device, case_id, "message", "m", [*audience, physician.device])
    with round_trips(engine) as trips:
        posted = client.post(f"/v1/cases/{case_id}/messages", json=message, headers=physician.headers)
    assert posted.status_code == 201, posted.text
    assert trips.count == 9, str(trips)
    for path, expected in ((f"/v1/cases/{case_id}", 5 + 1), ("/v1/cases?sealed=true", 4 + 1)):
        with round_trips(engine) as trips:
            response = client.get(path, headers=physician.headers)
        assert response.status_code == 200, response.text
        assert trips.count == expected, (path, str(trips))
        assert not any('"BEGIN' in line for sent in trips.ran for line in sent), str(trips)

"""The event outbox and GET /v1/events: who gets which event, live delivery, replay with Last-Event-ID,
retention gaps, the end of a stream, and that no event carries anything sealed."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from app.errors import Conflict
from app.models.base import utcnow
from app.models.users import Role
from app.notifications import feed
from app.runtime.database import transaction
from app.services import transitions
from tests.conftest import assert_problem, auth_headers
from tests.e2ee_helpers import clinician, create_case, devices_of, post_message, share_body
from tests.notification_helpers import EVENT_FIELDS, StreamRead, events_of, move, read_stream, whole_flow

DERM = ("dermatology",)


SHORT_STREAM_SECONDS = 3.0
# A stream that outlives any test: a read on it ends only if something other than its lifetime ends it.
LONG_STREAM_SECONDS = 600.0
# How long a read on a long stream may take before the test gives up: never reached when the wake-up works.
PATIENCE_SECONDS = 30.0
long_stream = pytest.mark.stream_seconds(LONG_STREAM_SECONDS)


@pytest.fixture
def settings(settings, request):
    marker = request.node.get_closest_marker("stream_seconds")
    lifetime = marker.args[0] if marker else SHORT_STREAM_SECONDS
    update = {"events_stream_max_seconds": lifetime, "events_heartbeat_seconds": 0.3}
    return settings.model_copy(update=update)


def read_long_stream(*args, **kwargs) -> StreamRead:
    """read_stream on a stream that lives far longer than PATIENCE_SECONDS: a failure if the read has not
    ended by then, because only a wake-up (or the session's end, at a heartbeat) could have ended it."""
    result: list[StreamRead] = []
    reader = threading.Thread(target=lambda: result.append(read_stream(*args, **kwargs)), daemon=True)
    reader.start()
    reader.join(PATIENCE_SECONDS)
    assert result, "the stream gave nothing before the end of its lifetime"
    return result[0]


@pytest.fixture
def people(client, accounts):
    return {
        "physician": clinician(client, accounts, Role.PHYSICIAN),
        "derm": clinician(client, accounts, Role.SPECIALIST, specialties=DERM),
        "derm2": clinician(client, accounts, Role.SPECIALIST, specialties=DERM),
        "cardio": clinician(client, accounts, Role.SPECIALIST, specialties=("cardiology",)),
    }


def test_each_step_notifies_the_other_parties_and_nobody_else(client, people, engine):
    case_id = whole_flow(client, people, "MARKER")["case_id"]
    expected = {
        "physician": [
            "case.claimed",
            "case.message_posted",
            "case.info_requested",
            "case.message_posted",
            "case.report_available",
        ],
        "derm": ["case.queued", "case.message_posted", "case.info_provided", "case.closed"],
        # The other specialist saw it in the queue, and learns that it left it.
        "derm2": ["case.queued", "case.claimed"],
        "cardio": [],
    }
    for name, types in expected.items():
        received = events_of(engine, people[name].id)
        assert [event_type for event_type, _ in received] == types, name
        assert {case for _, case in received} <= {case_id}


@long_stream
def test_a_new_case_reaches_the_specialty_stream_at_once(client, people, engine):
    physician, derm = people["physician"], people["derm"]
    created: dict = {}
    creator = threading.Thread(
        target=lambda: created.update(
            create_case(client, physician, derm.devices, "MARKER", specialty="dermatology")
        )
    )
    read = read_long_stream(client, derm.headers, count=1, on_open=creator.start)
    creator.join()  # the event may reach the stream before the creator has its answer
    [event] = read.events
    assert (event["type"], event["case_id"]) == ("case.queued", created["id"])
    assert set(event) <= EVENT_FIELDS
    assert read.blocks[-1]["id"] == str(event["id"])
    assert read.blocks[-1]["event"] == "case.queued"
    # The requester does not hear of their own action; other specialties never hear of the case.
    assert events_of(engine, physician.id) == []
    assert events_of(engine, people["cardio"].id) == []


def test_replay_after_reconnect_with_last_event_id(client, people):
    physician = people["physician"]
    whole_flow(client, people, "MARKER")
    first = read_stream(client, physician.headers, count=5, last_event_id=0)
    ids = [event["id"] for event in first.events]
    assert ids == sorted(ids) and len(set(ids)) == 5
    # Reconnecting after the second event replays exactly the three that followed.
    again = read_stream(client, physician.headers, count=3, last_event_id=ids[1])
    assert again.events == first.events[2:]
    # Without Last-Event-ID a stream starts with what comes next, and says where it starts.
    fresh = read_stream(client, physician.headers, count=1)
    assert fresh.events == []
    assert fresh.blocks[0]["id"] == str(max(ids) + 1)  # the derm's case.closed came last


def test_no_event_carries_anything_sealed(client, people):
    marker = f"MARKER-{uuid.uuid4().hex}"
    flow = whole_flow(client, people, marker)
    for name, count in [("physician", 5), ("derm", 4), ("derm2", 2)]:
        read = read_stream(client, people[name].headers, count=count, last_event_id=0)
        assert len(read.events) == count
        text = "\n".join(read.raw)
        assert marker not in text
        assert not any(ciphertext in text for ciphertext in flow["sealed"])
        for event in read.events:
            assert set(event) <= EVENT_FIELDS
            assert event["case_id"] == flow["case_id"]


def test_named_cases_and_declines(client, people, engine):
    physician, derm, derm2 = people["physician"], people["derm"], people["derm2"]
    case = create_case(client, physician, derm.devices, specialty="dermatology", named=derm.id)
    assert events_of(engine, derm.id) == [("case.queued", case["id"])]
    assert events_of(engine, derm2.id) == []  # offered to the named specialist only

    move(client, derm, case["id"], "decline", reason="outside_expertise")
    assert events_of(engine, physician.id) == [("case.declined", case["id"])]
    # Back in the specialty queue: the others hear of it, not the decliner.
    assert events_of(engine, derm2.id) == [("case.queued", case["id"])]
    assert events_of(engine, derm.id) == [("case.queued", case["id"])]


def test_a_colleague_a_case_is_shared_with_is_told_and_then_follows_it(client, people, engine):
    physician, derm, derm2 = people["physician"], people["derm"], people["derm2"]
    case_id = create_case(client, physician, derm.devices, specialty="dermatology")["id"]
    move(client, derm, case_id, "claim")
    objects = [client.get(f"/v1/cases/{case_id}", headers=derm.headers).json()["sealed"]]
    shared = client.post(
        f"/v1/cases/{case_id}/envelopes",
        json=share_body(derm.device, case_id, objects, derm2),
        headers=derm.headers,
    )
    assert shared.status_code == 201, shared.text
    post_message(client, physician, case_id, "message", "thanks", devices_of(physician, derm, derm2))
    assert events_of(engine, derm2.id)[-2:] == [("case.shared", case_id), ("case.message_posted", case_id)]
    assert ("case.shared", case_id) not in events_of(engine, physician.id)


def test_a_rolled_back_action_leaves_no_event(client, people, engine, monkeypatch):
    physician, derm = people["physician"], people["derm"]
    case = create_case(client, physician, derm.devices, specialty="dermatology")
    real = transitions.outbox.case_moved

    def then_fail(*args) -> None:
        real(*args)
        raise Conflict("failed after the event was written")

    monkeypatch.setattr(transitions.outbox, "case_moved", then_fail)
    response = client.post(
        f"/v1/cases/{case['id']}/transitions", json={"action": "claim"}, headers=derm.headers
    )
    assert_problem(response, 409, "conflict")
    assert events_of(engine, physician.id) == []
    assert events_of(engine, derm.id) == [("case.queued", case["id"])]


def test_a_client_back_after_the_retention_is_told_of_the_gap(client, people, engine):
    physician = people["physician"]
    whole_flow(client, people, "MARKER")
    events_of(engine, physician.id)  # sequences everything
    with transaction(engine) as session:
        assert feed.purge(session, utcnow() + timedelta(hours=1)) == 8  # all but the newest
        newest = feed.resume_point(session, None).after
    read = read_stream(client, physician.headers, count=1, last_event_id=0)
    assert read.events == [{"type": "stream.gap", "after": 0}]
    # A Last-Event-ID this server never gave (a restored database) is a gap too: resume from the newest.
    beyond = read_stream(client, physician.headers, count=1, last_event_id=newest + 100)
    assert beyond.events == [{"type": "stream.gap", "after": newest}]
    assert beyond.blocks[-1]["id"] == str(newest)


@long_stream
def test_a_stream_ends_soon_after_its_session_does(client, people):
    physician = people["physician"]
    logged_out = threading.Event()

    def logout() -> None:
        assert client.post("/v1/auth/logout", headers=physician.headers).status_code in (200, 204)
        logged_out.set()

    read = read_long_stream(
        client, physician.headers, count=1, on_open=lambda: threading.Thread(target=logout).start()
    )
    assert logged_out.is_set()
    assert read.events == []


@long_stream
def test_a_stream_past_the_per_user_cap_ends_the_oldest(client, people, settings):
    physician = people["physician"]
    opened = threading.Semaphore(0)
    readers = []
    for _ in range(settings.events_max_streams_per_user + 1):
        reader = threading.Thread(
            target=read_stream,
            args=(client, physician.headers),
            kwargs={"count": 1, "on_open": opened.release},
            daemon=True,
        )
        reader.start()
        readers.append(reader)
        assert opened.acquire(timeout=PATIENCE_SECONDS)  # one at a time: the first is the oldest
    oldest, *others = readers
    oldest.join(PATIENCE_SECONDS)
    assert not oldest.is_alive(), "the oldest stream ended when one past the cap opened"
    assert all(reader.is_alive() for reader in others)
    # Logging out ends the others at their next heartbeat.
    assert client.post("/v1/auth/logout", headers=physician.headers).status_code in (200, 204)
    for reader in others:
        reader.join(PATIENCE_SECONDS)
        assert not reader.is_alive()


def test_clients_that_poll_get_pages_of_json(client, people):
    physician = people["physician"]
    start = client.get("/v1/events", headers=physician.headers).json()
    assert start["items"] == [] and start["gap"] is False
    flow = whole_flow(client, people, "MARKER")
    streamed = read_stream(client, physician.headers, count=5, last_event_id=start["last_event_id"]).events
    pages, cursor = [], start["last_event_id"]
    while True:
        page = client.get(
            "/v1/events", params={"limit": 2}, headers=physician.headers | {"Last-Event-ID": str(cursor)}
        ).json()
        if not page["items"]:
            break
        pages.append([event["id"] for event in page["items"]])
        cursor = page["last_event_id"]
    assert pages == [[e["id"] for e in streamed[:2]], [e["id"] for e in streamed[2:4]], [streamed[4]["id"]]]
    assert page["items"] == [] and page["last_event_id"] == streamed[-1]["id"] + 1  # past the derm's last
    assert {event["case_id"] for event in streamed} == {flow["case_id"]}


def test_only_clinicians_follow_events(client, accounts):
    admin = accounts.create(Role.ADMIN)
    assert_problem(client.get("/v1/events", headers=auth_headers(client, admin)), 403, "role_required")
    assert_problem(client.get("/v1/events"), 401, "unauthenticated")
    physician = accounts.create(Role.PHYSICIAN)
    response = client.get("/v1/events", headers=auth_headers(client, physician) | {"Last-Event-ID": "x"})
    assert_problem(response, 422, "invalid_input")

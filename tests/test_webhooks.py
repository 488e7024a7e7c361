"""Webhooks: registration rules, sealed secrets, signed deliveries to a real local receiver, retries with
backoff, the delivery log, and that no body carries anything sealed.

The app runs without its lifespan here, so nothing delivers in the background: each test sequences events
and runs delivery passes itself, with the clock it chooses."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app.crypto import webhooks as signing
from app.models.base import utcnow
from app.models.notifications import Webhook
from app.models.users import Role
from app.notifications import egress
from app.notifications.delivery import deliver_due
from app.notifications.webhooks import secret_context
from app.runtime.database import new_session
from tests.conftest import assert_problem, auth_headers
from tests.e2ee_helpers import clinician, create_case
from tests.notification_helpers import EVENT_FIELDS, Receiver, move, sequence_all, whole_flow

DERM = ("dermatology",)
DOC = Path(__file__).resolve().parent.parent / "docs" / "notifications.md"
SECRET = "s3cr3t-" + "x" * 40


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={
            "webhook_allow_private_targets": True,
            "webhook_max_attempts": 3,
            "webhook_retry_base_seconds": 10,
            "webhook_timeout_seconds": 2,
        }
    )


@pytest.fixture
def bare(app):
    """A client without the app's lifespan: no background sequencer or delivery worker."""
    return TestClient(app)


@pytest.fixture
def deliver(app, engine, settings):
    """One delivery pass at `now` (default: the real time), after sequencing pending events."""
    sealer = app.state.runtime.authenticator.sealer

    def run(now=None) -> int:
        sequence_all(engine)
        return deliver_due(engine, sealer, settings, now=now)

    return run


def register(client, person, url: str, secret: str = SECRET):
    return client.post("/v1/webhooks", json={"url": url, "secret": secret}, headers=person.headers)


def log(client, person, webhook_id: str) -> list[dict]:
    response = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=person.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_registration_rules(bare, accounts, app, settings, engine):
    physician = clinician(bare, accounts, Role.PHYSICIAN)
    for url in [
        "ftp://example.org/hook",
        "http://user:pw@127.0.0.1/hook",
        "/relative",
        "http://127.0.0.1/#x",
    ]:
        assert_problem(register(bare, physician, url), 422, "webhook_url_not_allowed")
    assert_problem(register(bare, physician, "http://127.0.0.1/hook", secret="short"), 422, "invalid_input")

    runtime = app.state.runtime
    app.state.runtime = replace(
        runtime, settings=settings.model_copy(update={"webhook_allow_private_targets": False})
    )
    for url in ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://169.254.169.254/latest"]:
        assert_problem(register(bare, physician, url), 422, "webhook_url_not_allowed")
    app.state.runtime = runtime

    created = [register(bare, physician, f"http://127.0.0.1:9/hook{n}") for n in range(5)]
    assert [response.status_code for response in created] == [201] * 5
    assert_problem(register(bare, physician, "http://127.0.0.1:9/one-more"), 409, "webhook_limit_reached")
    listed = bare.get("/v1/webhooks", headers=physician.headers).json()
    assert [hook["id"] for hook in listed] == [response.json()["id"] for response in created]
    assert all(set(hook) == {"id", "url", "created_at"} for hook in listed)

    # The secret is sealed at rest, bound to its webhook.
    sealer = app.state.runtime.authenticator.sealer
    with new_session(engine) as session:
        row = session.exec(select(Webhook).where(Webhook.id == uuid.UUID(listed[0]["id"]))).one()
    assert SECRET.encode() not in row.secret_sealed
    assert sealer.open(row.secret_sealed, secret_context(row.id)) == SECRET.encode()

    # Someone else's webhook is not found; deleting one's own removes it.
    other = clinician(bare, accounts, Role.PHYSICIAN)
    hook = listed[0]["id"]
    assert_problem(bare.delete(f"/v1/webhooks/{hook}", headers=other.headers), 404, "webhook_not_found")
    assert_problem(
        bare.get(f"/v1/webhooks/{hook}/deliveries", headers=other.headers), 404, "webhook_not_found"
    )
    assert bare.delete(f"/v1/webhooks/{hook}", headers=physician.headers).status_code == 204
    assert_problem(bare.delete(f"/v1/webhooks/{hook}", headers=physician.headers), 404, "webhook_not_found")

    admin = accounts.create(Role.ADMIN)
    assert_problem(bare.get("/v1/webhooks", headers=auth_headers(bare, admin)), 403, "role_required")


def test_deliveries_are_signed_carry_only_the_owners_events_and_nothing_sealed(bare, accounts, deliver):
    people = {
        "physician": clinician(bare, accounts, Role.PHYSICIAN),
        "derm": clinician(bare, accounts, Role.SPECIALIST, specialties=DERM),
        "derm2": clinician(bare, accounts, Role.SPECIALIST, specialties=DERM),
    }
    marker = f"MARKER-{uuid.uuid4().hex}"
    with Receiver() as physician_hook, Receiver() as derm_hook:
        hooks = {
            "physician": register(bare, people["physician"], physician_hook.url).json()["id"],
            "derm": register(bare, people["derm"], derm_hook.url).json()["id"],
        }
        flow = whole_flow(bare, people, marker)
        assert deliver() == 9
        assert deliver() == 0  # nothing left

    expected = {
        "physician": (
            physician_hook,
            ["claimed", "message_posted", "info_requested", "message_posted", "report_available"],
        ),
        "derm": (derm_hook, ["queued", "message_posted", "info_provided", "closed"]),
    }
    for name, (receiver, types) in expected.items():
        bodies = [json.loads(request.body) for request in receiver.received]
        assert [body["type"] for body in bodies] == [f"case.{t}" for t in types]
        for request, body in zip(receiver.received, bodies, strict=True):
            assert set(body) <= EVENT_FIELDS and body["case_id"] == flow["case_id"]
            assert marker.encode() not in request.body
            assert not any(ciphertext.encode() in request.body for ciphertext in flow["sealed"])
            headers = {key.lower(): value for key, value in request.headers.items()}
            assert headers["content-type"] == "application/json"
            assert headers["confrere-event-id"] == str(body["id"])
            assert headers["confrere-event-type"] == body["type"]
            signature = headers["confrere-signature"]
            assert signing.verify(SECRET.encode(), signature, request.body, now=time.time())
            assert not signing.verify(b"another secret", signature, request.body, now=time.time())
            assert not signing.verify(SECRET.encode(), signature, request.body + b" ", now=time.time())
            # A replay later than the tolerance is refused.
            assert not signing.verify(SECRET.encode(), signature, request.body, now=time.time() + 301)

        entries = log(bare, people[name], hooks[name])
        assert [entry["event_type"] for entry in entries] == [f"case.{t}" for t in reversed(types)]
        settled = {(entry["status"], entry["attempts"], entry["last_status_code"]) for entry in entries}
        assert settled == {("delivered", 1, 200)}
        sent = {request.headers["Confrere-Delivery"] for request in receiver.received}
        assert {entry["id"] for entry in entries} == sent


def test_failed_deliveries_are_retried_with_backoff_then_given_up(bare, accounts, deliver):
    physician = clinician(bare, accounts, Role.PHYSICIAN)
    derm = clinician(bare, accounts, Role.SPECIALIST, specialties=DERM)
    with Receiver(statuses=[500, 503]) as receiver:
        hook = register(bare, derm, receiver.url).json()["id"]
        create_case(bare, physician, derm.devices, specialty="dermatology")
        start = utcnow()
        assert deliver(start) == 1
        [entry] = log(bare, derm, hook)
        assert (entry["status"], entry["attempts"], entry["last_status_code"], entry["last_error"]) == (
            "pending",
            1,
            500,
            "http_status",
        )
        assert_close(entry["next_attempt_at"], start + timedelta(seconds=10))
        assert deliver(start + timedelta(seconds=5)) == 0  # not due yet
        assert deliver(start + timedelta(seconds=11)) == 1
        [entry] = log(bare, derm, hook)
        assert (entry["attempts"], entry["last_status_code"]) == (2, 503)
        assert_close(entry["next_attempt_at"], start + timedelta(seconds=11 + 20))  # the delay doubled
        assert deliver(start + timedelta(seconds=32)) == 1
        [entry] = log(bare, derm, hook)
        assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("delivered", 3, 200)
        assert entry["next_attempt_at"] is None and entry["delivered_at"] is not None
    # The same event each time, under the same delivery id, freshly signed.
    bodies = {request.body for request in receiver.received}
    deliveries = {request.headers["Confrere-Delivery"] for request in receiver.received}
    assert (len(receiver.received), len(bodies), deliveries) == (3, 1, {entry["id"]})

    # A receiver that never answers: attempts until the last one, then the delivery is given up.
    assert bare.delete(f"/v1/webhooks/{hook}", headers=derm.headers).status_code == 204
    with Receiver() as gone:
        url = gone.url
    hook = register(bare, physician, url).json()["id"]
    case = create_case(bare, physician, derm.devices, specialty="dermatology")
    move(bare, derm, case["id"], "claim")  # case.claimed for the physician
    now = utcnow()
    for step in range(3):
        assert deliver(now + timedelta(hours=step)) == 1
    assert deliver(now + timedelta(hours=4)) == 0
    [entry] = log(bare, physician, hook)
    assert (entry["status"], entry["attempts"], entry["last_error"]) == ("failed", 3, "connection_error")
    assert entry["next_attempt_at"] is None


def test_a_receiver_that_answers_a_byte_at_a_time_gets_a_timeout_and_the_others_their_events(
    bare, accounts, deliver
):
    physician = clinician(bare, accounts, Role.PHYSICIAN)
    derm = clinician(bare, accounts, Role.SPECIALIST, specialties=DERM)
    # Each byte comes well within httpx's per-read timeout; the whole answer would take about 20 s.
    with Receiver(trickle_seconds=0.5) as slow, Receiver() as healthy:
        slow_hook = register(bare, derm, slow.url).json()["id"]
        healthy_hook = register(bare, derm, healthy.url).json()["id"]
        create_case(bare, physician, derm.devices, specialty="dermatology")
        assert deliver() == 2
    assert [json.loads(request.body)["type"] for request in healthy.received] == ["case.queued"]
    [delivered] = log(bare, derm, healthy_hook)
    assert (delivered["status"], delivered["last_status_code"]) == ("delivered", 200)
    [slowed] = log(bare, derm, slow_hook)
    assert (slowed["status"], slowed["attempts"], slowed["last_error"]) == ("pending", 1, "timeout")


def test_deleting_a_webhook_drops_its_pending_deliveries(bare, accounts, deliver):
    physician = clinician(bare, accounts, Role.PHYSICIAN)
    derm = clinician(bare, accounts, Role.SPECIALIST, specialties=DERM)
    with Receiver() as receiver:
        hook = register(bare, derm, receiver.url).json()["id"]
        create_case(bare, physician, derm.devices, specialty="dermatology")
        assert bare.delete(f"/v1/webhooks/{hook}", headers=derm.headers).status_code == 204
        assert deliver() == 0
    assert receiver.received == []


def test_deliveries_go_to_the_checked_address_under_the_original_name():
    url = egress.parse("https://hooks.hospital.example:8443/confrere?x=1")
    target, headers, extensions = egress.pinned_request(url, "203.0.113.7")
    assert str(target) == "https://203.0.113.7:8443/confrere?x=1"
    assert headers == {"Host": "hooks.hospital.example:8443"}
    assert extensions == {"sni_hostname": "hooks.hospital.example"}  # TLS checks the certificate's name
    target, headers, extensions = egress.pinned_request(egress.parse("http://[::1]/h"), "::1")
    assert (str(target), headers, extensions) == ("http://[::1]/h", {"Host": "[::1]"}, {})
    for private in (
        "http://10.1.2.3/",
        "http://[::ffff:192.168.0.1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
    ):
        with pytest.raises(egress.TargetNotAllowed):
            egress.resolve(egress.parse(private), allow_private=False)
    assert egress.resolve(egress.parse("http://10.1.2.3/"), allow_private=True) == "10.1.2.3"


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 well-known prefix -> 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 -> 169.254.169.254 (cloud metadata)
        "64:ff9b::a00:1",  # NAT64 -> 10.0.0.1
        "64:ff9b:1::a00:1",  # NAT64 local-use prefix
        "2002:7f00:1::",  # 6to4 -> 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 -> 169.254.169.254
        "::7f00:1",  # IPv4-compatible -> 127.0.0.1
        "::a00:1",  # IPv4-compatible -> 10.0.0.1
        "::ffff:7f00:1",  # IPv4-mapped -> 127.0.0.1
        "::ffff:0:c0a8:1",  # IPv4-translated -> 192.168.0.1
        "fec0::1",  # site-local
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo: client 192.0.2.45 (documentation range)
        "2001:0:a00:1:8000:63bf:f7f7:f7f7",  # Teredo: server 10.0.0.1, client 8.8.8.8
    ],
)
def test_ipv6_forms_that_wrap_a_non_public_ipv4_address_are_refused(address, monkeypatch):
    monkeypatch.setattr(egress.socket, "getaddrinfo", lambda *args, **kwargs: [(0, 0, 0, "", (address, 80))])
    with pytest.raises(egress.TargetNotAllowed):
        egress.resolve(egress.parse("http://hooks.example/"), allow_private=False)


@pytest.mark.parametrize(
    "address",
    ["2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "2001:0:808:808:8000:63bf:f7f7:f7f7"],
)
def test_ipv6_forms_that_wrap_a_public_ipv4_address_are_allowed(address, monkeypatch):
    monkeypatch.setattr(egress.socket, "getaddrinfo", lambda *args, **kwargs: [(0, 0, 0, "", (address, 80))])
    assert egress.resolve(egress.parse("http://hooks.example/"), allow_private=False) == address


def test_the_documented_signature_example():
    body = (
        b'{"id":42,"type":"case.claimed","case_id":"0b6f3c1e-7d2a-4e43-9a51-3f0c2b8d9e10",'
        b'"created_at":"2026-11-26T09:30:00.123456Z"}'
    )
    secret = b"example-secret-do-not-use-0123456789abcdef"
    header = "t=1795685400,v1=f156087b75dec962efda3a68165c5491b0d13376ead4f8c1a4dd4ecee9506c81"
    assert signing.signature_header(secret, 1795685400, body) == header
    assert header in DOC.read_text()
    assert signing.verify(secret, header, body, now=1795685400 + 299)
    assert signing.verify(secret, f"t=1795685400,v1={'0' * 64},{header.split(',')[1]}", body, now=1795685400)
    assert not signing.verify(secret, header, body, now=1795685400 + 301)
    assert not signing.verify(secret, "v1=" + header.split("v1=")[1], body, now=1795685400)


def assert_close(text: str, expected: datetime, tolerance: float = 1.0) -> None:
    assert abs((datetime.fromisoformat(text) - expected).total_seconds()) < tolerance, (text, expected)

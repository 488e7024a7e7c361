"""Who sees a case and who may hold its keys: hidden cases answer 404 exactly like missing ones."""

from __future__ import annotations

import uuid

from sqlmodel import select

from app.crypto.e2ee import Suite
from app.models.cases import Envelope
from app.models.users import Role
from app.runtime.database import new_session
from tests.conftest import assert_problem, auth_headers
from tests.e2ee_helpers import (
    case_body,
    clinician,
    create_case,
    devices_of,
    open_object,
    post_message,
    seal_object,
    sealed_json,
    upload,
)

DERM = ("dermatology",)


def _envelope_devices(engine) -> set[str]:
    with new_session(engine) as session:
        return {str(device_id) for device_id in session.exec(select(Envelope.device_id)).all()}


def _same_problem(response, reference) -> None:
    assert response.status_code == reference.status_code == 404
    strip = {"instance", "request_id"}
    assert {k: v for k, v in response.json().items() if k not in strip} == {
        k: v for k, v in reference.json().items() if k not in strip
    }


def test_outsiders_get_the_missing_case_answer_and_hold_no_envelope(client, accounts, engine):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    cardio = clinician(client, accounts, Role.SPECIALIST, specialties=("cardiology",))
    other_physician = clinician(client, accounts, Role.PHYSICIAN)
    officer = clinician(client, accounts, Role.COMPLIANCE_OFFICER)
    admin = clinician(client, accounts, Role.ADMIN)
    unverified = auth_headers(client, accounts.create(Role.SPECIALIST, specialties=DERM, verified=False))
    case = create_case(client, physician, derm.devices, "private question", specialty="dermatology")

    missing = client.get(f"/v1/cases/{uuid.uuid4()}", headers=derm.headers)
    assert_problem(missing, 404, "case_not_found")
    outsiders = [p.headers for p in (cardio, other_physician, officer, admin)] + [unverified]
    for headers in outsiders:
        _same_problem(client.get(f"/v1/cases/{case['id']}", headers=headers), missing)
        _same_problem(client.get(f"/v1/cases/{case['id']}/messages", headers=headers), missing)
        claim = client.post(f"/v1/cases/{case['id']}/transitions", json={"action": "claim"}, headers=headers)
        _same_problem(claim, missing)
        assert case["id"] not in [
            c["id"] for c in client.get("/v1/cases", headers=headers).json().get("items", [])
        ]
    held = _envelope_devices(engine)
    assert held == {d.id for d in devices_of(physician, derm)}
    assert not held & {d.id for d in devices_of(cardio, other_physician, officer, admin)}

    # A suspended specialist's sessions end, so they cannot ask at all.
    admin_headers = auth_headers(client, accounts.create(Role.ADMIN))
    client.post(f"/v1/admin/users/{derm.id}/suspend", json={"reason": "other"}, headers=admin_headers)
    assert_problem(client.get(f"/v1/cases/{case['id']}", headers=derm.headers), 401, "invalid_token")


def test_envelopes_may_only_target_people_who_may_see_the_case(client, accounts, engine):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    cardio = clinician(client, accounts, Role.SPECIALIST, specialties=("cardiology",))
    officer = clinician(client, accounts, Role.COMPLIANCE_OFFICER)
    admin = clinician(client, accounts, Role.ADMIN)
    colleague = clinician(client, accounts, Role.PHYSICIAN)
    revoked = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    client.delete(f"/v1/devices/{revoked.device.id}", headers=revoked.headers)
    suspended = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    admin_headers = auth_headers(client, accounts.create(Role.ADMIN))
    client.post(f"/v1/admin/users/{suspended.id}/suspend", json={"reason": "other"}, headers=admin_headers)
    named = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)

    for intruder in (cardio, officer, admin, colleague, revoked, suspended):
        body = case_body(physician.device, [*derm.devices, *intruder.devices], "q", specialty="dermatology")
        response = client.post("/v1/cases", json=body, headers=physician.headers)
        assert_problem(response, 422, "recipient_not_eligible")
    # Offered to a named specialist, the case is for them alone (and the requester).
    body = case_body(
        physician.device, [named.device, derm.device], "q", specialty="dermatology", named=named.id
    )
    assert_problem(
        client.post("/v1/cases", json=body, headers=physician.headers), 422, "recipient_not_eligible"
    )
    assert _envelope_devices(engine) == set()

    # Messages likewise: only participants, and the specialty while the case waits in its queue.
    case = create_case(client, physician, derm.devices, specialty="dermatology")
    response = post_message(client, physician, case["id"], "message", "hi", [derm.device, cardio.device])
    assert_problem(response, 422, "recipient_not_eligible")
    client.post(f"/v1/cases/{case['id']}/transitions", json={"action": "claim"}, headers=derm.headers)
    queue_only = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    response = post_message(client, derm, case["id"], "message", "hi", [physician.device, queue_only.device])
    assert_problem(response, 422, "recipient_not_eligible")


def test_a_named_case_is_seen_by_its_specialist_not_by_the_queue(client, accounts):
    physician = clinician(client, accounts, Role.PHYSICIAN, suite=Suite.X25519)
    named = clinician(client, accounts, Role.SPECIALIST, specialties=DERM, suite=Suite.X25519)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM, suite=Suite.X25519)
    case = create_case(client, physician, named.devices, "for you", specialty="dermatology", named=named.id)
    assert case["named_specialist_id"] == named.id
    detail = client.get(f"/v1/cases/{case['id']}", headers=named.headers).json()
    assert open_object(detail["sealed"], named.device) == b'{"question": "for you"}'
    assert client.get("/v1/cases", headers=named.headers).json()["items"][0]["id"] == case["id"]
    assert client.get("/v1/cases/queue", headers=derm.headers).json()["items"] == []
    assert_problem(client.get(f"/v1/cases/{case['id']}", headers=derm.headers), 404, "case_not_found")


def test_case_creation_refusals(client, accounts):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    cardio = clinician(client, accounts, Role.SPECIALIST, specialties=("cardiology",))
    officer = clinician(client, accounts, Role.COMPLIANCE_OFFICER)

    def create(person, **changes):
        body = (
            case_body(person.device, [*derm.devices, *person.devices], "q", specialty="dermatology") | changes
        )
        return client.post("/v1/cases", json=body, headers=person.headers)

    assert_problem(create(officer), 403, "role_required")
    assert_problem(create(physician, specialty="astrology"), 422, "unknown_specialty")
    assert_problem(create(physician, patient_consent_at="2999-01-01T00:00:00Z"), 422, "consent_in_future")
    assert_problem(create(physician, patient_consent_at="2024-01-01T00:00:00"), 422, "invalid_input")
    for not_a_derm in (cardio.id, physician.id, str(uuid.uuid4())):
        assert_problem(create(physician, named_specialist_id=not_a_derm), 422, "invalid_named_specialist")
    assert_problem(create(physician, priority="whenever"), 422, "invalid_input")
    # A specialist may ask too ("may all a physician may"), of another specialty or their own.
    body = case_body(cardio.device, [*derm.devices, *cardio.devices], "q", specialty="dermatology")
    created = client.post("/v1/cases", json=body, headers=cardio.headers)
    assert created.status_code == 201, created.text
    assert_problem(client.post("/v1/cases", json=body, headers=cardio.headers), 409, "case_exists")


def _same_invalid_input(response, reference) -> None:
    assert response.status_code == reference.status_code == 422, (response.text, reference.text)
    strip = {"instance", "request_id"}
    assert {k: v for k, v in response.json().items() if k not in strip} == {
        k: v for k, v in reference.json().items() if k not in strip
    }


def test_new_ids_taken_by_what_the_caller_cannot_see_answer_as_malformed_ids(client, accounts):
    """Creating a case, message or attachment with the id of one the caller cannot see answers exactly as
    the same request with a malformed id (a UUID of another version) does: no existence oracle."""
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    outsider = clinician(client, accounts, Role.PHYSICIAN)
    hidden = create_case(client, physician, derm.devices, specialty="dermatology")
    hidden_message = post_message(
        client, physician, hidden["id"], "message", "m", devices_of(physician, derm)
    )
    assert hidden_message.status_code == 201
    malformed = str(uuid.uuid1())
    own = create_case(client, outsider, derm.devices, specialty="dermatology")
    audience = [*derm.devices, *outsider.devices]

    def new_case(case_id: str):
        body = case_body(outsider.device, audience, "q", specialty="dermatology", case_id=case_id)
        return client.post("/v1/cases", json=body, headers=outsider.headers)

    def new_message(message_id: str):
        sealed = seal_object(outsider.device, own["id"], "message", message_id, b"m", audience)
        body = {"id": message_id, "kind": "message", "sealed": sealed_json(sealed)}
        return client.post(f"/v1/cases/{own['id']}/messages", json=body, headers=outsider.headers)

    def new_attachment(attachment_id: str):
        sealed = seal_object(outsider.device, own["id"], "attachment", attachment_id, b"a", audience)
        meta = {"id": attachment_id, **sealed_json(sealed, with_ciphertext=False)}
        return upload(client, outsider.headers, own["id"], meta, sealed.ciphertext)

    for create in (new_case, new_message, new_attachment):
        for taken in (hidden["id"], hidden_message.json()["id"]):
            _same_invalid_input(create(taken), create(malformed))
    # The caller's own ids are a plain conflict, as before.
    assert_problem(new_case(own["id"]), 409, "case_exists")
    mine = new_message(str(uuid.uuid4()))
    assert mine.status_code == 201
    assert_problem(new_message(mine.json()["id"]), 409, "object_exists")

"""Re-sharing: a participant wraps a case's keys for a colleague's devices; the server checks who and what."""

from __future__ import annotations

import base64
import os

from app.crypto.e2ee import WRAPPED_KEY_LENGTH, Header, ShareStatement, Suite, share_entry, sign_share
from app.models.users import Role
from tests.conftest import assert_problem
from tests.e2ee_helpers import (
    attachment_upload,
    b64,
    clinician,
    create_case,
    devices_of,
    open_object,
    post_message,
    share_body,
    upload,
)

DERM = ("dermatology",)


def _objects(client, person, case_id: str) -> list[dict]:
    """Every sealed object of the case, as this person's client would gather them to re-share."""
    detail = client.get(f"/v1/cases/{case_id}", headers=person.headers).json()
    thread = client.get(f"/v1/cases/{case_id}/messages", headers=person.headers).json()["items"]
    return [detail["sealed"], *(a["sealed"] for a in detail["attachments"]), *(m["sealed"] for m in thread)]


def _share(client, person, case_id: str, body: dict):
    return client.post(f"/v1/cases/{case_id}/envelopes", json=body, headers=person.headers)


def test_the_assignee_shares_a_claimed_case_with_a_colleague_who_then_reads_it(client, accounts):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    colleague = clinician(client, accounts, Role.SPECIALIST, specialties=DERM, devices=2)
    case = create_case(client, physician, derm.devices, "lesion on the back", specialty="dermatology")
    case_id = case["id"]
    participants = devices_of(physician, derm)
    meta, ciphertext = attachment_upload(physician.device, case_id, b"PHOTO", participants)
    assert upload(client, physician.headers, case_id, meta, ciphertext).status_code == 201
    client.post(f"/v1/cases/{case_id}/transitions", json={"action": "claim"}, headers=derm.headers)
    post_message(client, derm, case_id, "message", "second opinion welcome", participants)
    assert_problem(client.get(f"/v1/cases/{case_id}", headers=colleague.headers), 404, "case_not_found")

    body = share_body(derm.device, case_id, _objects(client, derm, case_id), colleague)
    shared = _share(client, derm, case_id, body)
    assert shared.status_code == 201, shared.text
    assert shared.json() == {"recipient_user_id": colleague.id, "envelope_count": 6}  # 3 objects x 2 devices

    # The colleague is now a participant: the case is in their list, and every object opens on each device.
    assert [c["id"] for c in client.get("/v1/cases", headers=colleague.headers).json()["items"]] == [case_id]
    detail = client.get(f"/v1/cases/{case_id}", headers=colleague.headers).json()
    for device in colleague.devices:
        assert open_object(detail["sealed"], device) == b'{"question": "lesion on the back"}'
        [attachment] = detail["attachments"]
        data = client.get(f"/v1/cases/{case_id}/attachments/{attachment['id']}", headers=colleague.headers)
        assert open_object(attachment["sealed"], device, data.content) == b"PHOTO"
    thread = client.get(f"/v1/cases/{case_id}/messages", headers=colleague.headers).json()["items"]
    assert open_object(thread[0]["sealed"], colleague.devices[1]) == b"second opinion welcome"
    # Shared colleagues may post plain messages, not reports.
    everyone = devices_of(physician, derm, colleague)
    assert post_message(client, colleague, case_id, "message", "agree", everyone).status_code == 201
    assert_problem(
        post_message(client, colleague, case_id, "report", "x", everyone), 403, "write_not_allowed"
    )
    assert_problem(_share(client, derm, case_id, body), 409, "envelope_exists")


def test_shares_to_ineligible_people_or_with_bad_statements_are_refused(client, accounts):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    queue_only = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    cardio = clinician(client, accounts, Role.SPECIALIST, specialties=("cardiology",))
    officer = clinician(client, accounts, Role.COMPLIANCE_OFFICER)
    admin = clinician(client, accounts, Role.ADMIN)
    x25519 = clinician(client, accounts, Role.SPECIALIST, specialties=DERM, suite=Suite.X25519)
    case = create_case(client, physician, devices_of(derm, queue_only), specialty="dermatology")
    other_case = create_case(client, physician, derm.devices, specialty="dermatology")
    case_id = case["id"]
    objects = _objects(client, physician, case_id)

    for outsider in (cardio, officer, admin):
        body = share_body(physician.device, case_id, objects, outsider)
        assert_problem(_share(client, physician, case_id, body), 422, "recipient_not_eligible")
    # A specialist who only sees the case in the queue is no participant, so does not share it.
    body = share_body(queue_only.device, case_id, _objects(client, queue_only, case_id), derm)
    assert_problem(_share(client, queue_only, case_id, body), 403, "share_not_allowed")

    colleague = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    good = share_body(physician.device, case_id, objects, colleague)
    # Envelopes for a device of someone else than the named recipient.
    alien = good | {"recipient_user_id": derm.id}
    assert_problem(_share(client, physician, case_id, alien), 422, "recipient_not_eligible")
    # An object of another case.
    foreign = share_body(physician.device, case_id, _objects(client, physician, other_case["id"]), colleague)
    assert_problem(_share(client, physician, case_id, foreign), 422, "envelope_set_mismatch")
    # A statement signed for another case, whole or naming this case's objects; a forged signature.
    assert_problem(_share(client, physician, other_case["id"], good), 422, "envelope_set_mismatch")
    misnamed = share_body(physician.device, other_case["id"], objects, colleague)
    assert_problem(_share(client, physician, case_id, misnamed), 422, "object_mismatch")
    forged = good | {"signature": misnamed["signature"]}
    assert_problem(_share(client, physician, case_id, forged), 422, "invalid_signature")
    stolen = good | {"sharer_device_id": derm.device.id}
    assert_problem(_share(client, physician, case_id, stolen), 422, "invalid_signing_device")
    envelope = good["envelopes"][0]
    flipped = base64.b64decode(envelope["wrapped_key"])
    tampered = [envelope | {"wrapped_key": b64(bytes([flipped[0] ^ 1]) + flipped[1:])}]
    assert_problem(
        _share(client, physician, case_id, good | {"envelopes": tampered}), 422, "envelope_hash_mismatch"
    )
    # An envelope is checked against its device's registered suite: an X-Wing-sized one for an x25519 device
    # is refused (only a forged client tries).
    header = Header.parse(base64.b64decode(objects[0]["header"]))
    wrapped = os.urandom(WRAPPED_KEY_LENGTH[Suite.XWING])
    entry = share_entry(header, x25519.device.id, wrapped)
    statement, signature = sign_share(
        ShareStatement(case_id=case_id, sharer_device_id=physician.device.id, entries=(entry,)),
        physician.device.keys,
    )
    mixed = good | {
        "recipient_user_id": x25519.id,
        "statement": b64(statement),
        "signature": b64(signature),
        "envelopes": [{"object_id": case_id, "device_id": x25519.device.id, "wrapped_key": b64(wrapped)}],
    }
    assert_problem(_share(client, physician, case_id, mixed), 422, "envelope_length")
    assert (
        client.get(f"/v1/cases/{case_id}", headers=colleague.headers).status_code == 200
    )  # queue, not share
    assert _share(client, physician, case_id, good).status_code == 201


def test_after_a_named_decline_the_requester_reshares_to_the_specialty(client, accounts):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    named = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    first, second = (clinician(client, accounts, Role.SPECIALIST, specialties=DERM) for _ in range(2))
    case = create_case(
        client, physician, named.devices, "for the named one", specialty="dermatology", named=named.id
    )
    case_id = case["id"]
    client.post(
        f"/v1/cases/{case_id}/transitions",
        json={"action": "decline", "reason": "unavailable"},
        headers=named.headers,
    )
    for specialist in (first, second):
        body = share_body(physician.device, case_id, _objects(client, physician, case_id), specialist)
        assert _share(client, physician, case_id, body).status_code == 201
        detail = client.get(f"/v1/cases/{case_id}", headers=specialist.headers).json()
        assert open_object(detail["sealed"], specialist.device) == b'{"question": "for the named one"}'

    client.post(f"/v1/cases/{case_id}/transitions", json={"action": "claim"}, headers=first.headers)
    # Keys reached the queue, not a lasting part: once claimed, the case leaves the other specialist's view.
    assert_problem(client.get(f"/v1/cases/{case_id}", headers=second.headers), 404, "case_not_found")
    assert client.get("/v1/cases", headers=second.headers).json()["items"] == []
    assert client.get(f"/v1/cases/{case_id}", headers=first.headers).status_code == 200

"""The server's checks on every sealed upload: each failure has its stable code and stores nothing."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace

import pytest
from sqlalchemy import func
from sqlmodel import select

from app.crypto.canonical import dumps
from app.crypto.e2ee import FORMAT_V1, WRAPPED_KEY_LENGTH, SealedObject, Suite, manifest_signing_input
from app.models.cases import Case, CaseObject, Envelope
from app.models.users import Role
from app.runtime.database import new_session
from tests.conftest import assert_problem
from tests.e2ee_helpers import (
    attachment_upload,
    case_body,
    case_request,
    clinician,
    create_case,
    message_body,
    new_id,
    resign,
    seal_object,
    sealed_json,
    upload,
)

DERM = ("dermatology",)


@pytest.fixture
def settings(settings):
    # Small limits, so that oversized bodies are cheap to build.
    return settings.model_copy(
        update={
            "max_case_body_bytes": 64 * 1024,
            "max_attachment_bytes": 8 * 1024,
            "max_envelopes_per_request": 4,
        }
    )


@pytest.fixture
def people(client, accounts):
    return {
        "physician": clinician(client, accounts, Role.PHYSICIAN),
        "derm": clinician(client, accounts, Role.SPECIALIST, specialties=DERM),
        "x25519": clinician(client, accounts, Role.SPECIALIST, specialties=DERM, suite=Suite.X25519),
    }


def _stored(engine) -> tuple[int, int, int]:
    with new_session(engine) as session:
        return tuple(
            session.exec(select(func.count()).select_from(m)).one() for m in (Case, CaseObject, Envelope)
        )


def _post_case(client, person, case_id: str, sealed: SealedObject):
    body = case_request(case_id, sealed, specialty="dermatology")
    return client.post("/v1/cases", json=body, headers=person.headers)


def test_tampered_forged_and_replayed_cases_are_refused_and_nothing_is_stored(client, people, engine):
    physician, derm = people["physician"], people["derm"]
    case_id = new_id()
    good = seal_object(
        physician.device, case_id, "case", case_id, b"the question", [derm.device, physician.device]
    )
    tampered = bytearray(good.ciphertext)
    tampered[20] ^= 1
    short = {device: wrapped[:-1] for device, wrapped in good.envelopes.items()}
    refusals = [
        (replace(good, ciphertext=bytes(tampered)), "ciphertext_hash_mismatch"),
        (replace(good, ciphertext=good.ciphertext + b"x"), "ciphertext_size_mismatch"),
        (
            replace(good, signature=derm.device.keys.sign(manifest_signing_input(good.manifest))),
            "invalid_signature",
        ),
        (replace(good, signature=os.urandom(64)), "invalid_signature"),
        (resign(good, physician.device, short), "envelope_length"),
        (replace(good, envelopes=short), "envelope_length"),
        (replace(good, envelopes={derm.device.id: good.envelopes[derm.device.id]}), "envelope_set_mismatch"),
        (replace(good, header=dumps({**json.loads(good.header), "aead": "p256"})), "unknown_suite"),
        (replace(good, header=good.header + b" "), "not_canonical"),
        # Another user's device, even with that device's real signature: only the caller's own devices author.
        (seal_object(derm.device, case_id, "case", case_id, b"q", [derm.device]), "invalid_signing_device"),
    ]
    for sealed, code in refusals:
        assert_problem(_post_case(client, physician, case_id, sealed), 422, code)
    assert _stored(engine) == (0, 0, 0)

    # Replays: case A's sealed content under case B's id, and B's header with A's manifest and signature.
    assert _post_case(client, physician, case_id, good).status_code == 201
    other_id = new_id()
    assert_problem(_post_case(client, physician, other_id, good), 422, "object_mismatch")
    other = seal_object(physician.device, other_id, "case", other_id, b"q", [physician.device])
    assert_problem(
        _post_case(client, physician, other_id, replace(good, header=other.header)), 422, "header_mismatch"
    )
    assert _stored(engine) == (1, 1, 2)


def test_each_envelope_must_be_of_its_devices_suite(client, people, engine):
    physician, x25519 = people["physician"], people["x25519"]
    case_id = new_id()
    sealed = seal_object(physician.device, case_id, "case", case_id, b"q", [physician.device])
    # Only a malicious author builds this: an envelope labelled X-Wing for an X25519 device.
    alien = os.urandom(WRAPPED_KEY_LENGTH[Suite.XWING])
    mixed = resign(sealed, physician.device, {**sealed.envelopes, x25519.device.id: alien})
    assert_problem(_post_case(client, physician, case_id, mixed), 422, "suite_mismatch")
    # Version 1: one suite per object, for its author and every recipient.
    old = seal_object(physician.device, case_id, "case", case_id, b"q", [physician.device], version=FORMAT_V1)
    mixed = resign(old, physician.device, {**old.envelopes, x25519.device.id: alien})
    assert_problem(_post_case(client, physician, case_id, mixed), 422, "suite_mismatch")
    other = seal_object(x25519.device, case_id, "case", case_id, b"q", [x25519.device], version=FORMAT_V1)
    header = dumps({**json.loads(other.header), "author_device_id": physician.device.id})
    assert_problem(
        _post_case(client, physician, case_id, replace(other, header=header)), 422, "suite_mismatch"
    )
    assert _stored(engine) == (0, 0, 0)


def test_messages_must_match_their_route_and_kind(client, people):
    physician, derm = people["physician"], people["derm"]
    case = create_case(client, physician, derm.devices, specialty="dermatology")
    other = create_case(client, physician, derm.devices, specialty="dermatology")
    audience = [physician.device, derm.device]
    body = message_body(physician.device, case["id"], "message", "hello", audience)
    url = f"/v1/cases/{case['id']}/messages"
    assert_problem(
        client.post(url, json=body | {"kind": "info_response"}, headers=physician.headers),
        422,
        "object_mismatch",
    )
    assert_problem(
        client.post(url, json=body | {"id": new_id()}, headers=physician.headers), 422, "object_mismatch"
    )
    elsewhere = f"/v1/cases/{other['id']}/messages"
    assert_problem(client.post(elsewhere, json=body, headers=physician.headers), 422, "object_mismatch")
    assert client.post(url, json=body, headers=physician.headers).status_code == 201
    assert_problem(client.post(url, json=body, headers=physician.headers), 409, "object_exists")
    assert_problem(
        client.post(url, json=body | {"kind": "note"}, headers=physician.headers), 422, "invalid_input"
    )


def test_attachments_are_checked_streamed_and_size_limited(client, people, engine, settings):
    physician, derm = people["physician"], people["derm"]
    case = create_case(client, physician, derm.devices, specialty="dermatology")
    audience = [physician.device, derm.device]
    blobs = settings.resolved_blobs_dir

    meta, ciphertext = attachment_upload(physician.device, case["id"], b"photo bytes", audience)
    tampered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    assert_problem(
        upload(client, physician.headers, case["id"], meta, tampered), 422, "ciphertext_hash_mismatch"
    )
    big_meta, big = attachment_upload(
        physician.device, case["id"], os.urandom(settings.max_attachment_bytes), audience
    )
    assert_problem(upload(client, physician.headers, case["id"], big_meta, big), 413, "payload_too_large")
    as_message = seal_object(physician.device, case["id"], "message", meta["id"], b"x", audience)
    wrong_kind = meta | {"header": sealed_json(as_message)["header"]}
    assert_problem(
        upload(client, physician.headers, case["id"], wrong_kind, ciphertext), 422, "object_mismatch"
    )
    assert not [path for path in blobs.rglob("*") if path.is_file()]

    response = upload(client, physician.headers, case["id"], meta, ciphertext)
    assert response.status_code == 201, response.text
    digest = hashlib.sha256(ciphertext).hexdigest()
    assert [path.name for path in blobs.rglob("*") if path.is_file()] == [digest]
    assert response.json()["ciphertext_size"] == len(ciphertext)
    # The derm sees the attachment; an unknown attachment id is a 404 of its own.
    assert (
        client.get(f"/v1/cases/{case['id']}/attachments/{meta['id']}", headers=derm.headers).content
        == ciphertext
    )
    missing = client.get(f"/v1/cases/{case['id']}/attachments/{new_id()}", headers=derm.headers)
    assert_problem(missing, 404, "attachment_not_found")


def test_oversized_bodies_and_too_many_envelopes_are_refused(client, people, accounts, settings):
    physician, derm = people["physician"], people["derm"]
    case_id = new_id()
    big = seal_object(
        physician.device, case_id, "case", case_id, os.urandom(settings.max_case_body_bytes), [derm.device]
    )
    assert_problem(_post_case(client, physician, case_id, big), 413, "payload_too_large")

    crowd = [clinician(client, accounts, Role.SPECIALIST, specialties=DERM).device for _ in range(4)]
    crowded = case_body(physician.device, [*crowd, physician.device], "q", specialty="dermatology")
    assert_problem(
        client.post("/v1/cases", json=crowded, headers=physician.headers), 422, "too_many_envelopes"
    )
    duplicated = case_body(physician.device, [derm.device], "q", specialty="dermatology")
    duplicated["sealed"]["envelopes"] *= 2
    assert_problem(
        client.post("/v1/cases", json=duplicated, headers=physician.headers), 422, "envelope_set_mismatch"
    )

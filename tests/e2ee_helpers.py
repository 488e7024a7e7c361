"""Real end-to-end encrypted payloads for API tests: devices, sealed cases, messages, attachments, re-shares.

Everything is built with app.crypto.e2ee as a client would; the tests never hand the server a plaintext.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from fastapi.testclient import TestClient

from app.client.api import b64, unb64
from app.crypto.e2ee import (
    FORMAT_V1,
    FORMAT_V2,
    KEM_PROOF_LENGTH,
    DeviceKeys,
    E2EEError,
    Header,
    Manifest,
    ObjectContext,
    Recipient,
    SealedObject,
    ShareStatement,
    Suite,
    generate_device_keys,
    manifest_signing_input,
    open_kem_challenge,
    open_sealed,
    rewrap,
    seal,
    share_entry,
    sign_device_registration,
    sign_share,
    verify_manifest,
)
from app.models.users import Role
from tests.conftest import Account, Accounts, auth_headers


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Device:
    id: str
    user_id: str
    keys: DeviceKeys


@dataclass
class Clinician:
    account: Account
    headers: dict[str, str]
    devices: list[Device] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.account.id)

    @property
    def device(self) -> Device:
        return self.devices[0]


def challenge_body(keys: DeviceKeys) -> dict:
    return {"suite": str(keys.suite), "kem_public_key": b64(keys.kem_public)}


def request_challenge(client: TestClient, headers: dict, keys: DeviceKeys):
    """POST /v1/devices/challenge for the KEM key of `keys` (the response, to check its status)."""
    return client.post("/v1/devices/challenge", json=challenge_body(keys), headers=headers)


def registration_body(keys: DeviceKeys, challenge: dict, user_id: str, label: str = "test device") -> dict:
    """A registration as a device builds it: it opens the KEM challenge and signs over the secret."""
    nonce = unb64(challenge["challenge"])
    try:
        kem_proof = open_kem_challenge(keys, unb64(challenge["kem_challenge"]), nonce, user_id)
    except E2EEError:  # the challenge was sealed to another key: send what such a device would have
        kem_proof = bytes(KEM_PROOF_LENGTH)
    return {
        "challenge_id": challenge["challenge_id"],
        "suite": str(keys.suite),
        "signing_public_key": b64(keys.signing_public),
        "kem_public_key": b64(keys.kem_public),
        "label": label,
        "kem_proof": b64(kem_proof),
        "signature": b64(sign_device_registration(keys, nonce, user_id, kem_proof)),
    }


def register_device(client: TestClient, headers: dict, user_id: str, suite: Suite = Suite.XWING) -> Device:
    keys = generate_device_keys(suite)
    challenge = request_challenge(client, headers, keys)
    assert challenge.status_code == 201, challenge.text
    response = client.post(
        "/v1/devices", json=registration_body(keys, challenge.json(), user_id), headers=headers
    )
    assert response.status_code == 201, response.text
    return Device(id=response.json()["id"], user_id=user_id, keys=keys)


def clinician(
    client: TestClient,
    accounts: Accounts,
    *roles: Role,
    specialties: tuple[str, ...] = (),
    suite: Suite = Suite.XWING,
    devices: int = 1,
    **account_options,
) -> Clinician:
    account = accounts.create(*roles, specialties=specialties, **account_options)
    person = Clinician(account=account, headers=auth_headers(client, account))
    person.devices = [register_device(client, person.headers, person.id, suite) for _ in range(devices)]
    return person


def devices_of(*people: Clinician) -> list[Device]:
    return [device for person in people for device in person.devices]


def as_recipient(device: Device) -> Recipient:
    return Recipient(device.keys.suite, device.keys.kem_public)


def seal_object(
    author: Device,
    case_id: str,
    kind: str,
    object_id: str,
    plaintext: bytes,
    recipients: Iterable[Device],
    *,
    version: int = FORMAT_V2,
) -> SealedObject:
    """Sealed in format version 2 (each envelope in its device's suite), or 1 as older clients did."""
    context = {"case_id": case_id, "kind": kind, "object_id": object_id, "author_device_id": author.id}
    header = (
        Header(**context) if version == FORMAT_V2 else Header(v=FORMAT_V1, suite=author.keys.suite, **context)
    )
    return seal(plaintext, header, {device.id: as_recipient(device) for device in recipients}, author.keys)


def sealed_json(sealed: SealedObject, *, with_ciphertext: bool = True) -> dict:
    body = {
        "header": b64(sealed.header),
        "envelopes": [{"device_id": d, "wrapped_key": b64(w)} for d, w in sealed.envelopes.items()],
        "manifest": b64(sealed.manifest),
        "signature": b64(sealed.signature),
    }
    return body | ({"ciphertext": b64(sealed.ciphertext)} if with_ciphertext else {})


def resign(sealed: SealedObject, author: Device, envelopes: dict[str, bytes] | None = None) -> SealedObject:
    """The object with other envelopes, listed in a manifest the author really signed (a malicious author)."""
    envelopes = sealed.envelopes if envelopes is None else envelopes
    manifest = Manifest.parse(sealed.manifest)
    hashes = {device_id: hashlib.sha256(wrapped).hexdigest() for device_id, wrapped in envelopes.items()}
    suites = {device_id: manifest.envelope_suites.get(device_id, Suite.XWING) for device_id in envelopes}
    if manifest.v == FORMAT_V1:
        suites = {}
    changed = Manifest(**{**manifest.__dict__, "envelopes": hashes, "envelope_suites": suites}).to_bytes()
    signature = author.keys.sign(manifest_signing_input(changed))
    return SealedObject(sealed.header, sealed.ciphertext, envelopes, changed, signature)


def case_body(
    author: Device,
    recipients: Iterable[Device],
    text: str,
    *,
    specialty: str,
    case_id: str | None = None,
    priority: str = "routine",
    named: str | None = None,
) -> dict:
    case_id = case_id or new_id()
    sealed = seal_object(
        author, case_id, "case", case_id, json.dumps({"question": text}).encode(), recipients
    )
    return case_request(case_id, sealed, specialty=specialty, priority=priority, named=named)


def case_request(
    case_id: str, sealed: SealedObject, *, specialty: str, priority: str = "routine", named: str | None = None
) -> dict:
    return {
        "id": case_id,
        "specialty": specialty,
        "named_specialist_id": named,
        "priority": priority,
        "patient_consent_at": datetime.now(UTC).isoformat(),
        "sealed": sealed_json(sealed),
    }


def create_case(
    client: TestClient, requester: Clinician, recipients: Iterable[Device], text: str = "?", **options
):
    body = case_body(requester.device, [*recipients, *requester.devices], text, **options)
    response = client.post("/v1/cases", json=body, headers=requester.headers)
    assert response.status_code == 201, response.text
    return response.json()


def message_body(author: Device, case_id: str, kind: str, text: str, recipients: Iterable[Device]) -> dict:
    message_id = new_id()
    sealed = seal_object(author, case_id, kind, message_id, text.encode(), recipients)
    return {"id": message_id, "kind": kind, "sealed": sealed_json(sealed)}


def post_message(client, person: Clinician, case_id: str, kind: str, text: str, recipients: Iterable[Device]):
    body = message_body(person.device, case_id, kind, text, recipients)
    return client.post(f"/v1/cases/{case_id}/messages", json=body, headers=person.headers)


def attachment_upload(
    author: Device, case_id: str, data: bytes, recipients: Iterable[Device]
) -> tuple[dict, bytes]:
    attachment_id = new_id()
    sealed = seal_object(author, case_id, "attachment", attachment_id, data, recipients)
    return {"id": attachment_id, **sealed_json(sealed, with_ciphertext=False)}, sealed.ciphertext


def upload(client: TestClient, headers: dict, case_id: str, meta: dict, ciphertext: bytes):
    return client.post(
        f"/v1/cases/{case_id}/attachments",
        data={"meta": json.dumps(meta)},
        files={"ciphertext": ("ciphertext.bin", io.BytesIO(ciphertext), "application/octet-stream")},
        headers=headers,
    )


def open_object(
    sealed: dict, device: Device, ciphertext: bytes | None = None, served: ObjectContext | None = None
) -> bytes:
    """What a recipient device does: verify the author's signature and the commitment, then decrypt. Tests
    about other things than the served context leave `served` out: it is then the header's own."""
    mine = next(e for e in sealed["envelopes"] if e["device_id"] == device.id)
    manifest = Manifest.parse(unb64(sealed["manifest"]))
    header = Header.parse(unb64(sealed["header"]))
    return open_sealed(
        unb64(sealed["header"]),
        ciphertext if ciphertext is not None else unb64(sealed["ciphertext"]),
        unb64(mine["wrapped_key"]),
        unb64(sealed["manifest"]),
        unb64(sealed["signature"]),
        device.id,
        device.keys,
        unb64(sealed["author_device"]["signing_public_key"]),
        served=served or ObjectContext(header.case_id, header.kind, header.object_id),
        reshared=device.id not in manifest.envelopes,
    )


def share_body(sharer: Device, case_id: str, objects: Iterable[dict], recipient: Clinician) -> dict:
    """Re-wraps every object's key (as seen by the sharer) for each of the recipient's devices."""
    envelopes, entries = [], []
    for sealed in objects:
        header, manifest = verify_manifest(
            unb64(sealed["header"]),
            unb64(sealed["manifest"]),
            unb64(sealed["signature"]),
            unb64(sealed["author_device"]["signing_public_key"]),
        )
        mine = next(e for e in sealed["envelopes"] if e["device_id"] == sharer.id)
        for device in recipient.devices:
            wrapped = rewrap(
                header,
                manifest,
                unb64(mine["wrapped_key"]),
                sharer.id,
                sharer.keys,
                device.id,
                as_recipient(device),
            )
            envelopes.append(
                {"object_id": header.object_id, "device_id": device.id, "wrapped_key": b64(wrapped)}
            )
            entries.append(share_entry(header, device.id, wrapped))
    statement, signature = sign_share(
        ShareStatement(case_id=case_id, sharer_device_id=sharer.id, entries=tuple(entries)), sharer.keys
    )
    return {
        "recipient_user_id": recipient.id,
        "sharer_device_id": sharer.id,
        "statement": b64(statement),
        "signature": b64(signature),
        "envelopes": envelopes,
    }


def create_cases_until_stopped(
    url: str, physician: Clinician, derm: Clinician, stop: threading.Event, acked: dict[str, str]
) -> None:
    """Creates cases, each with an attachment, on a live server until stopped or the server dies; `acked`
    gets the SHA-256 of every ciphertext the server acknowledged (201), by object id."""
    recipients = [*derm.devices, *physician.devices]
    with httpx.Client(base_url=url, headers=physician.headers, timeout=10) as http:
        while not stop.is_set():
            body = case_body(physician.device, recipients, "load", specialty="dermatology")
            meta, ciphertext = attachment_upload(physician.device, body["id"], os.urandom(4096), recipients)
            try:
                if http.post("/v1/cases", json=body).status_code != 201:
                    continue
                acked[body["id"]] = hashlib.sha256(unb64(body["sealed"]["ciphertext"])).hexdigest()
                files = {"ciphertext": ("c.bin", ciphertext, "application/octet-stream")}
                path = f"/v1/cases/{body['id']}/attachments"
                if http.post(path, data={"meta": json.dumps(meta)}, files=files).status_code == 201:
                    acked[meta["id"]] = hashlib.sha256(ciphertext).hexdigest()
            except httpx.TransportError:
                return  # the server is gone: what was in flight was never acknowledged

"""The device directory log on the server: what is written (and when), what answers prove, the public routes,
and the same RFC 6962 vectors as the audit log."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from app.audit.log import verify_log
from app.audit.sequencer import sequence_pending
from app.crypto import merkle, tiles
from app.crypto.directory import (
    DeviceKeysOnRecord,
    EntryAction,
    ProvedDevice,
    check_proved_device,
    check_registration,
    parse_entry,
)
from app.crypto.signed_note import NoteVerifier, open_checkpoint
from app.directory.log import DIRECTORY_LOG, ENTRIES
from app.models.base import utcnow
from app.models.users import Role
from tests.conftest import auth_headers
from tests.e2ee_helpers import clinician, create_case

VECTORS = json.loads((Path(__file__).parent / "audit" / "rfc6962_merkle.json").read_text())
DERM = ("dermatology",)


def _verifier(client) -> NoteVerifier:
    return NoteVerifier.from_key_string(client.get("/v1/directory/checkpoint").headers["X-Confrere-Log-Key"])


def _entries(engine, user_id=None) -> list[dict]:
    query = select(ENTRIES.c.position, ENTRIES.c.record).order_by(ENTRIES.c.position)
    if user_id is not None:
        query = query.where(ENTRIES.c.user_id == user_id)
    with engine.connect() as connection:
        return [{"index": p, **parse_entry(r)} for p, r in connection.execute(query)]


def _check_answer(client, answer: dict) -> list[str]:
    """What a client checks, with the crypto functions directly: the device ids proved."""
    checkpoint = open_checkpoint(answer["checkpoint"].encode(), _verifier(client))
    for device in answer["devices"]:
        proof = device["directory"]
        check_proved_device(
            ProvedDevice(
                keys=DeviceKeysOnRecord(
                    device["device_id"],
                    device["user_id"],
                    device["suite"],
                    base64.b64decode(device["signing_public_key"]),
                    base64.b64decode(device["kem_public_key"]),
                ),
                index=proof["index"],
                entry=base64.b64decode(proof["entry"]),
                proof=tuple(bytes.fromhex(node) for node in proof["inclusion"]),
            ),
            checkpoint,
        )
    return [device["device_id"] for device in answer["devices"]]


def test_a_registration_is_a_sequenced_entry_that_checks_on_its_own(client, accounts, engine):
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM, devices=2)
    [first, second] = _entries(engine, derm.account.id)
    assert [first["action"], second["action"]] == [EntryAction.DEVICE_REGISTER] * 2
    # A monitor needs nothing but the entry to check the proof of possession.
    assert check_registration(first).device_id == derm.devices[0].id
    assert first["user"] == derm.id and first["suite"] == "xwing"
    assert base64.b64decode(first["kem_public_key"]) == derm.devices[0].keys.kem_public
    # Positions come from the sequencer, in order, and the log verifies against its signed checkpoints.
    assert second["index"] == first["index"] + 1
    with engine.connect() as connection:
        report = verify_log(connection, _verifier(client), DIRECTORY_LOG)
    assert (report.tree_size, report.pending) == (2, 0)


def test_every_answer_naming_devices_proves_each_one(client, accounts):
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM, devices=2)
    physician = clinician(client, accounts, Role.PHYSICIAN)
    recipients = client.get("/v1/specialties/dermatology/recipients", headers=physician.headers).json()
    assert _check_answer(client, recipients) == [device.id for device in derm.devices]
    colleague = client.get(f"/v1/users/{derm.id}/devices", headers=physician.headers).json()
    assert _check_answer(client, colleague) == [device.id for device in derm.devices]
    own = client.get("/v1/devices", headers=derm.headers)
    checkpoint = base64.b64decode(own.headers["X-Confrere-Directory-Checkpoint"]).decode()
    devices = [{**device, "device_id": device["id"]} for device in own.json()]
    assert _check_answer(client, {"checkpoint": checkpoint, "devices": devices}) == [
        d.id for d in derm.devices
    ]

    case = create_case(client, physician, derm.devices, specialty="dermatology")
    assert _move(client, derm, case["id"], "claim") == 200
    detail = client.get(f"/v1/cases/{case['id']}", headers=physician.headers).json()
    participants = detail["participants"]
    assert [(user["user_id"], user["roles"]) for user in participants["users"]] == [
        (physician.id, ["requester"]),
        (derm.id, ["assignee"]),
    ]
    everyone = [device for user in participants["users"] for device in user["devices"]]
    assert _check_answer(client, {"checkpoint": participants["checkpoint"], "devices": everyone}) == [
        *(device.id for device in physician.devices),
        *(device.id for device in derm.devices),
    ]


def _move(client, person, case_id: str, action: str) -> int:
    return client.post(
        f"/v1/cases/{case_id}/transitions", json={"action": action}, headers=person.headers
    ).status_code


def test_a_revoked_device_is_logged_and_receives_no_new_envelope(client, accounts, engine):
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM, devices=2)
    physician = clinician(client, accounts, Role.PHYSICIAN)
    revoked = derm.devices[1]
    assert client.delete(f"/v1/devices/{revoked.id}", headers=derm.headers).status_code == 204
    assert client.delete(f"/v1/devices/{revoked.id}", headers=derm.headers).status_code == 204
    actions = [(entry["action"], entry["device"]) for entry in _entries(engine, derm.account.id)]
    assert actions[-1] == (EntryAction.DEVICE_REVOKE, revoked.id)
    assert len(actions) == 3  # revoking twice is one entry

    recipients = client.get("/v1/specialties/dermatology/recipients", headers=physician.headers).json()
    assert _check_answer(client, recipients) == [derm.devices[0].id]
    refused = client.post(
        "/v1/cases",
        json=_case_json(physician, [*derm.devices, *physician.devices]),
        headers=physician.headers,
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "recipient_not_eligible")


def _case_json(author, recipients) -> dict:
    from tests.e2ee_helpers import case_body

    return case_body(author.device, recipients, "question", specialty="dermatology")


def test_suspension_and_specialty_changes_are_logged_and_change_the_recipients(client, accounts, engine):
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    other = clinician(client, accounts, Role.SPECIALIST, specialties=DERM)
    physician = clinician(client, accounts, Role.PHYSICIAN)
    admin = accounts.create(Role.ADMIN)
    admin_headers = auth_headers(client, admin)

    def recipients() -> list[str]:
        answer = client.get("/v1/specialties/dermatology/recipients", headers=physician.headers).json()
        return _check_answer(client, answer)

    assert sorted(recipients()) == sorted([derm.device.id, other.device.id])
    suspended = client.post(
        f"/v1/admin/users/{derm.id}/suspend", json={"reason": "security_incident"}, headers=admin_headers
    )
    assert suspended.status_code == 200, suspended.text
    assert recipients() == [other.device.id]
    assert _entries(engine, derm.account.id)[-1]["action"] == EntryAction.ACCOUNT_SUSPEND

    assert client.post(f"/v1/admin/users/{derm.id}/reactivate", headers=admin_headers).status_code == 200
    assert _entries(engine, derm.account.id)[-1]["action"] == EntryAction.ACCOUNT_REACTIVATE
    roles = {"roles": ["specialist"], "specialties": ["cardiology"]}
    assert (
        client.put(f"/v1/admin/users/{derm.id}/roles", json=roles, headers=admin_headers).status_code == 200
    )
    changes = [(entry["action"], entry.get("specialty")) for entry in _entries(engine, derm.account.id)[-2:]]
    assert changes == [
        (EntryAction.SPECIALTY_REMOVE, "dermatology"),
        (EntryAction.SPECIALTY_ADD, "cardiology"),
    ]
    assert recipients() == [other.device.id]


def test_the_directory_log_is_public_and_serves_proofs_and_tiles(client, accounts):
    clinician(client, accounts, Role.SPECIALIST, specialties=DERM, devices=3)
    note = client.get("/v1/directory/checkpoint")
    assert note.status_code == 200
    checkpoint = open_checkpoint(note.content, _verifier(client))
    assert checkpoint.size == 3 and checkpoint.origin == "confrere.local/directory"
    assert client.get("/v1/directory/log/checkpoint").content == note.content
    inclusion = client.get("/v1/directory/proof/inclusion", params={"index": 1}).json()
    merkle.verify_inclusion(
        merkle.leaf_hash(base64.b64decode(inclusion["record"])),
        1,
        3,
        [bytes.fromhex(node) for node in inclusion["hashes"]],
        checkpoint.root_hash,
    )
    consistency = client.get("/v1/directory/proof/consistency", params={"first": 1, "second": 3}).json()
    assert consistency["second"] == 3 and consistency["hashes"]
    bundle = client.get("/v1/directory/log/tile/entries/000.p/3")
    assert [parse_entry(entry)["action"] for entry in tiles.decode_entry_bundle(bundle.content)] == [
        EntryAction.DEVICE_REGISTER
    ] * 3
    assert client.get("/v1/directory/log/tile/entries/000.p/4").status_code == 404
    assert client.get("/v1/directory/proof/inclusion", params={"index": 3}).status_code == 422


def test_the_directory_log_reproduces_the_rfc6962_vectors(client, app, engine):
    """The leaves of the public vectors, appended one by one through the directory log's sequencer, give the
    published roots, inclusion and consistency proofs and tiles through the public routes."""
    signer = app.state.runtime.directory_log.signer
    for size, leaf in enumerate(VECTORS["leaves"], start=1):
        with engine.begin() as connection:
            connection.execute(
                insert(ENTRIES).values(
                    record=bytes.fromhex(leaf),
                    entry_time=utcnow(),
                    user_id=uuid.uuid4(),
                    action="test.vector",
                )
            )
        assert sequence_pending(engine, signer, tables=DIRECTORY_LOG) == 1
        checkpoint = open_checkpoint(client.get("/v1/directory/checkpoint").content, signer.verifier())
        assert (checkpoint.size, checkpoint.root_hash.hex()) == (size, VECTORS["roots"][str(size)])
    for vector in VECTORS["inclusion"]:
        params = {"index": vector["leaf_index"], "tree_size": vector["tree_size"]}
        assert client.get("/v1/directory/proof/inclusion", params=params).json()["hashes"] == vector["proof"]
    for vector in VECTORS["consistency"]:
        params = {"first": vector["size1"], "second": vector["size2"]}
        assert (
            client.get("/v1/directory/proof/consistency", params=params).json()["hashes"] == vector["proof"]
        )
    tile = client.get("/v1/directory/log/tile/0/000.p/8").content
    assert tile.hex() == "".join(VECTORS["node_hashes"]["0"])


@pytest.mark.parametrize("path", ["/v1/directory/checkpoint", "/v1/directory/log/checkpoint"])
def test_the_public_checkpoint_needs_no_login(client, path):
    assert client.get(path).status_code == 200

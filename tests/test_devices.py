"""Devices (proof of possession, revocation), the recipient directory and the key backup, over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.crypto.e2ee import (
    KEM_PROOF_LENGTH,
    DeviceKeys,
    E2EEError,
    Suite,
    generate_device_keys,
    open_kem_challenge,
    sign_device_registration,
)
from app.models.base import utcnow
from app.models.devices import DeviceChallenge
from app.models.users import Role
from app.runtime.database import transaction
from app.services import devices as devices_service
from tests.conftest import assert_problem, auth_headers
from tests.e2ee_helpers import (
    b64,
    clinician,
    register_device,
    registration_body,
    request_challenge,
    unb64,
)


@pytest.fixture
def physician(client, accounts):
    account = accounts.create(Role.PHYSICIAN)
    return str(account.id), auth_headers(client, account)


def _challenge(client, headers, keys) -> dict:
    response = request_challenge(client, headers, keys)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("suite", list(Suite))
def test_a_device_registers_with_proof_of_possession_and_is_listed(client, physician, suite):
    user_id, headers = physician
    keys = generate_device_keys(suite)
    challenge = _challenge(client, headers, keys)
    assert len(unb64(challenge["challenge"])) == 32
    body = registration_body(keys, challenge, user_id, label="Claire's phone")
    response = client.post("/v1/devices", json=body, headers=headers)
    assert response.status_code == 201, response.text
    device = response.json()
    assert device["user_id"] == user_id
    assert device["suite"] == suite
    assert unb64(device["kem_public_key"]) == keys.kem_public
    assert device["revoked_at"] is None
    assert client.get("/v1/devices", headers=headers).json() == [device]
    # The challenge was single use.
    assert_problem(client.post("/v1/devices", json=body, headers=headers), 422, "invalid_challenge")


def test_registration_refusals_have_stable_codes(client, physician, accounts):
    user_id, headers = physician
    keys = generate_device_keys(Suite.X25519)
    other = generate_device_keys(Suite.X25519)

    def attempt(**changes):
        body = registration_body(keys, _challenge(client, headers, keys), user_id) | changes
        return client.post("/v1/devices", json=body, headers=headers)

    forged = registration_body(other, _challenge(client, headers, keys), user_id)["signature"]
    assert_problem(attempt(signature=forged), 422, "invalid_signature")
    assert_problem(attempt(kem_public_key=b64(bytes(32))), 422, "invalid_key")  # low-order X25519 point
    assert_problem(attempt(signing_public_key=b64(bytes(31))), 422, "invalid_key")
    assert_problem(attempt(suite="p256"), 422, "unknown_suite")
    assert_problem(attempt(kem_public_key="not base64!"), 422, "invalid_input")

    # A challenge issued to someone else, and an expired one.
    stranger = auth_headers(client, accounts.create(Role.PHYSICIAN))
    foreign = registration_body(keys, _challenge(client, stranger, keys), user_id)
    assert_problem(client.post("/v1/devices", json=foreign, headers=headers), 422, "invalid_challenge")
    challenge = _challenge(client, headers, keys)
    with transaction(client.app.state.runtime.engine) as session:
        session.execute(update(DeviceChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = registration_body(keys, challenge, user_id)
    assert_problem(client.post("/v1/devices", json=expired, headers=headers), 422, "challenge_expired")
    assert client.get("/v1/devices", headers=headers).json() == []


def test_a_signing_key_registers_once(client, physician):
    user_id, headers = physician
    keys = generate_device_keys(Suite.XWING)
    first = client.post(
        "/v1/devices",
        json=registration_body(keys, _challenge(client, headers, keys), user_id),
        headers=headers,
    )
    assert first.status_code == 201
    again = registration_body(keys, _challenge(client, headers, keys), user_id)
    assert_problem(client.post("/v1/devices", json=again, headers=headers), 409, "device_exists")


def test_a_key_registered_to_another_user_is_refused_with_key_in_use(client, physician, accounts):
    user_id, headers = physician
    colleague = accounts.create(Role.PHYSICIAN)
    theirs = register_device(client, auth_headers(client, colleague), str(colleague.id), Suite.X25519).keys
    own = generate_device_keys(Suite.X25519)
    # Their signing key with a KEM key of ours; our signing key with their KEM key (whose challenge we
    # cannot open, so only a copy of their private key would get this far: the check stands behind it).
    borrowed_signing = DeviceKeys(Suite.X25519, theirs.signing_private, own.kem_private)
    body = registration_body(borrowed_signing, _challenge(client, headers, borrowed_signing), user_id)
    assert_problem(client.post("/v1/devices", json=body, headers=headers), 409, "key_in_use")
    borrowed_kem = DeviceKeys(Suite.X25519, own.signing_private, theirs.kem_private)
    body = registration_body(borrowed_kem, _challenge(client, headers, borrowed_kem), user_id)
    assert_problem(client.post("/v1/devices", json=body, headers=headers), 409, "key_in_use")
    assert client.get("/v1/devices", headers=headers).json() == []
    # Our own KEM key again, with a new signing key: that device exists already.
    first = register_device(client, headers, user_id, Suite.X25519).keys
    again = DeviceKeys(Suite.X25519, own.signing_private, first.kem_private)
    body = registration_body(again, _challenge(client, headers, again), user_id)
    assert_problem(client.post("/v1/devices", json=body, headers=headers), 409, "device_exists")


@pytest.mark.parametrize("owner", ["colleague", "self"])
def test_a_registration_racing_past_the_key_check_meets_the_unique_index(
    client, physician, accounts, monkeypatch, owner
):
    """Two registrations of one key can both pass the service's query before either commits; the database's
    unique index on the KEM key refuses the second, still as a 409 problem naming who holds the key."""
    user_id, headers = physician
    holder = accounts.create(Role.PHYSICIAN) if owner == "colleague" else None
    holder_headers = auth_headers(client, holder) if holder else headers
    first = register_device(client, holder_headers, str(holder.id) if holder else user_id, Suite.X25519).keys
    checks = []
    original = devices_service._check_keys_unused

    def blind_first_check(session, owner_id, request):
        # The racing request's first check ran before the winner committed: it saw nothing.
        checks.append(owner_id)
        if len(checks) > 1:
            original(session, owner_id, request)

    monkeypatch.setattr(devices_service, "_check_keys_unused", blind_first_check)
    same_kem = DeviceKeys(Suite.X25519, generate_device_keys(Suite.X25519).signing_private, first.kem_private)
    body = registration_body(same_kem, _challenge(client, headers, same_kem), user_id)
    expected = "key_in_use" if holder else "device_exists"
    assert_problem(client.post("/v1/devices", json=body, headers=headers), 409, expected)
    assert len(checks) == 2
    own = client.get("/v1/devices", headers=headers).json()
    assert len(own) == (0 if holder else 1)


@pytest.mark.parametrize("suite", list(Suite))
def test_a_registration_without_a_valid_kem_proof_is_refused(client, physician, suite):
    user_id, headers = physician
    keys = generate_device_keys(suite)
    # Someone who knows a public KEM key but not its private half cannot open the challenge sealed to it.
    impostor = generate_device_keys(suite)
    challenge = _challenge(client, headers, keys)
    with pytest.raises(E2EEError, check=lambda e: e.code == "decryption_failed"):
        open_kem_challenge(
            impostor, unb64(challenge["kem_challenge"]), unb64(challenge["challenge"]), user_id
        )
    guessed = bytes(KEM_PROOF_LENGTH)
    nonce = unb64(challenge["challenge"])
    body = registration_body(keys, challenge, user_id) | {
        "kem_proof": b64(guessed),
        "signature": b64(sign_device_registration(keys, nonce, user_id, guessed)),
    }
    assert_problem(client.post("/v1/devices", json=body, headers=headers), 422, "invalid_kem_proof")
    # The right secret, opened for a KEM key other than the one registered.
    other = _challenge(client, headers, impostor)
    body = registration_body(keys, other, user_id)
    assert_problem(client.post("/v1/devices", json=body, headers=headers), 422, "invalid_kem_proof")
    # The proof is signed: a valid proof under a signature that does not cover it is refused.
    challenge = _challenge(client, headers, keys)
    body = registration_body(keys, challenge, user_id)
    stale = sign_device_registration(keys, unb64(challenge["challenge"]), user_id, guessed)
    assert_problem(
        client.post("/v1/devices", json=body | {"signature": b64(stale)}, headers=headers),
        422,
        "invalid_signature",
    )
    assert client.get("/v1/devices", headers=headers).json() == []
    assert client.post("/v1/devices", json=body, headers=headers).status_code == 201


def test_every_acting_user_may_register_but_not_a_pending_one(client, accounts):
    for role in (Role.COMPLIANCE_OFFICER, Role.ADMIN):
        account = accounts.create(role)
        register_device(client, auth_headers(client, account), str(account.id))
    pending = auth_headers(client, accounts.create(Role.PHYSICIAN, verified=False))
    keys = generate_device_keys(Suite.X25519)
    assert_problem(request_challenge(client, pending, keys), 403, "account_not_active")


def test_revocation_is_idempotent_and_owner_only(client, physician, accounts):
    user_id, headers = physician
    device = register_device(client, headers, user_id)
    stranger = auth_headers(client, accounts.create(Role.PHYSICIAN))
    assert_problem(client.delete(f"/v1/devices/{device.id}", headers=stranger), 404, "device_not_found")
    assert client.delete(f"/v1/devices/{device.id}", headers=headers).status_code == 204
    revoked_at = client.get("/v1/devices", headers=headers).json()[0]["revoked_at"]
    assert revoked_at is not None
    assert client.delete(f"/v1/devices/{device.id}", headers=headers).status_code == 204
    assert client.get("/v1/devices", headers=headers).json()[0]["revoked_at"] == revoked_at


def test_specialty_recipients_are_active_devices_of_acting_specialists_only(client, accounts):
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",), devices=2)
    cardio = clinician(client, accounts, Role.SPECIALIST, specialties=("cardiology",))
    officer = clinician(client, accounts, Role.COMPLIANCE_OFFICER)
    suspended = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",))
    revoked = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",))
    client.delete(f"/v1/devices/{revoked.device.id}", headers=revoked.headers)
    admin = auth_headers(client, accounts.create(Role.ADMIN))
    client.post(f"/v1/admin/users/{suspended.id}/suspend", json={"reason": "other"}, headers=admin)

    response = client.get("/v1/specialties/dermatology/recipients", headers=cardio.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["specialty"] == "dermatology"
    assert {d["device_id"] for d in body["devices"]} == {d.id for d in derm.devices}
    assert {d["user_id"] for d in body["devices"]} == {derm.id}
    assert_problem(
        client.get("/v1/specialties/nope/recipients", headers=cardio.headers), 404, "specialty_not_found"
    )
    # Only clinicians read the directory.
    assert_problem(
        client.get("/v1/specialties/dermatology/recipients", headers=officer.headers), 403, "role_required"
    )


def test_user_devices_list_clinicians_only(client, accounts):
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",))
    physician = clinician(client, accounts, Role.PHYSICIAN, suite=Suite.X25519)
    officer = clinician(client, accounts, Role.COMPLIANCE_OFFICER)
    pending = accounts.create(Role.PHYSICIAN, verified=False)
    response = client.get(f"/v1/users/{physician.id}/devices", headers=derm.headers).json()
    assert response["user_id"] == physician.id
    assert [(d["device_id"], d["suite"]) for d in response["devices"]] == [(physician.device.id, "x25519")]
    for hidden in (officer.id, str(pending.id), "00000000-0000-4000-8000-000000000000"):
        assert_problem(client.get(f"/v1/users/{hidden}/devices", headers=derm.headers), 404, "user_not_found")


def test_clinician_names_are_given_for_verified_active_clinicians_only(client, accounts):
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",))
    physician = clinician(client, accounts, Role.PHYSICIAN)
    officer = clinician(client, accounts, Role.COMPLIANCE_OFFICER)
    pending = accounts.create(Role.PHYSICIAN, verified=False)
    missing = "00000000-0000-4000-8000-000000000000"
    asked = [derm.id, physician.id, officer.id, str(pending.id), missing]
    response = client.get("/v1/clinicians", params={"id": asked}, headers=physician.headers)
    assert response.status_code == 200, response.text
    names = {entry["id"]: entry for entry in response.json()["clinicians"]}
    assert set(names) == {derm.id, physician.id}
    assert names[derm.id]["display_name"] == client.get("/v1/me", headers=derm.headers).json()["display_name"]
    assert (names[derm.id]["roles"], names[derm.id]["specialties"]) == (["specialist"], ["dermatology"])
    assert "email" not in names[derm.id]
    assert_problem(
        client.get("/v1/clinicians", params={"id": asked}, headers=officer.headers), 403, "role_required"
    )
    assert_problem(
        client.get("/v1/clinicians", params={"id": ["x"]}, headers=derm.headers), 422, "invalid_input"
    )


def test_key_backup_is_stored_blind_and_size_limited(client, physician, settings, accounts):
    _, headers = physician
    assert_problem(client.get("/v1/me/key-backup", headers=headers), 404, "key_backup_not_found")
    blob = b"\x00client-encrypted key material\xff" * 10
    assert client.put("/v1/me/key-backup", json={"blob": b64(blob)}, headers=headers).status_code == 204
    stored = client.get("/v1/me/key-backup", headers=headers).json()
    assert unb64(stored["blob"]) == blob
    assert stored["updated_at"]
    replaced = b"newer backup"
    assert client.put("/v1/me/key-backup", json={"blob": b64(replaced)}, headers=headers).status_code == 204
    assert unb64(client.get("/v1/me/key-backup", headers=headers).json()["blob"]) == replaced

    too_big = b64(bytes(settings.max_key_backup_bytes + 1))
    assert_problem(
        client.put("/v1/me/key-backup", json={"blob": too_big}, headers=headers), 413, "payload_too_large"
    )
    assert_problem(client.put("/v1/me/key-backup", json={"blob": "a"}, headers=headers), 422, "invalid_input")
    other = auth_headers(client, accounts.create(Role.SPECIALIST, specialties=("cardiology",)))
    assert_problem(client.get("/v1/me/key-backup", headers=other), 404, "key_backup_not_found")

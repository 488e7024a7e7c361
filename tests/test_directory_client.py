"""The reference client against a server that misbehaves with keys: it refuses to seal, with the reason, when
a device is not in the directory log, when a proof leads outside the checkpoint it holds, or when the log
forks; it reports devices added behind its user's back; it catches a new device up, re-shares idempotently
and pins verified colleagues' safety numbers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from app.client.api import ConfrereApi
from app.client.clinician import Clinician
from app.client.directory import DirectoryTrust, Monitor
from app.crypto.directory import DirectoryRefusal, Registration
from app.crypto.e2ee import E2EEError, Suite, generate_device_keys, sign_device_registration
from app.crypto.signed_note import Checkpoint, NoteSigner, sign_checkpoint
from app.models.base import utcnow
from app.models.cases import Case, CaseObject, Envelope
from app.models.devices import Device
from app.models.users import Role
from app.runtime.database import transaction
from tests.conftest import PASSWORD

DERM = ("dermatology",)
Rewrite = Callable[[httpx.Request, httpx.Response], httpx.Response]


class Tampering(httpx.BaseTransport):
    """The server as a client sees it, with some answers rewritten by an attacker who runs it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.rewrite: Rewrite | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.rewrite is None:
            return response
        response.read()
        return self.rewrite(request, response)


@pytest.fixture
def transport(client) -> Tampering:
    return Tampering(client._transport)


@pytest.fixture
def person(accounts, transport):
    def make(*roles: Role, specialties=(), suite: str = "x25519") -> Clinician:
        account = accounts.create(*roles, specialties=specialties)
        device = device_of(account, transport, suite)
        device.test_account = account  # for the account's later devices
        return device

    return make


def device_of(account, transport, suite: str = "x25519") -> Clinician:
    """A new device (its own login and keys) of the account."""
    api = ConfrereApi("http://testserver", transport=transport)
    api.login(account.email, PASSWORD)
    return Clinician.enrol_device(api, suite, "test device")


def _slip_in_device(engine, user_id: str, *, logged: bool, directory=None) -> str:
    """What a compromised server does: a device of its own for a user, with or without a log entry."""
    keys = generate_device_keys(Suite.X25519)
    with transaction(engine) as session:
        device = Device(
            user_id=uuid.UUID(user_id),
            suite="x25519",
            signing_public_key=keys.signing_public,
            kem_public_key=keys.kem_public,
            label="not yours",
            created_at=utcnow(),
        )
        session.add(device)
        session.flush()
        if logged:
            challenge = os.urandom(32)
            kem_proof = os.urandom(32)  # what the server checked; a monitor checks the signature over it
            signature = sign_device_registration(keys, challenge, user_id, kem_proof)
            registration = Registration(challenge, kem_proof, signature)
            directory.device_registered(session, device, registration)
        return str(device.id)


def _stored_cases(engine) -> int:
    with transaction(engine) as session:
        return len(session.exec(select(Case)).all())


def test_a_device_added_without_a_log_entry_makes_the_client_refuse_to_seal(person, engine):
    physician = person(Role.PHYSICIAN)
    derm = person(Role.SPECIALIST, specialties=DERM)
    planted = _slip_in_device(engine, derm.user_id, logged=False)
    with pytest.raises(DirectoryRefusal) as refused:
        physician.create_case(specialty="dermatology", question="?")
    assert refused.value.code == "device_not_in_directory"
    assert planted in str(refused.value)
    assert _stored_cases(engine) == 0


def test_an_entry_outside_the_checkpoint_the_client_holds_makes_it_refuse(person, transport, engine, app):
    physician = person(Role.PHYSICIAN)
    derm = person(Role.SPECIALIST, specialties=DERM)
    physician.create_case(specialty="dermatology", question="first")
    held = physician.trust.last_checkpoint
    stale = physician.api.directory_checkpoint()
    # A new device with a proper entry, but the server keeps serving the checkpoint the client already
    # holds, so that the client never learns a tree that includes it (and monitors never see it).
    planted = _slip_in_device(engine, derm.user_id, logged=True, directory=app.state.runtime.directory_log)

    def serve_stale_checkpoint(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if not request.url.path.endswith("/recipients"):
            return response
        body = response.json()
        for device in body["devices"]:  # proofs to the stale tree, where the tree has them
            if device["directory"]["index"] < held.size:
                proof = transport.inner.handle_request(
                    httpx.Request(
                        "GET",
                        "http://testserver/v1/directory/proof/inclusion",
                        params={"index": device["directory"]["index"], "tree_size": held.size},
                    )
                )
                proof.read()
                device["directory"]["inclusion"] = proof.json()["hashes"]
        return httpx.Response(200, json=body | {"checkpoint": stale.decode()})

    transport.rewrite = serve_stale_checkpoint
    with pytest.raises(DirectoryRefusal) as refused:
        physician.create_case(specialty="dermatology", question="second")
    assert refused.value.code == "device_not_in_directory"
    assert planted in str(refused.value) and f"size {held.size}" in str(refused.value)
    assert _stored_cases(engine) == 1


def test_a_forked_checkpoint_makes_the_client_refuse(person, transport, app):
    physician = person(Role.PHYSICIAN)
    person(Role.SPECIALIST, specialties=DERM)
    physician.create_case(specialty="dermatology", question="first")
    held = physician.trust.last_checkpoint
    # The server's key signs a second tree of the same size (what it shows some clients, not others).
    signer = app.state.runtime.directory_log.signer
    fork = sign_checkpoint(Checkpoint(signer.name, held.size, bytes(32)), signer)

    def serve_fork(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/recipients"):
            return httpx.Response(200, json=response.json() | {"checkpoint": fork.decode()})
        return response

    transport.rewrite = serve_fork
    with pytest.raises(DirectoryRefusal) as refused:
        physician.create_case(specialty="dermatology", question="second")
    assert refused.value.code == "directory_log_forked"

    # A larger fork fails the consistency proof from the checkpoint the client holds.
    person(Role.SPECIALIST, specialties=DERM)
    longer = sign_checkpoint(Checkpoint(signer.name, held.size + 1, bytes(32)), signer)
    transport.rewrite = lambda request, response: (
        httpx.Response(200, json=response.json() | {"checkpoint": longer.decode()})
        if request.url.path.endswith("/recipients")
        else response
    )
    with pytest.raises(DirectoryRefusal) as refused:
        physician.create_case(specialty="dermatology", question="third")
    assert refused.value.code == "directory_log_forked"
    assert f"does not extend the one of size {held.size}" in str(refused.value)


def test_a_checkpoint_signed_by_another_key_is_refused(person, transport):
    physician = person(Role.PHYSICIAN)
    person(Role.SPECIALIST, specialties=DERM)
    impostor = NoteSigner.generate("confrere.local/directory")
    physician.trust = DirectoryTrust(physician.api, impostor.verifier().key_string)
    with pytest.raises(DirectoryRefusal) as refused:
        physician.create_case(specialty="dermatology", question="?")
    assert refused.value.code == "directory_checkpoint_invalid"


def test_monitoring_reports_a_device_added_behind_the_users_back(person, engine, app):
    derm = person(Role.SPECIALIST, specialties=DERM)
    monitor = Monitor(derm.trust, derm.user_id)
    monitor.scan()
    assert monitor.unknown_devices([derm.device_id]) == []
    planted = _slip_in_device(engine, derm.user_id, logged=True, directory=app.state.runtime.directory_log)
    monitor.scan()
    [sighting] = monitor.unknown_devices([derm.device_id])
    assert (sighting.device_id, sighting.revoked) == (planted, False)


def test_a_revoked_device_receives_no_new_envelope(person, accounts, transport, engine):
    physician = person(Role.PHYSICIAN)
    derm = person(Role.SPECIALIST, specialties=DERM)
    second = device_of(derm.test_account, transport)
    derm.api.json("DELETE", f"/v1/devices/{second.device_id}")
    case_id = physician.create_case(specialty="dermatology", question="?")
    with transaction(engine) as session:
        holders = set(
            session.execute(
                select(Envelope.device_id)
                .join(CaseObject, CaseObject.id == Envelope.object_id)
                .where(CaseObject.case_id == uuid.UUID(case_id))
            ).scalars()
        )
    assert {str(device) for device in holders} == {physician.device_id, derm.device_id}


def test_reshare_to_a_partly_covered_colleague_adds_only_the_missing_envelopes(person, accounts, transport):
    physician = person(Role.PHYSICIAN)
    derm = person(Role.SPECIALIST, specialties=DERM)
    colleague = person(Role.SPECIALIST, specialties=DERM)
    case_id = physician.create_case(specialty="dermatology", question="queued")
    # The colleague held the keys while the case was queued; then got a second device.
    later = device_of(colleague.test_account, transport)
    derm.transition(case_id, "claim")
    derm.post(case_id, "message", "taking it")
    # Missing: the case for the new device, the message (posted after the claim) for both.
    assert derm.share(case_id, colleague.user_id) == 3
    assert derm.share(case_id, colleague.user_id) == 0
    assert later.open_case(case_id).content.question == "queued"
    assert [message.text for message in later.read_messages(case_id)] == ["taking it"]


def test_a_new_device_reads_an_older_case_after_catch_up(person, accounts, transport):
    physician = person(Role.PHYSICIAN)
    derm = person(Role.SPECIALIST, specialties=DERM)
    case_id = physician.create_case(specialty="dermatology", question="before")
    derm.transition(case_id, "claim")
    derm.post(case_id, "message", "old message")
    phone = device_of(physician.test_account, transport)
    with pytest.raises(E2EEError) as refused:
        phone.open_case(case_id)
    assert refused.value.code == "no_envelope"

    assert physician.catch_up() == {case_id: 2}
    assert physician.catch_up() == {case_id: 0}
    assert phone.open_case(case_id).content.question == "before"
    # From now on the participants list names the phone: later messages are sealed for it too.
    derm.post(case_id, "message", "new message")
    assert [message.text for message in phone.read_messages(case_id)] == ["old message", "new message"]

    # Another participant may catch a new device of the physician up as well.
    tablet = device_of(physician.test_account, transport)
    assert derm.share(case_id, physician.user_id) == 3
    assert tablet.open_case(case_id).content.question == "before"


def test_safety_numbers_are_stable_and_a_verified_colleagues_change_stops_sealing(
    person, accounts, transport
):
    physician = person(Role.PHYSICIAN)
    derm = person(Role.SPECIALIST, specialties=DERM)
    number = physician.safety_number(derm.user_id)
    assert number == derm.safety_number(derm.user_id)
    assert len(number.digits.replace(" ", "")) == 30 and number.qr_payload.startswith("confrere-safety:1:")
    physician.mark_verified(derm.user_id)
    physician.create_case(specialty="dermatology", question="?", named_specialist_id=derm.user_id)

    device_of(derm.test_account, transport)
    assert physician.safety_number(derm.user_id) != number
    with pytest.raises(E2EEError) as refused:
        physician.create_case(specialty="dermatology", question="?", named_specialist_id=derm.user_id)
    assert refused.value.code == "safety_number_changed"
    assert number.digits in str(refused.value)
    physician.mark_verified(derm.user_id)
    physician.create_case(specialty="dermatology", question="?", named_specialist_id=derm.user_id)

"""The people and cases of the authorization matrix (tests/test_authz_matrix.py), built once per module.

Each role of the matrix is a real account with a real session: clinicians with a registered device, the
unverified (pending) account and the suspended one (logged in, then suspended: its session ended), and
the officers and admins with and without a TOTP session. Cases are real sealed cases in each ownership
situation the matrix reads; write cells ask for a fresh case so that one cell never changes another's.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from app.config import Settings
from app.crypto import totp
from app.crypto.e2ee import Suite, generate_device_keys
from app.models.base import utcnow
from app.models.users import Role
from app.runtime.database import transaction
from app.schemas.professional_ids import luhn_valid
from app.services import admin
from tests.conftest import Account, Accounts, auth_headers, login
from tests.e2ee_helpers import (
    Clinician,
    attachment_upload,
    case_body,
    clinician,
    create_case,
    devices_of,
    message_body,
    new_id,
    register_device,
    registration_body,
    request_challenge,
    share_body,
    upload,
)

DERM = "dermatology"
ANONYMOUS = "anonymous"
REQUESTER = "requester"
SPECIALIST = "specialist"
OTHER_SPECIALIST = "other_specialist"
OTHER_PHYSICIAN = "other_physician"
UNVERIFIED = "unverified"
SUSPENDED = "suspended"
OFFICER = "compliance_officer"
ADMIN = "admin"
OFFICER_NO_TOTP = "officer_without_totp"
ADMIN_NO_TOTP = "admin_without_totp"
ROLES = (
    ANONYMOUS,
    REQUESTER,
    SPECIALIST,
    OTHER_SPECIALIST,
    OTHER_PHYSICIAN,
    UNVERIFIED,
    SUSPENDED,
    OFFICER,
    ADMIN,
    OFFICER_NO_TOTP,
    ADMIN_NO_TOTP,
)
CLINICIANS = (REQUESTER, SPECIALIST, OTHER_SPECIALIST, OTHER_PHYSICIAN)
# How each role's account is made: roles, specialties, TOTP, verified.
_ACCOUNTS: dict[str, dict[str, Any]] = {
    UNVERIFIED: {"roles": (Role.PHYSICIAN,), "verified": False},
    SUSPENDED: {"roles": (Role.PHYSICIAN,)},
    OFFICER: {"roles": (Role.COMPLIANCE_OFFICER,)},
    ADMIN: {"roles": (Role.ADMIN,)},
    OFFICER_NO_TOTP: {"roles": (Role.COMPLIANCE_OFFICER,), "with_totp": False},
    ADMIN_NO_TOTP: {"roles": (Role.ADMIN,), "with_totp": False},
    REQUESTER: {"roles": (Role.PHYSICIAN,)},
    SPECIALIST: {"roles": (Role.SPECIALIST,), "specialties": (DERM,)},
    OTHER_SPECIALIST: {"roles": (Role.SPECIALIST,), "specialties": ("cardiology",)},
    OTHER_PHYSICIAN: {"roles": (Role.PHYSICIAN,)},
}
# Situations of an existing case, and who may read it in each (everyone else gets the missing-case 404).
READERS = {
    "open_in_queue": {REQUESTER, SPECIALIST},
    "claimed_by_colleague": {REQUESTER},
    "claimed_by_specialist": {REQUESTER, SPECIALIST},
    "shared_with_specialist": {REQUESTER, SPECIALIST},
    "named_to_colleague": {REQUESTER},
    "missing": set(),
}


@dataclass
class FreshSession:
    headers: dict[str, str]
    refresh_token: str | None
    account: Account | None


@dataclass
class World:
    client: TestClient
    accounts: Accounts
    settings: Settings
    people: dict[str, Clinician] = field(default_factory=dict)
    plain: dict[str, Account] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    cases: dict[str, dict] = field(default_factory=dict)
    attachments: dict[str, str] = field(default_factory=dict)
    colleague: Clinician | None = None
    share_recipient: Clinician | None = None  # a specialist of the specialty who holds no envelope yet
    bystander: Clinician | None = None
    officer_export: str = ""
    bystander_webhook: str = ""
    markers: list[str] = field(default_factory=list)  # sealed_markers()
    circles: dict[str, Any] = field(default_factory=dict)  # tests/authz_circles.py
    missing: Any = None  # the answer to a read of a case that does not exist
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    changing: bool = True  # set per call by the matrix: whether the call is expected to succeed

    # -- who --------------------------------------------------------------------------------------

    def account_of(self, role: str) -> Account | None:
        if role in self.people:
            return self.people[role].account
        return self.plain.get(role)

    def user_id(self, role: str) -> str:
        account = self.account_of(role)
        return str(account.id) if account else str(uuid.uuid4())

    def device_author(self, role: str) -> Clinician:
        """The role's own device when it has one; else the requester's (the request is refused anyway)."""
        return self.people.get(role, self.people[REQUESTER])

    def fresh_session(self, role: str) -> FreshSession:
        """A new account of the role with a session of its own, for cells that end or change a session;
        a refused call gets the role's shared session (an account and a login cost an Argon2 hash)."""
        if role == ANONYMOUS:
            return FreshSession(headers={}, refresh_token=None, account=None)
        if not self.changing:
            account = self.account_of(role)
            return FreshSession(self.headers[role], self.refresh_tokens.get(role), account)
        options = dict(_ACCOUNTS[role])
        account = self.accounts.create(*options.pop("roles"), **options)
        tokens = login(self.client, account)
        if role == SUSPENDED:
            self.suspend(account)
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        return FreshSession(headers=headers, refresh_token=tokens["refresh_token"], account=account)

    def suspend(self, account: Account) -> None:
        with transaction(self.accounts.engine) as session:
            admin.suspend(session, account.id, utcnow(), self.client.app.state.runtime.directory_log)

    def new_user(self, **options) -> str:
        return str(self.accounts.create(Role.PHYSICIAN, **options).id)

    # -- cases ------------------------------------------------------------------------------------

    def case_for_write(self, situation: str) -> dict:
        """A fresh case when the call is expected to change it, else the shared case of the situation."""
        return self.new_case(situation) if self.changing else self.cases[situation]

    def new_case(self, situation: str) -> dict:
        """A case in the situation, with one attachment; as the requester sees it."""
        requester, specialist = self.people[REQUESTER], self.people[SPECIALIST]
        colleague = self.colleague
        assert colleague is not None
        if situation == "missing":
            return {"id": str(uuid.uuid4()), "attachment_id": str(uuid.uuid4())}
        if situation == "named_to_colleague":
            audience = [colleague]
            case = create_case(self.client, requester, colleague.devices, specialty=DERM, named=colleague.id)
        elif situation == "shared_with_specialist":  # the specialist gets its keys from the share only
            audience = [colleague]
            case = create_case(self.client, requester, colleague.devices, specialty=DERM)
        else:
            audience = [specialist, colleague]
            case = create_case(self.client, requester, devices_of(*audience), specialty=DERM)
        case_id = case["id"]
        meta, ciphertext = attachment_upload(
            requester.device, case_id, b"photo", devices_of(requester, *audience)
        )
        uploaded = upload(self.client, requester.headers, case_id, meta, ciphertext)
        assert uploaded.status_code == 201, uploaded.text
        if situation in ("claimed_by_colleague", "shared_with_specialist"):
            self.move(colleague, case_id, "claim")
        if situation == "claimed_by_specialist":
            self.move(specialist, case_id, "claim")
        if situation == "shared_with_specialist":
            body = share_body(colleague.device, case_id, self.objects(colleague, case_id), specialist)
            path = f"/v1/cases/{case_id}/envelopes"
            shared = self.client.post(path, json=body, headers=colleague.headers)
            assert shared.status_code == 201, shared.text
        return {**case, "attachment_id": meta["id"]}

    def move(self, person: Clinician, case_id: str, action: str) -> None:
        response = self.client.post(
            f"/v1/cases/{case_id}/transitions", json={"action": action}, headers=person.headers
        )
        assert response.status_code == 200, response.text

    def objects(self, person: Clinician, case_id: str) -> list[dict]:
        """Every sealed object of a case as this person's client gathers them to re-share."""
        detail = self.client.get(f"/v1/cases/{case_id}", headers=person.headers).json()
        thread = self.client.get(f"/v1/cases/{case_id}/messages", headers=person.headers).json()["items"]
        attachments = [attachment["sealed"] for attachment in detail["attachments"]]
        return [detail["sealed"], *attachments, *(message["sealed"] for message in thread)]


def build_world(client: TestClient, accounts: Accounts, settings: Settings) -> World:
    world = World(client=client, accounts=accounts, settings=settings)
    for role in CLINICIANS:
        options = dict(_ACCOUNTS[role])
        world.people[role] = clinician(client, accounts, *options.pop("roles"), **options)
        world.headers[role] = world.people[role].headers
    world.colleague = clinician(client, accounts, Role.SPECIALIST, specialties=(DERM,))
    world.share_recipient = clinician(client, accounts, Role.SPECIALIST, specialties=(DERM,))
    world.bystander = clinician(client, accounts, Role.PHYSICIAN)
    for role in (UNVERIFIED, SUSPENDED, OFFICER, ADMIN, OFFICER_NO_TOTP, ADMIN_NO_TOTP):
        session = world.fresh_session(role)
        world.plain[role], world.headers[role] = session.account, session.headers
        world.refresh_tokens[role] = session.refresh_token or ""
    world.headers[ANONYMOUS] = {}
    for situation in READERS:
        world.cases[situation] = world.new_case(situation)
    # Another officer's export: an officer may download their own exports only.
    other_officer = auth_headers(client, accounts.create(Role.COMPLIANCE_OFFICER))
    export = client.post("/v1/audit/exports", json={"start": 0, "end": 1}, headers=other_officer)
    assert export.status_code == 201, export.text
    world.officer_export = export.json()["id"]
    assert world.bystander is not None
    hook = client.post("/v1/webhooks", json=webhook_body(), headers=world.bystander.headers)
    assert hook.status_code == 201, hook.text
    world.bystander_webhook = hook.json()["id"]
    return world


def sealed_markers(world: World) -> list[str]:
    """Strings that only a reader of a case may ever receive: its ciphertexts, headers, envelopes."""
    markers = []
    requester = world.people[REQUESTER]
    for situation, case in world.cases.items():
        if situation == "missing":
            continue
        detail = world.client.get(f"/v1/cases/{case['id']}", headers=requester.headers).json()
        sealed = detail["sealed"]
        markers += [sealed["ciphertext"][:48], sealed["header"][:48], sealed["manifest"][:48]]
        markers += [envelope["wrapped_key"][:48] for envelope in sealed["envelopes"]]
        markers += [json.dumps(detail["due_at"])]
    return markers


# -- requests ---------------------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    url: str
    json: Any = None
    data: dict | None = None
    files: dict | None = None
    headers: dict[str, str] | None = None  # None: the role's own session
    params: dict | None = None


Build = Callable[[World, str], Call]


def get(url: str, **params) -> Build:
    return lambda w, role: Call("GET", url, params=params or None)


def call(method: str, url: Callable[[World, str], str], body: Any = None) -> Build:
    return lambda w, role: Call(method, url(w, role), json=body)


def on_case(situation: str, suffix: str = "") -> Build:
    def build(w: World, role: str) -> Call:
        case = w.cases[situation]
        return Call("GET", f"/v1/cases/{case['id']}{suffix.format(**case)}")

    return build


def rpps() -> str:
    prefix = str(uuid.uuid4().int)[:10]
    return next(prefix + digit for digit in "0123456789" if luhn_valid(prefix + digit))


def register(w: World, role: str) -> Call:
    body = {
        "email": f"matrix-{uuid.uuid4().hex[:12]}@example.org",
        "password": "a long enough password",
        "display_name": "Dr Matrix",
        "professional_id_kind": "rpps",
        "professional_id": rpps(),
        "roles": ["physician"],
    }
    return Call("POST", "/v1/auth/register", json=body)


def log_in(w: World, role: str) -> Call:
    if role == ANONYMOUS:
        return Call("POST", "/v1/auth/token", json={"email": "nobody@example.org", "password": "not it"})
    account = w.fresh_session(role).account
    assert account is not None
    body = {"email": account.email, "password": account.password}
    if account.totp_secret is not None:
        body["totp_code"] = account.next_totp_code()
    return Call("POST", "/v1/auth/token", json=body)


def refresh(w: World, role: str) -> Call:
    token = w.fresh_session(role).refresh_token or "not-a-refresh-token-at-all"
    return Call("POST", "/v1/auth/refresh", json={"refresh_token": token})


def with_fresh_session(method: str, url: str) -> Build:
    return lambda w, role: Call(method, url, headers=w.fresh_session(role).headers)


def confirm_totp(w: World, role: str) -> Call:
    headers = w.fresh_session(role).headers
    started = w.client.post("/v1/auth/mfa/totp", headers=headers)
    code = "000000"
    if started.status_code == 200:
        secret = started.json()["secret"]
        code = totp.code_at(base64.b32decode(secret + "=" * (-len(secret) % 8)), time.time())
    return Call("POST", "/v1/auth/mfa/totp/confirm", json={"code": code}, headers=headers)


def key_backup_stored(w: World, role: str) -> Call:
    w.client.put("/v1/me/key-backup", json={"blob": "c2VhbGVk"}, headers=w.headers[role])
    return Call("GET", "/v1/me/key-backup")


def register_own_device(w: World, role: str) -> Call:
    keys = generate_device_keys(Suite.X25519)
    challenge = request_challenge(w.client, w.headers[role], keys)
    refused = {
        "challenge_id": new_id(),
        "challenge": base64.b64encode(bytes(32)).decode(),
        "kem_challenge": "",
    }
    issued = challenge.json() if challenge.status_code == 201 else refused
    return Call("POST", "/v1/devices", json=registration_body(keys, issued, w.user_id(role)))


def revoke_own_device(w: World, role: str) -> Call:
    challenge = request_challenge(w.client, w.headers[role], generate_device_keys(Suite.X25519))
    device_id = new_id()
    if challenge.status_code == 201:
        device_id = register_device(w.client, w.headers[role], w.user_id(role), Suite.X25519).id
    return Call("DELETE", f"/v1/devices/{device_id}")


def create_new_case(w: World, role: str) -> Call:
    author = w.device_author(role)
    recipients = [*w.people[SPECIALIST].devices, *author.devices]
    return Call("POST", "/v1/cases", json=case_body(author.device, recipients, "?", specialty=DERM))


def transition(situation: str, action: str) -> Build:
    def build(w: World, role: str) -> Call:
        case = w.case_for_write(situation)
        return Call("POST", f"/v1/cases/{case['id']}/transitions", json={"action": action})

    return build


def share_with_colleague(situation: str) -> Build:
    def build(w: World, role: str) -> Call:
        case = w.case_for_write(situation)
        sharer = w.people[role] if role in (REQUESTER, SPECIALIST) else w.people[REQUESTER]
        assert w.share_recipient is not None
        body = share_body(sharer.device, case["id"], w.objects(sharer, case["id"]), w.share_recipient)
        return Call("POST", f"/v1/cases/{case['id']}/envelopes", json=body)

    return build


def _audience(w: World) -> list:
    return [*w.people[REQUESTER].devices, *w.people[SPECIALIST].devices]


def post_message(situation: str) -> Build:
    def build(w: World, role: str) -> Call:
        case_id = w.case_for_write(situation)["id"]
        body = message_body(w.device_author(role).device, case_id, "message", "hi", _audience(w))
        return Call("POST", f"/v1/cases/{case_id}/messages", json=body)

    return build


def post_attachment(situation: str) -> Build:
    def build(w: World, role: str) -> Call:
        case_id = w.case_for_write(situation)["id"]
        meta, ciphertext = attachment_upload(w.device_author(role).device, case_id, b"scan", _audience(w))
        return Call(
            "POST",
            f"/v1/cases/{case_id}/attachments",
            data={"meta": json.dumps(meta)},
            files={"ciphertext": ("c.bin", ciphertext, "application/octet-stream")},
        )

    return build


def export_of(owner: str) -> Build:
    """An export of the caller (when the caller may export) or of another officer."""

    def build(w: World, role: str) -> Call:
        export_id = w.officer_export
        if owner == "own":
            made = w.client.post("/v1/audit/exports", json={"start": 0, "end": 1}, headers=w.headers[role])
            export_id = made.json()["id"] if made.status_code == 201 else export_id
        return Call("GET", f"/v1/audit/exports/{export_id}")

    return build


def webhook_body() -> dict[str, str]:
    # A loopback target (the matrix allows private targets): registration resolves no name.
    return {"url": "http://127.0.0.1:9/confrere-matrix", "secret": uuid.uuid4().hex + uuid.uuid4().hex}


def webhook_of(owner: str, suffix: str = "") -> Build:
    """A route on a webhook of the caller (registered for this call when the caller may) or of another."""

    def build(w: World, role: str) -> Call:
        webhook_id = w.bystander_webhook if owner == "other" else new_id()
        if owner == "own":
            made = w.client.post("/v1/webhooks", json=webhook_body(), headers=w.headers[role])
            webhook_id = made.json()["id"] if made.status_code == 201 else webhook_id
        return Call("DELETE" if not suffix else "GET", f"/v1/webhooks/{webhook_id}{suffix}")

    return build

"""`confrere demo`: one whole case, end to end, against a running development server.

Accounts are provisioned straight into the server's database (like `create-admin`, this runs on the server's
machine with its settings); everything else goes over HTTP through the reference client, which encrypts on
this side. Each step prints what the server stored: sizes and hashes, never plaintext.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import col, select

from app.client.api import ApiError, ConfrereApi, unb64
from app.client.clinician import Attachment, Clinician
from app.config import Environment, Settings
from app.crypto import totp
from app.crypto.canonical import Manifest
from app.crypto.passwords import PasswordHasher
from app.models.base import utcnow
from app.models.users import Role, User
from app.platform.keyring import load_server_keys
from app.runtime.database import create_db_engine, transaction
from app.services import accounts
from app.services.auth import totp_context

DEMO_PASSWORD = "confrere demo password"  # noqa: S105 (development-only demo accounts)
SPECIALTY = "dermatology"
STATE_FILE = "demo-accounts.json"


@dataclass(frozen=True)
class DemoAccount:
    email: str
    roles: tuple[Role, ...]
    specialties: tuple[str, ...] = ()
    totp_secret: bytes | None = None


PHYSICIAN = DemoAccount("demo.physician@confrere.local", (Role.PHYSICIAN,))
SPECIALIST = DemoAccount("demo.dermatologist@confrere.local", (Role.SPECIALIST,), (SPECIALTY,))
OFFICER = DemoAccount("demo.compliance@confrere.local", (Role.COMPLIANCE_OFFICER,))


def provision_accounts(settings: Settings) -> dict[str, bytes]:
    """Creates the demo accounts once; returns the compliance officer's TOTP secret (kept in the data dir)."""
    state_path = settings.data_dir / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    engine = create_db_engine(settings)
    sealer = load_server_keys(settings).sealer
    hasher = PasswordHasher(settings.argon2_memory_kib, settings.argon2_iterations, settings.argon2_lanes)
    try:
        with transaction(engine) as session:
            for account in (PHYSICIAN, SPECIALIST, OFFICER):
                if session.exec(select(User).where(col(User.email) == account.email)).first():
                    continue
                user = accounts.provision(
                    session,
                    hasher,
                    email=account.email,
                    password=DEMO_PASSWORD,
                    display_name=account.email.split("@")[0],
                    roles=set(account.roles),
                    specialties=set(account.specialties),
                    now=utcnow(),
                )
                if Role.COMPLIANCE_OFFICER in account.roles:
                    secret = totp.new_secret()
                    user.totp_secret_sealed = sealer.seal(secret, totp_context(user.id))
                    user.totp_confirmed_at = utcnow()
                    state[account.email] = base64.b64encode(secret).decode()
    finally:
        engine.dispose()
    state_path.write_text(json.dumps(state))
    state_path.chmod(0o600)
    return {email: base64.b64decode(secret) for email, secret in state.items()}


def _login(server: str, account: DemoAccount, secrets: dict[str, bytes]) -> ConfrereApi:
    api = ConfrereApi(server)
    code = None
    if account.email in secrets:
        # One code per 30 s step: a rerun within the same step waits for the next one.
        step = int(time.time()) // totp.STEP_SECONDS + 1
        code = totp.code_at(secrets[account.email], step * totp.STEP_SECONDS)
    api.login(account.email, DEMO_PASSWORD, code)
    return api


def _fresh_device(api: ConfrereApi, suite: str, label: str) -> Clinician:
    for device in api.devices():
        if device["revoked_at"] is None:
            api.request("DELETE", f"/v1/devices/{device['id']}")
    return Clinician.enrol_device(api, suite, label)


def _stored(sealed: dict) -> str:
    recipients = len(Manifest.parse(unb64(sealed["manifest"])).envelopes)
    return (
        f"{sealed['ciphertext_size']} bytes of ciphertext, sha256 {sealed['ciphertext_sha256'][:16]}..., "
        f"content key wrapped for {recipients} device(s), manifest signed by the author's device"
    )


def run_demo(server: str, settings: Settings, suite: str, say: Callable[[str], None] = print) -> int:
    if settings.environment is Environment.PRODUCTION:
        say("refusing to create demo accounts in production")
        return 1
    secrets = provision_accounts(settings)
    say(f"1. Demo accounts ready: {PHYSICIAN.email}, {SPECIALIST.email}, {OFFICER.email}")
    physician = _fresh_device(_login(server, PHYSICIAN, secrets), suite, "demo physician laptop")
    specialist = _fresh_device(_login(server, SPECIALIST, secrets), suite, "demo dermatologist phone")
    say(f"2. Devices registered ({suite}): private keys generated here, only public keys sent")

    photo = b"\x89PNG demo lesion photo " + hashlib.sha256(str(time.time()).encode()).digest()
    case_id = physician.create_case(
        specialty=SPECIALTY,
        question="Woman, 54: pigmented lesion on the left forearm, changed in 3 months. Excision?",
        attachments=[Attachment(name="lesion.png", media_type="image/png", data=photo)],
    )
    stored = physician.api.case(case_id)
    say(f"3. Physician created case {case_id} for {SPECIALTY} with a photo")
    say(f"   server stored: {_stored(stored['sealed'])}")
    for attachment in stored["attachments"]:
        say(f"   attachment {attachment['id']}: {attachment['ciphertext_size']} bytes of ciphertext")

    queued = [case["id"] for case in specialist.api.queue()]
    say(f"4. Dermatologist's queue holds the case: {case_id in queued}")
    specialist.transition(case_id, "claim")
    opened = specialist.open_case(case_id)
    question = opened.content.question if opened.content else opened.raw_text
    say(
        f"5. Dermatologist claimed and decrypted it: {question!r}, "
        f"photo {len(opened.attachments[0].data)} bytes, signature and key commitment verified"
    )
    specialist.post(case_id, "info_request", "Dermoscopy image available? Any family history of melanoma?")
    specialist.transition(case_id, "request_info")
    say("6. Dermatologist asked for information (status awaiting_info)")
    physician.post(case_id, "info_response", "No dermoscopy. Mother treated for melanoma at 60.")
    physician.transition(case_id, "provide_info")
    say("7. Physician answered (status claimed)")
    report = specialist.post(
        case_id, "report", "Suspicious for melanoma: excision with 2 mm margins, histology."
    )
    specialist.transition(case_id, "answer", report_message_id=report)
    say("8. Dermatologist sent the signed report (status answered)")
    for message in physician.read_messages(case_id):
        say(f"   physician reads {message.kind}: {message.text}")
    physician.transition(case_id, "close")
    say("9. Physician closed the case")

    officer = _login(server, OFFICER, secrets)
    try:
        events = list(officer.audit_events(case=case_id))
    except ApiError as error:
        say(f"10. Audit trail not available: {error}")
        return 0
    say(f"10. Compliance officer sees {len(events)} audit records for the case (no content, ids only):")
    for event in events:
        record = event.get("record", event)
        actor = record.get("actor", {})
        say(f"   {record.get('time')} {record.get('action')} {record.get('outcome')} by {actor.get('user')}")
    return 0

"""`confrere demo`: one whole case, end to end, against a running development server.

The accounts come from the server's own CLI (`confrere demo-accounts`, run as a process of its own on the
server's machine), so this client needs nothing of the server's code; everything else goes over HTTP
through the reference client, which encrypts on this side. Each step prints what the server stored: sizes
and hashes, never plaintext.

It reruns any number of times: a small state file in the client home (next to the profiles) remembers the
devices this demo registered, which are the only ones it revokes (never a browser's), and the last TOTP
step it used, since a code is accepted once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from app.client.api import ApiError, ConfrereApi, unb64
from app.client.clinician import Attachment, Clinician
from app.client.profile import client_home, write_private
from app.crypto import totp
from app.crypto.canonical import Manifest

SPECIALTY = "dermatology"
STATE_FILE = "demo-state.json"


class DemoError(Exception):
    """The demo cannot start (no accounts, no server): said in one line."""


def default_accounts_command() -> list[str]:
    """This installation's server CLI: beside the Python running the demo, else on PATH."""
    sibling = Path(sys.executable).with_name("confrere")
    return [str(sibling) if sibling.exists() else shutil.which("confrere") or "confrere", "demo-accounts"]


def fetch_accounts(command: list[str]) -> dict[str, dict[str, Any]]:
    """Runs the server's `demo-accounts` (which creates them when missing) and reads its JSON."""
    try:
        # The command is the operator's own (--accounts-command) or this installation's CLI.
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    except OSError as error:
        raise DemoError(f"cannot run {shlex.join(command)}: {error}") from None
    if result.returncode != 0:
        raise DemoError(f"{shlex.join(command)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return {account["key"]: account for account in json.loads(result.stdout)}


class DemoState:
    """What this demo did before, per server: its devices per account and the TOTP steps it used."""

    def __init__(self, server: str):
        self.path = client_home() / STATE_FILE
        everything = json.loads(self.path.read_text()) if self.path.exists() else {}
        self._all = everything
        self._mine = everything.setdefault(server, {"devices": {}, "totp_steps": {}})

    def save(self) -> None:
        write_private(self.path, json.dumps(self._all, indent=2))

    def devices(self, email: str) -> list[str]:
        return self._mine["devices"].get(email, [])

    def set_devices(self, email: str, device_ids: list[str]) -> None:
        self._mine["devices"][email] = device_ids
        self.save()

    def last_step(self, email: str) -> int:
        return self._mine["totp_steps"].get(email, 0)

    def used_step(self, email: str, step: int) -> None:
        self._mine["totp_steps"][email] = step
        self.save()


def _next_totp_step(last_step: int, say: Callable[[str], None]) -> int:
    """The first step after the last one used that the server accepts now (it allows one step ahead),
    waiting for it when a rerun comes too soon: a code is good once."""
    step = max(int(time.time()) // totp.STEP_SECONDS, last_step + 1)
    wait = (step - totp.ALLOWED_DRIFT_STEPS) * totp.STEP_SECONDS - time.time()
    if wait > 0:
        say(f"   waiting {wait:.0f} s for the next TOTP code (each code is accepted once)")
        time.sleep(wait + 0.5)
    return step


def _login(server: str, account: dict[str, Any], state: DemoState, say: Callable[[str], None]) -> ConfrereApi:
    api = ConfrereApi(server)
    if not account["totp_secret"]:
        api.login(account["email"], account["password"])
        return api
    secret = base64.b32decode(account["totp_secret"] + "=" * (-len(account["totp_secret"]) % 8))
    # A second try covers a code taken meanwhile by someone else (a browser login as the same account).
    for attempt in range(2):
        step = _next_totp_step(state.last_step(account["email"]), say)
        state.used_step(account["email"], step)
        try:
            api.login(account["email"], account["password"], totp.code_at(secret, step * totp.STEP_SECONDS))
            return api
        except ApiError as error:
            if error.code != "invalid_totp" or attempt:
                raise
    raise AssertionError("unreachable")


def _fresh_device(api: ConfrereApi, state: DemoState, email: str, suite: str, label: str) -> Clinician:
    """Revokes the devices this demo registered before (only those) and registers a new one."""
    for device_id in state.devices(email):
        try:
            api.request("DELETE", f"/v1/devices/{device_id}")
        except ApiError as error:
            if error.status != 404:
                raise
    clinician = Clinician.enrol_device(api, suite, label)
    state.set_devices(email, [clinician.device_id])
    return clinician


def login_instructions(server: str, accounts: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"Log in as a demo account: web client {server}/app/, or `confrere login --server {server}`"]
    for account in accounts.values():
        lines.append(f"   {account['roles']:<20} {account['email']}  password: {account['password']!r}")
        if account["otpauth_uri"]:
            lines.append(
                f"   {'':<20} TOTP (authenticator app or `confrere totp code`): {account['otpauth_uri']}"
            )
    return lines


def _stored(sealed: dict) -> str:
    recipients = len(Manifest.parse(unb64(sealed["manifest"])).envelopes)
    return (
        f"{sealed['ciphertext_size']} bytes of ciphertext, sha256 {sealed['ciphertext_sha256'][:16]}..., "
        f"content key wrapped for {recipients} device(s), manifest signed by the author's device"
    )


def run_demo(
    server: str, suite: str, accounts_command: str | None = None, say: Callable[[str], None] = print
) -> int:
    command = shlex.split(accounts_command) if accounts_command else default_accounts_command()
    try:
        accounts = fetch_accounts(command)
        httpx.get(f"{server}/healthz", timeout=5).raise_for_status()
    except DemoError as error:
        say(f"error: {error}")
        return 1
    except httpx.HTTPError as error:
        say(f"error: no Confrere server answers at {server} ({error}): start one with `make run`")
        return 1
    state = DemoState(server)
    say(f"1. Demo accounts ready: {', '.join(account['email'] for account in accounts.values())}")
    physician, specialist = (
        _fresh_device(_login(server, accounts[key], state, say), state, accounts[key]["email"], suite, label)
        for key, label in (("physician", "demo physician laptop"), ("specialist", "demo dermatologist phone"))
    )
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

    officer = _login(server, accounts["officer"], state, say)
    try:
        events = list(officer.audit_events(case=case_id))
    except ApiError as error:
        say(f"10. Audit trail not available: {error}")
    else:
        say(f"10. Compliance officer sees {len(events)} audit records for the case (no content, ids only):")
        for event in events:
            record = event.get("record", event)
            by = record.get("actor", {}).get("user")
            say(f"   {record.get('time')} {record.get('action')} {record.get('outcome')} by {by}")
    for line in login_instructions(server, accounts):
        say(line)
    return 0

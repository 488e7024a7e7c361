"""The device directory log's entries, and what a client checks before it seals for a device (docs/e2ee.md,
"Device directory (key transparency)"; docs/key-transparency.md for monitors).

An entry is canonical JSON (app.crypto.canonical): a public statement about one user's device or about
whether the user may receive a specialty's keys. The server writes them; anyone holding the log's verifier
key can check an entry's inclusion in a signed checkpoint, and a registration's proof of possession, alone.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from app.crypto import canonical, merkle
from app.crypto.e2ee_keys import E2EEError, Suite, verify_device_registration
from app.crypto.signed_note import Checkpoint, NoteError, NoteVerifier, open_checkpoint

ENTRY_VERSION = 1
SAFETY_NUMBER_LABEL = b"confrere safety number v1\n"
SAFETY_NUMBER_GROUPS = 6
QR_PREFIX = "confrere-safety:1"


class EntryAction(StrEnum):
    DEVICE_REGISTER = "device.register"
    DEVICE_REVOKE = "device.revoke"
    SPECIALTY_ADD = "specialty.add"
    SPECIALTY_REMOVE = "specialty.remove"
    ACCOUNT_VERIFY = "account.verify"
    ACCOUNT_SUSPEND = "account.suspend"
    ACCOUNT_REACTIVATE = "account.reactivate"


DEVICE_ACTIONS = frozenset({EntryAction.DEVICE_REGISTER, EntryAction.DEVICE_REVOKE})


class DirectoryRefusal(E2EEError):
    """The directory's answer does not prove what it claims: the client must not seal."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class DeviceKeysOnRecord:
    device_id: str
    user_id: str
    suite: str
    signing_public_key: bytes
    kem_public_key: bytes


@dataclass(frozen=True)
class Registration:
    """The registration's proof of possession: the server's challenge, the secret the device recovered with
    its KEM key (format version 2), and the device's signature over both."""

    challenge: bytes
    kem_proof: bytes
    signature: bytes


def device_entry(
    action: EntryAction, device: DeviceKeysOnRecord, time: datetime, registration: Registration | None = None
) -> bytes:
    if action not in DEVICE_ACTIONS:
        raise ValueError(f"{action} is not a device action")
    if (registration is not None) != (action is EntryAction.DEVICE_REGISTER):
        raise ValueError("a registration entry, and only one, carries the proof of possession")
    entry: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "action": str(action),
        "time": _time(time),
        "user": device.user_id,
        "device": device.device_id,
        "suite": device.suite,
        "signing_public_key": _b64(device.signing_public_key),
        "kem_public_key": _b64(device.kem_public_key),
    }
    if registration is not None:
        entry["challenge"] = _b64(registration.challenge)
        entry["kem_proof"] = _b64(registration.kem_proof)
        entry["signature"] = _b64(registration.signature)
    return canonical.dumps(entry)


def account_entry(action: EntryAction, user_id: str, time: datetime, specialty: str | None = None) -> bytes:
    if action in DEVICE_ACTIONS:
        raise ValueError(f"{action} is a device action")
    names_specialty = action in (EntryAction.SPECIALTY_ADD, EntryAction.SPECIALTY_REMOVE)
    if (specialty is not None) != names_specialty:
        raise ValueError("a specialty entry, and only one, names the specialty")
    entry: dict[str, Any] = {"v": ENTRY_VERSION, "action": str(action), "time": _time(time), "user": user_id}
    if specialty is not None:
        entry["specialty"] = specialty
    return canonical.dumps(entry)


def parse_entry(raw: bytes) -> dict[str, Any]:
    try:
        entry = canonical.loads(raw)
        action = EntryAction(str(entry.get("action")))
    except (E2EEError, ValueError) as error:
        raise DirectoryRefusal("invalid_directory_entry", f"not a directory entry: {error}") from None
    if entry.get("v") != ENTRY_VERSION:
        raise DirectoryRefusal("invalid_directory_entry", f"unknown directory entry version {entry.get('v')}")
    entry["action"] = action
    return entry


def device_of(entry: dict[str, Any]) -> DeviceKeysOnRecord:
    """The device a device entry is about (DirectoryRefusal for an account entry or a malformed one)."""
    if entry["action"] not in DEVICE_ACTIONS:
        raise DirectoryRefusal("invalid_directory_entry", "the entry is not about a device")
    try:
        return DeviceKeysOnRecord(
            device_id=entry["device"],
            user_id=entry["user"],
            suite=entry["suite"],
            signing_public_key=_unb64(entry["signing_public_key"]),
            kem_public_key=_unb64(entry["kem_public_key"]),
        )
    except (KeyError, TypeError, ValueError):
        raise DirectoryRefusal("invalid_directory_entry", "a device entry lacks a field") from None


def check_registration(entry: dict[str, Any]) -> DeviceKeysOnRecord:
    """A registration entry's device, after checking its proof of possession of the signing key."""
    if entry["action"] is not EntryAction.DEVICE_REGISTER:
        raise DirectoryRefusal("invalid_directory_entry", "the entry is not a device registration")
    device = device_of(entry)
    try:
        verify_device_registration(
            _unb64(entry["signature"]),
            _unb64(entry["challenge"]),
            device.user_id,
            Suite(device.suite),
            device.signing_public_key,
            device.kem_public_key,
            _unb64(entry["kem_proof"]),
        )
    except (KeyError, TypeError, ValueError, E2EEError):
        raise DirectoryRefusal(
            "invalid_directory_entry", f"device {device.device_id}: the proof of possession does not verify"
        ) from None
    return device


def open_directory_checkpoint(note: bytes, verifier: NoteVerifier) -> Checkpoint:
    try:
        return open_checkpoint(note, verifier)
    except NoteError as error:
        raise DirectoryRefusal(
            "directory_checkpoint_invalid",
            f"the directory checkpoint is not signed by the pinned key: {error}",
        ) from None


def check_consistent(previous: Checkpoint | None, current: Checkpoint, proof: Sequence[bytes]) -> None:
    """The current checkpoint extends the last one this client saw (a fork or a rollback is refused)."""
    if previous is None:
        return
    if current.size < previous.size:
        raise DirectoryRefusal(
            "directory_log_forked",
            f"the directory log went back from size {previous.size} to {current.size}",
        )
    try:
        merkle.verify_consistency(previous.size, current.size, previous.root_hash, current.root_hash, proof)
    except merkle.ProofError as error:
        raise DirectoryRefusal(
            "directory_log_forked",
            f"the checkpoint of size {current.size} does not extend the one of size {previous.size} this "
            f"client saw: {error}",
        ) from None


@dataclass(frozen=True)
class ProvedDevice:
    """A device as an answer serves it, with its registration entry and that entry's inclusion proof."""

    keys: DeviceKeysOnRecord
    index: int | None
    entry: bytes | None
    proof: tuple[bytes, ...]


def check_proved_device(device: ProvedDevice, checkpoint: Checkpoint) -> None:
    """The served keys are those of a registration entry included in the checkpoint; DirectoryRefusal
    naming the device otherwise."""
    named = device.keys.device_id
    if device.index is None or device.entry is None:
        raise DirectoryRefusal("device_not_in_directory", f"device {named} comes without a directory entry")
    if device.index >= checkpoint.size:
        raise DirectoryRefusal(
            "device_not_in_directory",
            f"device {named}: its entry {device.index} lies outside the checkpoint (size {checkpoint.size})",
        )
    try:
        merkle.verify_inclusion(
            merkle.leaf_hash(device.entry), device.index, checkpoint.size, device.proof, checkpoint.root_hash
        )
    except merkle.ProofError as error:
        raise DirectoryRefusal(
            "device_not_in_directory", f"device {named}: the inclusion proof fails: {error}"
        ) from None
    if check_registration(parse_entry(device.entry)) != device.keys:
        raise DirectoryRefusal(
            "device_keys_mismatch", f"device {named}: the keys served differ from its directory entry"
        )


@dataclass(frozen=True)
class SafetyNumber:
    digits: str
    qr_payload: str


def safety_number(user_id: str, devices: Iterable[DeviceKeysOnRecord]) -> SafetyNumber:
    """A stable fingerprint of a user's active devices (docs/e2ee.md): the same set of devices gives the
    same number whatever the order; any added, removed or re-keyed device changes it."""
    listed = sorted(
        (
            {
                "device": device.device_id,
                "suite": device.suite,
                "signing_public_key": _b64(device.signing_public_key),
                "kem_public_key": _b64(device.kem_public_key),
            }
            for device in devices
        ),
        key=lambda item: item["device"],
    )
    digest = hashlib.sha512(
        SAFETY_NUMBER_LABEL + canonical.dumps({"user": user_id, "devices": listed})
    ).digest()
    groups = [
        f"{int.from_bytes(digest[5 * group : 5 * group + 5], 'big') % 100_000:05d}"
        for group in range(SAFETY_NUMBER_GROUPS)
    ]
    qr = f"{QR_PREFIX}:{user_id}:{base64.urlsafe_b64encode(digest[:32]).decode().rstrip('=')}"
    return SafetyNumber(digits=" ".join(groups), qr_payload=qr)

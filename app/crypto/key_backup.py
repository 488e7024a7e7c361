"""The key backup (docs/e2ee.md section 19, "Key backup"): device private keys encrypted under a passphrase.

Argon2id stretches the passphrase into an AES-256-GCM key; the account's id is associated data, so a
backup opens only for the account it was made for. The browser (web/src/backup.js) implements the same
scheme with hash-wasm's Argon2id, and each opens what the other made.
"""

from __future__ import annotations

import base64
import json
import os
import unicodedata
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from app.crypto.e2ee_keys import DeviceKeys, E2EEError

VERSION = 1
LABEL = b"confrere/v1/key-backup\0"
SALT_LENGTH, NONCE_LENGTH, KEY_LENGTH = 16, 12, 32


@dataclass(frozen=True)
class Argon2Cost:
    """Argon2id cost: RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes) by default."""

    memory_kib: int = 65536
    iterations: int = 3
    lanes: int = 4

    def check(self) -> None:
        # Bounds, so that a backup handed over by a hostile server cannot make the client hash for hours
        # or exhaust its memory, nor weaken the stretching to nothing.
        if not (19456 <= self.memory_kib <= 1048576 and 1 <= self.iterations <= 10 and 1 <= self.lanes <= 8):
            raise E2EEError("invalid_backup", "the backup's Argon2id cost is out of bounds")


def _key(passphrase: str, salt: bytes, cost: Argon2Cost) -> bytes:
    secret = unicodedata.normalize("NFC", passphrase).encode()
    kdf = Argon2id(
        salt=salt,
        length=KEY_LENGTH,
        iterations=cost.iterations,
        lanes=cost.lanes,
        memory_cost=cost.memory_kib,
    )
    return kdf.derive(secret)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def seal_key_backup(
    passphrase: str, user_id: str, devices: dict[str, DeviceKeys], cost: Argon2Cost | None = None
) -> bytes:
    """The backup blob of these devices (device id -> keys), for the account `user_id`."""
    cost = cost or Argon2Cost()
    cost.check()
    salt, nonce = os.urandom(SALT_LENGTH), os.urandom(NONCE_LENGTH)
    plaintext = json.dumps(
        {
            "v": VERSION,
            "devices": [
                {
                    "device_id": device_id,
                    "suite": str(keys.suite),
                    "signing_private": _b64(keys.signing_private),
                    "kem_private": _b64(keys.kem_private),
                }
                for device_id, keys in devices.items()
            ],
        }
    ).encode()
    ciphertext = AESGCM(_key(passphrase, salt, cost)).encrypt(nonce, plaintext, LABEL + user_id.encode())
    envelope = {
        "v": VERSION,
        "kdf": "argon2id",
        "m": cost.memory_kib,
        "t": cost.iterations,
        "p": cost.lanes,
        "salt": _b64(salt),
        "nonce": _b64(nonce),
        "ciphertext": _b64(ciphertext),
    }
    return json.dumps(envelope).encode()


def open_key_backup(passphrase: str, user_id: str, blob: bytes) -> dict[str, DeviceKeys]:
    """The devices in a backup; `wrong_passphrase` when it does not open (or was altered)."""
    try:
        envelope = json.loads(blob)
        if envelope["v"] != VERSION or envelope["kdf"] != "argon2id":
            raise E2EEError("invalid_backup", "unknown key backup version or KDF")
        cost = Argon2Cost(int(envelope["m"]), int(envelope["t"]), int(envelope["p"]))
        salt, nonce = base64.b64decode(envelope["salt"]), base64.b64decode(envelope["nonce"])
        ciphertext = base64.b64decode(envelope["ciphertext"])
    except (ValueError, KeyError, TypeError) as error:
        raise E2EEError("invalid_backup", "the key backup is malformed") from error
    cost.check()
    if len(salt) != SALT_LENGTH or len(nonce) != NONCE_LENGTH:
        raise E2EEError("invalid_backup", "the key backup is malformed")
    try:
        plaintext = AESGCM(_key(passphrase, salt, cost)).decrypt(nonce, ciphertext, LABEL + user_id.encode())
    except InvalidTag as error:
        raise E2EEError("wrong_passphrase", "the passphrase does not open this key backup") from error
    return {
        entry["device_id"]: DeviceKeys(
            entry["suite"], base64.b64decode(entry["signing_private"]), base64.b64decode(entry["kem_private"])
        )
        for entry in json.loads(plaintext)["devices"]
    }

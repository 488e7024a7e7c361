"""The key backup scheme (docs/e2ee.md section 19, "Key backup"): the Python client's and the browser's open
each other's backups, and a wrong passphrase or another account's backup does not open."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest

from app.crypto.e2ee import Suite, generate_device_keys
from app.crypto.e2ee_keys import E2EEError
from app.crypto.key_backup import Argon2Cost, open_key_backup, seal_key_backup
from tests.live_server import ROOT

USER = "6f1c2d9e-3b7a-4c51-9e0d-2a8b4f6c1d37"
PASSPHRASE = "correct horse battery staple, Île-de-France"


def _browser(request: dict) -> dict:
    node = shutil.which("node")
    if node is None or not (ROOT / "web" / "node_modules").is_dir():
        pytest.skip("the browser's side needs node and web/node_modules (make web)")
    result = subprocess.run(
        [node, "tests/backup-interop.mjs"],
        cwd=ROOT / "web",
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_backup_made_in_python_opens_in_the_browser_and_back():
    devices = {"d-xwing": generate_device_keys(Suite.XWING), "d-x25519": generate_device_keys(Suite.X25519)}
    opened = _browser(
        {
            "op": "open",
            "passphrase": PASSPHRASE,
            "user_id": USER,
            "blob": _b64(seal_key_backup(PASSPHRASE, USER, devices)),
        }
    )["devices"]
    assert opened == {
        device_id: {
            "suite": str(keys.suite),
            "signing_public": _b64(keys.signing_public),
            "kem_public": _b64(keys.kem_public),
        }
        for device_id, keys in devices.items()
    }

    secrets = {
        device_id: {
            "suite": str(keys.suite),
            "signing_private": _b64(keys.signing_private),
            "kem_private": _b64(keys.kem_private),
        }
        for device_id, keys in devices.items()
    }
    blob = base64.b64decode(
        _browser({"op": "seal", "passphrase": PASSPHRASE, "user_id": USER, "devices": secrets})["blob"]
    )
    assert open_key_backup(PASSPHRASE, USER, blob) == devices
    # The browser's blob names its Argon2id cost: RFC 9106's second recommended option.
    assert {key: json.loads(blob)[key] for key in ("kdf", "m", "t", "p")} == {
        "kdf": "argon2id",
        "m": 65536,
        "t": 3,
        "p": 4,
    }


def test_a_wrong_passphrase_or_another_account_does_not_open_a_backup():
    cheap = Argon2Cost(memory_kib=19456, iterations=1, lanes=1)
    blob = seal_key_backup(PASSPHRASE, USER, {"d": generate_device_keys(Suite.XWING)}, cheap)
    for passphrase, user in ((PASSPHRASE + "!", USER), (PASSPHRASE, "another-account")):
        with pytest.raises(E2EEError) as refused:
            open_key_backup(passphrase, user, blob)
        assert refused.value.code == "wrong_passphrase"
    assert _browser({"op": "open", "passphrase": "not it", "user_id": USER, "blob": _b64(blob)}) == {
        "error": "wrong_passphrase"
    }


def test_a_backup_with_an_out_of_bounds_cost_is_refused_before_hashing():
    envelope = json.loads(seal_key_backup(PASSPHRASE, USER, {}, Argon2Cost(19456, 1, 1)))
    for change in ({"m": 1024}, {"t": 1000}, {"p": 64}, {"kdf": "pbkdf2"}):
        with pytest.raises(E2EEError) as refused:
            open_key_backup(PASSPHRASE, USER, json.dumps({**envelope, **change}).encode())
        assert refused.value.code == "invalid_backup"

"""Trust in the web client (docs/e2ee.md section 18, docs/web-client.md): the safety number the browser shows
is the reference client's, digit for digit; a colleague marked verified whose devices change stops the
sealing, with both numbers and a way to compare again; a new browser of a user catches up on the cases
sealed before it existed; a case is re-shared with a colleague picked among those allowed, in Chromium."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid

import pytest

from app.crypto.directory import DeviceKeysOnRecord, safety_number
from app.crypto.e2ee import Suite
from app.crypto.e2ee_keys import generate_device_keys
from tests.test_web_e2e import WEB, _require_browser_tools

pytestmark = pytest.mark.slow


def _random_devices(count: int, user_id: str) -> list[DeviceKeysOnRecord]:
    suites = [Suite.X25519, Suite.XWING]
    devices = []
    for index in range(count):
        keys = generate_device_keys(suites[index % 2])
        devices.append(
            DeviceKeysOnRecord(
                device_id=str(uuid.uuid4()),
                user_id=user_id,
                suite=str(keys.suite),
                signing_public_key=keys.signing_public,
                kem_public_key=keys.kem_public,
            )
        )
    return devices


def _as_served(device: DeviceKeysOnRecord) -> dict[str, str]:
    return {
        "device_id": device.device_id,
        "user_id": device.user_id,
        "suite": device.suite,
        "signing_public_key": base64.b64encode(device.signing_public_key).decode(),
        "kem_public_key": base64.b64encode(device.kem_public_key).decode(),
    }


def test_the_browser_computes_the_reference_clients_safety_numbers():
    """Vectors made here by app/crypto/directory.py, computed again by web/src/safety.js under Node."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("the web client's tests need Node.js (apt-get install nodejs)")
    users = []
    for count in (0, 1, 2, 5):
        user_id = str(uuid.uuid4())
        users.append((user_id, _random_devices(count, user_id)))
    # The same devices served in another order, and one device fewer: the order never matters, a change does.
    user_id, devices = users[-1]
    users += [(user_id, list(reversed(devices))), (user_id, devices[:-1])]
    request = [{"user_id": uid, "devices": [_as_served(d) for d in listed]} for uid, listed in users]
    result = subprocess.run(
        [node, "tests/safety-number.mjs"], cwd=WEB, input=json.dumps(request), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    browser = json.loads(result.stdout)
    expected = [safety_number(uid, listed) for uid, listed in users]
    assert [(n["digits"], n["qrPayload"]) for n in browser] == [(n.digits, n.qr_payload) for n in expected]
    assert browser[-3]["digits"] == browser[-2]["digits"] != browser[-1]["digits"]
    assert all(len(n["digits"].replace(" ", "")) == 30 for n in browser)

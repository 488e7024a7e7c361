"""Trust in the web client (docs/e2ee.md section 18, docs/web-client.md): the safety number the browser shows
is the reference client's, digit for digit; a colleague marked verified whose devices change stops the
sealing, with both numbers and a way to compare again; a new browser of a user catches up on the cases
sealed before it existed; a case is re-shared with a colleague picked among those allowed, in Chromium."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from app.client.clinician import Attachment
from app.crypto.directory import DeviceKeysOnRecord, safety_number
from app.crypto.e2ee import Suite
from app.crypto.e2ee_keys import generate_device_keys
from app.models.users import Role
from tests.live_server import live_server
from tests.test_web_e2e import (  # noqa: F401 (web_bundle: the fixture)
    STEPS_SUITE,
    WEB,
    _clinician,
    _png,
    _require_browser_tools,
    browser_steps,
    web_bundle,
)

pytestmark = pytest.mark.slow
# Three browser contexts' worth of screens, axe-core on four of them.
TRUST_SECONDS = 240
CAUGHT_UP = ".catch-up .result:not(:empty)"
REFUSED_CHANGED = '#notice[data-code="safety_number_changed"]'


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


def _screenshots() -> str | None:
    target = os.environ.get("CONFRERE_WEB_SCREENSHOTS")
    return str(Path(target).resolve()) if target else None


def _case_shown(case_id: str) -> str:
    return f'section.case[data-case-id="{case_id}"]'


@pytest.mark.usefixtures("web_bundle")
def test_trust_in_the_browser_catch_up_safety_numbers_and_reshare(settings, accounts, tmp_path):
    """A case sealed before the physician's second browser existed opens there after the first browser
    catches it up; a colleague marked verified whose devices then change is refused before anything is
    sealed for them, with both numbers, until compared again; the re-share then reaches all their devices."""
    node = _require_browser_tools()
    physician = accounts.create(Role.PHYSICIAN)
    specialist = accounts.create(Role.SPECIALIST, specialties=("dermatology",))
    colleague_account = accounts.create(Role.SPECIALIST, specialties=("dermatology",))
    question = (
        f"Annular plaque on the forearm for 6 weeks: tinea or granuloma annulare? ({uuid.uuid4().hex[:8]})"
    )
    photo = _png(120, 90, 11)

    with (
        live_server(settings, tmp_path / "server.log") as server,
        browser_steps(node, server.url, _screenshots(), seconds=TRUST_SECONDS) as browser,
    ):
        browser.enrol("physician", physician)
        # The physician's reference client asks: the case is sealed for their devices as they are now (the
        # first browser's, its own) and the specialist's, not for a browser registered later.
        doctor = _clinician(server.url, physician, STEPS_SUITE)
        expert = _clinician(server.url, specialist, STEPS_SUITE)
        case_id = doctor.create_case(
            specialty="dermatology",
            question=question,
            attachments=[Attachment(name="plaque.png", media_type="image/png", data=photo)],
        )

        # -- A second browser of the physician holds no key for it, and says what to do.
        browser.enrol("laptop", physician)
        browser("laptop", "open", hash=f"#/case/{case_id}", ready=".banner.no-keys")
        assert (
            browser("laptop", "text", selector='.content > .verify.refused[data-code="no_envelope"]')
            is not None
        )
        assert "Give my other devices access" in browser("laptop", "text", selector=".banner.no-keys")

        # -- The first browser catches it up, by keyboard: the case and its photo, for the new browser only
        # (the reference client's device holds its envelopes already).
        browser("physician", "open", hash="#/security", ready="form.catch-up")
        assert browser("physician", "audit", width=390) == []
        browser(
            "physician", "keyboard", name="Give my other devices access", then=".catch-up .result:not(:empty)"
        )
        assert browser("physician", "text", selector=CAUGHT_UP) == "Done: 2 key(s) added for 1 case(s)."
        browser("physician", "screenshot", name="security-catch-up")
        browser("laptop", "open", hash=f"#/case/{case_id}", ready=".content .question")
        assert browser("laptop", "text", selector=".content .question") == question
        assert "shared with this device" in browser("laptop", "text", selector=".content > .verify.ok span")
        assert browser("laptop", "text", selector=".photo figcaption") == "plaque.png"
        # Idempotent: a second run adds nothing.
        browser("physician", "open", hash="#/security", ready="form.catch-up")
        browser(
            "physician", "press", button="Give my other devices access", then=".catch-up .result:not(:empty)"
        )
        assert browser("physician", "text", selector=CAUGHT_UP).startswith("Nothing to add")

        # -- The colleague picker lists those the server lets receive the case: not the physician.
        colleague = _clinician(server.url, colleague_account, STEPS_SUITE)
        colleague_name = colleague.api.me()["display_name"]
        expert_name = expert.api.me()["display_name"]
        physician_name = doctor.api.me()["display_name"]
        browser("physician", "open", hash=f"#/case/{case_id}", ready="form.share")
        options = browser("physician", "options", label="Colleague")
        assert {colleague_name, expert_name} <= set(options)
        assert physician_name not in options
        assert browser("physician", "audit", width=390) == []
        browser("physician", "screenshot", name="case-share")

        # -- The colleague's safety number: the reference client's digits; marked verified.
        number = doctor.safety_number(colleague.user_id)
        assert number == colleague.safety_number(colleague.user_id)
        browser("physician", "open", hash=f"#/safety/{colleague.user_id}", ready=".safety-digits")
        assert browser("physician", "text", selector=".safety-digits") == number.digits
        assert browser("physician", "text", selector=".unverified") is not None
        assert browser("physician", "audit", width=390) == []
        browser("physician", "screenshot", name="safety-number")
        browser("physician", "press", button="The numbers match: mark as verified", then="p.verified")

        # -- A new device of the colleague: the re-share is refused before sealing, with both numbers.
        phone = _clinician(server.url, colleague_account, "x25519")
        changed = doctor.safety_number(colleague.user_id)
        assert changed.digits != number.digits
        browser("physician", "open", hash=f"#/case/{case_id}", ready="form.share")
        browser("physician", "choose", label="Colleague", value=colleague.user_id)
        browser(
            "physician", "press", button="Share the case", then='#notice[data-code="safety_number_changed"]'
        )
        refusal = browser("physician", "text", selector="#notice")
        assert number.digits in refusal and changed.digits in refusal
        assert colleague.api.case(case_id)["sealed"]["envelopes"] == []
        browser("physician", "follow", link="Compare the safety numbers again", then=".banner.changed")
        assert browser("physician", "text", selector=".banner.changed .pinned") == number.digits
        assert browser("physician", "text", selector=".banner.changed .current") == changed.digits
        assert browser("physician", "audit") == []
        browser("physician", "screenshot", name="safety-number-changed")
        browser("physician", "language", code="fr")
        browser("physician", "wait", selector='.banner.changed:has-text("ont changé")')
        assert "ont changé" in browser("physician", "text", selector=".banner.changed")
        assert browser("physician", "audit") == []
        browser("physician", "screenshot", name="safety-number-changed-fr")
        browser("physician", "language", code="en")
        browser("physician", "wait", selector='.banner.changed:has-text("since you verified")')
        browser("physician", "press", button="The new numbers match: verify again", then="p.verified")

        # -- Compared again: the share reaches both of the colleague's devices.
        browser("physician", "open", hash=f"#/case/{case_id}", ready="form.share")
        browser("physician", "choose", label="Colleague", value=colleague.user_id)
        browser("physician", "press", button="Share the case", then=".share .result:not(:empty)")
        shared = browser("physician", "text", selector=".share .result")
        assert shared == f"Shared with {colleague_name}: 4 key(s) added, 0 already held."
        for device in (colleague, phone):
            opened = device.open_case(case_id)
            assert opened.content is not None and opened.content.question == question
            assert [attachment.data for attachment in opened.attachments] == [photo]
        # A specialist of the case's specialty sees it in the queue anyway: keys, but no lasting part in it.
        browser("physician", "open", hash=f"#/case/{case_id}", ready="form.share")
        assert f"{colleague_name} (verified)" in browser("physician", "options", label="Colleague")
        assert browser("physician", "text", selector=".people").startswith("You · requester")

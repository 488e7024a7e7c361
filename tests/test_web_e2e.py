"""The web client (web/) in Debian's Chromium against a real server, interoperating with the reference client.

web/tests/e2e.mjs drives a physician and a specialist through every screen with Playwright; this test plays
a Python physician and specialist (app.client.clinician.Clinician) in between, in both suites, so that each
side reads and verifies what the other sealed: cases, photos, messages, requests, responses and reports.
The case moves that end or hand back a case (withdraw, decline) are driven one step at a time from here.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import struct
import subprocess
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.client.api import ConfrereApi
from app.client.clinician import Attachment, Clinician
from app.crypto import totp
from app.models.users import Role
from tests.conftest import PASSWORD
from tests.live_server import ROOT, live_server

pytestmark = pytest.mark.slow

WEB = ROOT / "web"
CHROMIUM = Path("/usr/bin/chromium")
# The whole browser run, both users and every screen; each step also has Playwright's own timeouts.
RUN_SECONDS = 60
EVENT_PREFIX = "@@e2e "


def _require_browser_tools() -> str:
    node = shutil.which("node")
    missing = [name for name, found in ((str(CHROMIUM), CHROMIUM.exists()), ("node", node)) if not found]
    if missing:
        message = f"web client tests need {' and '.join(missing)} (apt-get install chromium nodejs)"
        # CI installs both (.ci/run); there a missing tool is a broken setup, not a reason to skip.
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return node


def _run_in_web(*command: str) -> None:
    result = subprocess.run(command, cwd=WEB, capture_output=True, text=True)
    output = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output}"


def _newest_source() -> float:
    sources = [
        WEB / "build.mjs",
        WEB / "package-lock.json",
        *(WEB / "src").rglob("*"),
        *(WEB / "public").rglob("*"),
    ]
    return max(path.stat().st_mtime for path in sources)


@pytest.fixture(scope="session")
def web_bundle() -> Path:
    """web/dist as `make web` builds it (when missing or stale), before any app of the session starts."""
    node = _require_browser_tools()
    if not (WEB / "node_modules").is_dir():
        _run_in_web("npm", "ci", "--no-audit", "--no-fund")
    built = WEB / "dist" / "app.js"
    if not built.exists() or built.stat().st_mtime < _newest_source():
        _run_in_web(node, "build.mjs")
    return WEB / "dist"


def test_the_web_client_is_served_with_its_own_content_security_policy(web_bundle, client):
    page = client.get("/app/")
    assert page.status_code == 200
    assert '<script type="module" src="app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    assert client.get("/app/app.js").headers["content-type"].startswith("text/javascript")
    # The API keeps its strict policy.
    assert client.get("/healthz").headers["content-security-policy"].startswith("default-src 'none'")


def _png(width: int, height: int, seed: int) -> bytes:
    """A small real PNG (a reddish round lesion on skin tone), so that the browser must decode it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            inside = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 3) ** 2
            row += bytes((170, 60 + seed % 40, 60)) if inside else bytes((235, 200, 175 - seed % 30))
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


class BrowserRun:
    """web/tests/e2e.mjs as a child process speaking one JSON line at a time in each direction."""

    def __init__(self, process: subprocess.Popen, seconds: float):
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self.deadline = time.monotonic() + seconds
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, event: str) -> dict:
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, self.deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"the browser run did not reach {event!r} in time:\n{self.output()}")
            if line is None:
                pytest.fail(f"the browser run ended before {event!r}:\n{self.output()}")
            if not line.startswith(EVENT_PREFIX):
                self.log.append(line)
                continue
            message = json.loads(line.removeprefix(EVENT_PREFIX))
            assert message["event"] == event, f"expected {event!r}, got {message}\n{self.output()}"
            return message

    def reply(self, **data: object) -> None:
        self.process.stdin.write(json.dumps(data) + "\n")
        self.process.stdin.flush()

    def output(self) -> str:
        return "\n".join(self.log[-60:])


@contextmanager
def browser_run(
    node: str, config: dict, script: tuple[str, ...] = ("tests/e2e.mjs",), seconds: float = RUN_SECONDS
) -> Iterator[BrowserRun]:
    process = subprocess.Popen(
        [node, *script],
        cwd=WEB,
        env={**os.environ, "CONFRERE_E2E": json.dumps(config)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = BrowserRun(process, seconds)
    try:
        yield run
        process.stdin.close()
        returncode = process.wait(timeout=max(1, run.deadline - time.monotonic()))
        run.log += iter(run.lines.get, None)  # the rest of the output, for the message below
        assert returncode == 0, f"the browser run failed:\n{run.output()}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _clinician(server_url: str, account, suite: str) -> Clinician:
    api = ConfrereApi(server_url)
    api.login(account.email, PASSWORD)
    return Clinician.enrol_device(api, suite, "reference client")


def _thread(clinician: Clinician, case_id: str) -> list[tuple[str, str]]:
    return [(message.kind, message.text) for message in clinician.read_messages(case_id)]


def test_web_crypto_matches_the_known_answer_vectors(web_bundle):
    _run_in_web(_require_browser_tools(), "--test", "tests/kat.test.mjs")


@pytest.mark.parametrize("suite", ["x25519", "xwing"])
def test_web_client_and_reference_client_read_each_other(web_bundle, settings, accounts, tmp_path, suite):
    node = _require_browser_tools()
    # The browser physician has TOTP, so the login screen's code field is exercised too.
    browser_physician = accounts.create(Role.PHYSICIAN, with_totp=True)
    browser_specialist = accounts.create(Role.SPECIALIST, specialties=("dermatology",))
    python_physician = accounts.create(Role.PHYSICIAN)
    python_specialist = accounts.create(Role.SPECIALIST, specialties=("dermatology",))
    marker = uuid.uuid4().hex[:8]
    texts = {
        name: f"{text} (ref. {marker})"
        for name, text in {
            # The Python physician's case, answered in the browser.
            "python_question": "34-year-old woman, itchy annular plaques on both forearms for 6 weeks. "
            "Tinea or granuloma annulare?",
            "browser_message": "Thank you, looking at it now.",
            "browser_info_request": "Has a skin scraping for mycology been done?",
            "python_info_response": "Scraping sent last week: négatif for dermatophytes.",
            "browser_report": "Likely granuloma annulare: no treatment needed; review if it spreads.",
            # The browser physician's case, answered by the Python specialist.
            "browser_question": "58-year-old man, pigmented lesion on the left shoulder, grown over "
            "3 months, irregular border. Naevus or melanoma? Excision needed?",
            "python_info_request": "Is there a dermoscopy image, and any family history of melanoma?",
            "browser_info_response": "No dermoscopy available; his father had a melanoma at 60.",
            "python_report": "Asymmetric lesion with colour variegation: excise (exérèse) with 2 mm margins "
            "for histology, then follow up in dermatology.",
        }.items()
    }
    browser_photo, python_photo = _png(160, 120, 7), _png(120, 90, 23)
    (tmp_path / "lesion.png").write_bytes(browser_photo)
    # Screenshots for docs/ only when asked (`make web-screenshots`), so that test runs leave docs/ alone.
    screenshots = os.environ.get("CONFRERE_WEB_SCREENSHOTS") if suite == "xwing" else None

    with live_server(settings, tmp_path / "server.log") as server:
        doctor = _clinician(server.url, python_physician, suite)
        expert = _clinician(server.url, python_specialist, suite)
        config = {
            "url": server.url,
            "suite": suite,
            "specialty": "dermatology",
            "physician": {
                "email": browser_physician.email,
                "password": PASSWORD,
                "totp": totp.code_at(browser_physician.totp_secret, time.time()),
            },
            "specialist": {"email": browser_specialist.email, "password": PASSWORD},
            "texts": texts,
            "photo": str(tmp_path / "lesion.png"),
            "screenshots": str(Path(screenshots).resolve()) if screenshots else None,
        }
        with browser_run(node, config) as run:
            run.expect("registered")
            python_case = doctor.create_case(
                specialty="dermatology",
                question=texts["python_question"],
                priority="urgent",
                attachments=[Attachment(name="rash.png", media_type="image/png", data=python_photo)],
            )
            run.reply(case_id=python_case)

            # Browser to Python: the case and its photo, sealed in Chromium, verified and opened here.
            browser_case = run.expect("created")["case_id"]
            opened = expert.open_case(browser_case)
            assert opened.content.question == texts["browser_question"]
            assert [(a.name, a.media_type, a.data) for a in opened.attachments] == [
                ("lesion.png", "image/png", browser_photo)
            ]
            run.reply()

            run.expect("info_requested")
            assert _thread(doctor, python_case) == [
                ("message", texts["browser_message"]),
                ("info_request", texts["browser_info_request"]),
            ]
            doctor.post(python_case, "info_response", texts["python_info_response"])
            doctor.transition(python_case, "provide_info")
            expert.transition(browser_case, "claim")
            expert.post(browser_case, "info_request", texts["python_info_request"])
            expert.transition(browser_case, "request_info")
            run.reply()

            run.expect("answered")
            assert _thread(doctor, python_case)[-1] == ("report", texts["browser_report"])
            doctor.transition(python_case, "close")
            assert _thread(expert, browser_case)[-1] == ("info_response", texts["browser_info_response"])
            report_id = expert.post(browser_case, "report", texts["python_report"])
            expert.transition(browser_case, "answer", report_message_id=report_id)
            run.reply()

            run.expect("done")
            run.reply()
        assert doctor.api.case(python_case)["status"] == "closed"
        assert expert.api.case(browser_case)["status"] == "closed"


STEPS_SUITE = "xwing"


class BrowserSteps:
    """The steps of web/tests/steps.mjs, as calls: `browser("physician", "press", button=..., then=...)`."""

    def __init__(self, run: BrowserRun):
        self.run = run
        run.expect("ready")

    def __call__(self, who: str, step: str, **args: object) -> object:
        self.run.reply(who=who, step=step, **args)
        return self.run.expect("ok")["value"]

    def enrol(self, who: str, account) -> None:
        self(who, "enrol", email=account.email, password=PASSWORD, suite=STEPS_SUITE)


@contextmanager
def browser_steps(
    node: str, server_url: str, screenshots: str | None = None, seconds: float = RUN_SECONDS
) -> Iterator[BrowserSteps]:
    config = {"url": server_url, "screenshots": screenshots}
    with browser_run(node, config, ("tests/steps.mjs",), seconds=seconds) as run:
        yield BrowserSteps(run)


def _case_shown(case_id: str, status: str) -> str:
    return f'section.case[data-case-id="{case_id}"][data-status="{status}"]'


def _listed(case_id: str) -> str:
    return f'tr[data-case-id="{case_id}"]'


def test_a_physician_withdraws_a_case_in_the_browser(web_bundle, settings, accounts, tmp_path):
    node = _require_browser_tools()
    physician = accounts.create(Role.PHYSICIAN)
    specialist = accounts.create(Role.SPECIALIST, specialties=("dermatology",))
    question = "Pruritic papules on the shins for a month: lichen planus?"

    with live_server(settings, tmp_path / "server.log") as server, browser_steps(node, server.url) as browser:
        browser.enrol("physician", physician)
        # The physician's reference client asks; it seals the case for all their devices, this browser's too.
        doctor = _clinician(server.url, physician, STEPS_SUITE)
        expert = _clinician(server.url, specialist, STEPS_SUITE)
        case_id = doctor.create_case(specialty="dermatology", question=question)
        assert case_id in [item["id"] for item in expert.api.queue()]

        browser("physician", "open", hash=f"#/case/{case_id}", ready=_case_shown(case_id, "open"))
        assert browser("physician", "text", selector=".content .question") == question
        buttons = browser("physician", "buttons")
        assert "Withdraw case" in buttons
        assert "Claim this case" not in buttons
        assert "Decline case" not in buttons

        browser("physician", "press", button="Withdraw case", then=_case_shown(case_id, "withdrawn"))
        assert browser("physician", "text", selector="h1 .chip") == "Withdrawn"
        assert browser("physician", "buttons") == []
        browser("physician", "open", hash="#/cases", ready=_listed(case_id))
        assert browser("physician", "text", selector=f'{_listed(case_id)} [class*="status-"]') == "Withdrawn"

        assert doctor.api.case(case_id)["status"] == "withdrawn"
        assert case_id not in [item["id"] for item in expert.api.queue()]


def test_a_specialist_declines_a_claimed_case_in_the_browser(web_bundle, settings, accounts, tmp_path):
    node = _require_browser_tools()
    physician = accounts.create(Role.PHYSICIAN)
    specialist = accounts.create(Role.SPECIALIST, specialties=("dermatology",))

    with live_server(settings, tmp_path / "server.log") as server, browser_steps(node, server.url) as browser:
        browser.enrol("specialist", specialist)
        doctor = _clinician(server.url, physician, STEPS_SUITE)
        question = "Nail dystrophy of several fingers, no skin lesions: psoriasis or onychomycosis?"
        case_id = doctor.create_case(specialty="dermatology", question=question)
        open_case, claimed_case = _case_shown(case_id, "open"), _case_shown(case_id, "claimed")

        browser("specialist", "open", hash="#/queue", ready=_listed(case_id))
        browser("specialist", "open", hash=f"#/case/{case_id}", ready=open_case)
        assert browser("specialist", "text", selector=".content .question") == question
        # Waiting in the queue, offered to no one: it can be claimed, not declined.
        assert browser("specialist", "buttons") == ["Claim this case"]
        browser("specialist", "press", button="Claim this case", then=claimed_case)
        buttons = browser("specialist", "buttons")
        assert "Decline case" in buttons
        assert "Withdraw case" not in buttons

        # Declined with a reason: the specialist is taken to the queue, where the case is back.
        browser("specialist", "choose", label="Reason for declining", value="outside_expertise")
        browser("specialist", "press", button="Decline case", then=_listed(case_id))
        assert browser("specialist", "text", selector="h1") == "Specialty queue"
        case = doctor.api.case(case_id)
        assert case["status"] == "open"
        assert case["assignee_id"] is None
        assert case["decline_reason"] == "outside_expertise"

        # Claimed again, and withdrawn by the physician meanwhile: the server refuses the decline, and the
        # page says why and shows the case as it now is.
        browser("specialist", "open", hash=f"#/case/{case_id}", ready=open_case)
        browser("specialist", "press", button="Claim this case", then=claimed_case)
        doctor.transition(case_id, "withdraw")
        browser("specialist", "choose", label="Reason for declining", value="unavailable")
        browser("specialist", "press", button="Decline case", then='#notice[data-code="illegal_transition"]')
        browser("specialist", "wait", selector=_case_shown(case_id, "withdrawn"))
        assert browser("specialist", "buttons") == []
        assert doctor.api.case(case_id)["status"] == "withdrawn"

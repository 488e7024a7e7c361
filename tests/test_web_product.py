"""The web client as a product (issue 17), in Debian's Chromium against a real server: web/tests/product.mjs
registers a physician, who is verified here, then goes through every screen with axe-core watching; this
test plays the Python specialist who answers, and checks what the browser sealed and backed up."""

from __future__ import annotations

import base64
import os
import random
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import update

from app.client.api import ConfrereApi
from app.client.clinician import Clinician
from app.client.content import Patient
from app.crypto import totp
from app.models.base import utcnow
from app.models.users import Role, User, UserStatus
from app.runtime.database import transaction
from app.schemas.professional_ids import luhn_valid
from tests.live_server import live_server
from tests.test_web_e2e import (  # noqa: F401 (web_bundle: the fixture)
    _clinician,
    _png,
    _require_browser_tools,
    _run_in_web,
    browser_run,
    web_bundle,
)

pytestmark = pytest.mark.slow
# Every screen twice over (axe-core on each, Argon2id twice): longer than test_web_e2e.py's runs.
TOUR_SECONDS = 180


def _rpps() -> str:
    stem = "1" + "".join(random.choices("0123456789", k=9))
    return next(stem + digit for digit in "0123456789" if luhn_valid(stem + digit))


@pytest.mark.usefixtures("web_bundle")
def test_web_catalogue_has_both_languages_and_checks_ids_like_the_server():
    _run_in_web(_require_browser_tools(), "--test", "tests/catalogue.test.mjs")


@pytest.mark.usefixtures("web_bundle")
def test_api_docs_are_served_from_this_server_only(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assets = ["/app/api-docs/swagger-ui-bundle.js", "/app/api-docs/swagger-ui.css", "/app/api-docs/init.js"]
    assert all(asset in page.text for asset in assets)
    assert "http" not in page.text.replace("http://www.w3.org", "")
    policy = page.headers["content-security-policy"]
    assert policy.startswith("default-src 'self';")
    assert "script-src" not in policy  # scripts from this origin only, none inline
    assert all(client.get(asset).status_code == 200 for asset in assets)
    assert client.get("/redoc").status_code == 404


@pytest.mark.usefixtures("web_bundle")
def test_a_physician_goes_from_registration_to_a_printed_report(settings, accounts, engine, tmp_path):
    node = _require_browser_tools()
    specialist_account = accounts.create(Role.SPECIALIST, specialties=("dermatology",))
    marker = uuid.uuid4().hex[:8]
    physician = {
        "name": f"Dr Claire Martin {marker}",
        "email": f"claire.martin.{marker}@example.org",
        "password": "a long enough password for the test",
        "passphrase": "blue harbour lantern seventeen",
        "rpps": _rpps(),
    }
    question = (
        f"Pigmented lesion on the left shoulder, grown over 3 months (ref. {marker})\nIrregular border."
    )
    report = f"Excise with 2 mm margins for histology (ref. {marker})."
    (tmp_path / "lesion.png").write_bytes(_png(160, 120, 7))

    with live_server(settings, tmp_path / "server.log") as server:
        expert = _clinician(server.url, specialist_account, "xwing")
        specialist_name = expert.api.me()["display_name"]
        config = {
            "url": server.url,
            "physician": physician,
            "texts": {"question": question, "report": report, "specialist_name": specialist_name},
            "photo": str(tmp_path / "lesion.png"),
            "screenshots": _screenshots(),
        }
        with browser_run(node, config, ("tests/product.mjs",), seconds=TOUR_SECONDS) as run:
            run.expect("registered")
            # The pending account is what an administrator verifies (the admin routes have their own tests).
            with transaction(engine) as session:
                session.execute(
                    update(User)
                    .where(User.email == physician["email"])
                    .values(status=UserStatus.ACTIVE, verified_at=utcnow())
                )
            run.reply()

            case_id = run.expect("created")["case_id"]
            opened = expert.open_case(case_id)
            assert opened.content is not None
            assert opened.content.question == question
            assert opened.content.patient == Patient(age_years=58, sex="male")
            assert [a.name for a in opened.attachments] == ["lesion.png"]
            expert.transition(case_id, "claim")
            expert.transition(case_id, "answer", report_message_id=expert.post(case_id, "report", report))
            run.reply()

            # The key the page shows for manual entry: base32, as authenticator apps take it.
            secret = base64.b32decode(run.expect("totp")["secret"])
            run.reply(code=totp.code_at(secret, time.time()))
            run.expect("done")
            run.reply()

        # The browser's key backup opens in the reference client, with the device the browser registered.
        api = ConfrereApi(server.url)
        api.login(physician["email"], physician["password"], totp.code_at(secret, time.time() + 30))
        restored = Clinician.restore(api, physician["passphrase"])
        restored_case = restored.open_case(case_id).content
        assert restored_case is not None and restored_case.question == question


def _screenshots() -> str | None:
    """docs/screenshots when `make web-screenshots` asks, as for test_web_e2e.py."""
    target = os.environ.get("CONFRERE_WEB_SCREENSHOTS")
    return str(Path(target).resolve()) if target else None

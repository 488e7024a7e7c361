"""The registration screen for every profession (web/src/views/register.js): a nurse registers in Chromium
with an ADELI number checked as it is typed, sees neither case roles nor specialties, is verified by an
administrator through the API, and lands on the peer circles."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import select
from sqlmodel import col

from app.client.api import ConfrereApi
from app.models.users import Role, User
from app.runtime.database import transaction
from tests.live_server import live_server
from tests.test_web_circles import Screens, circle_steps
from tests.test_web_e2e import _require_browser_tools, web_bundle  # noqa: F401 (web_bundle: the fixture)

pytestmark = pytest.mark.slow

VALID_ADELI = "123456782"
# The same number with its check digit off by one: the Luhn key refuses it.
WRONG_KEY_ADELI = "123456783"


@pytest.mark.usefixtures("web_bundle")
def test_a_nurse_registers_with_an_adeli_number_and_lands_on_circles(settings, accounts, engine, tmp_path):
    node = _require_browser_tools()
    admin = accounts.create(Role.ADMIN)
    marker = uuid.uuid4().hex[:6]
    email = f"camille.roux.{marker}@example.org"
    password = "a long enough password for the test"

    with (
        live_server(settings, tmp_path / "server.log") as server,
        circle_steps(node, server.url, os.environ.get("CONFRERE_WEB_SCREENSHOTS")) as b,
    ):
        screens = Screens(b)
        b("nurse", "open", hash="#/register", ready="form select[name=profession]")
        # The professions come from the server, named in the page's language.
        b("nurse", "choose", label="Language", value="fr", within="header")
        b("nurse", "wait", selector="h1:has-text('Créer votre compte')")
        assert "Infirmier·ère" in b("nurse", "texts", selector="select[name=profession] option")
        b("nurse", "choose", label="Langue", value="en", within="header")
        b("nurse", "wait", selector="h1:has-text('Create your account')")
        assert b("nurse", "texts", selector="select[name=profession] option") == [
            "Physician",
            "Nurse",
            "Psychologist",
            "Midwife",
            "Pharmacist",
            "Physiotherapist",
        ]
        # A physician chooses a case role; a midwife registers with RPPS or NPI only.
        assert b("nurse", "count", selector="fieldset.roles:visible") == 1
        b("nurse", "choose", label="Your profession", value="midwife")
        assert b("nurse", "texts", selector=".id-kinds label") == [
            "RPPS (France, 11 digits)",
            "NPI (United States, 10 digits)",
        ]

        b("nurse", "fill", label="Name as colleagues will see it", value=f"Camille Roux {marker}")
        b("nurse", "fill", label="Professional e-mail", value=email)
        b("nurse", "fill", label="Password", value=password)
        b("nurse", "choose", label="Your profession", value="nurse")
        assert b("nurse", "count", selector="fieldset.roles:visible") == 0
        assert b("nurse", "count", selector="fieldset.specialties:visible") == 0
        assert b("nurse", "texts", selector=".id-kinds label") == [
            "RPPS (France, 11 digits)",
            "ADELI (France, 9 digits)",
            "NPI (United States, 10 digits)",
        ]
        b("nurse", "check", label="ADELI")
        b("nurse", "fill", label="Number", value=WRONG_KEY_ADELI)
        b("nurse", "wait", selector="#id-check.invalid")
        b("nurse", "fill", label="Number", value=VALID_ADELI)
        b("nurse", "wait", selector="#id-check.valid")
        assert b("nurse", "phone") == 0
        screens.check("nurse", "register-nurse")
        b("nurse", "desktop")
        b("nurse", "press", button="Register", then="section[data-status=pending]")
        assert f"ADELI number {VALID_ADELI}" in b("nurse", "text", selector="main")

        with transaction(engine) as session:
            nurse = session.execute(select(User).where(col(User.email) == email)).scalar_one()
            assert (nurse.profession, nurse.professional_id_kind) == ("nurse", "adeli")
            assert nurse.status == "pending"
            nurse_id = nurse.id
        # The administrator verifies the account through the API, as the admin console would.
        api = ConfrereApi(server.url)
        api.login(admin.email, admin.password, admin.next_totp_code())
        assert api.json("POST", f"/v1/admin/users/{nurse_id}/verify")["status"] == "active"

        b("nurse", "enrol", email=email, password=password, suite="xwing", lands="Peer circles")
        screens.check("nurse")
        # A nurse has no case role: the menu has no case links.
        assert "My cases" not in b("nurse", "texts", selector="nav a")

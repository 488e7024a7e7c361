"""Circle grants in the browser (web/src/circles.js `grantOwnDevices`, e2ee.md section 20): a nurse's second
browser, registered after a post was sealed, cannot read it until her first browser gives her other devices
the circle's keys it holds; then it reads it, and asking again adds nothing."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import select
from sqlmodel import col

from app.models.circles import CircleEpochStatement, CircleEpochWrap
from app.models.devices import Device
from app.models.users import Profession
from app.runtime.database import transaction
from tests.conftest import PASSWORD
from tests.live_server import live_server
from tests.test_web_circles import Screens, _post_card, circle_steps
from tests.test_web_e2e import _require_browser_tools, web_bundle  # noqa: F401 (web_bundle: the fixture)

pytestmark = pytest.mark.slow

GRANT = "Give my other devices access"


@pytest.mark.usefixtures("web_bundle")
def test_a_members_second_browser_reads_an_earlier_epoch_after_the_grant(
    settings, accounts, engine, tmp_path
):
    node = _require_browser_tools()
    nurse = accounts.create(profession=Profession.NURSE)
    marker = uuid.uuid4().hex[:6]
    title, body = f"Before the laptop {marker}", "Sealed when only the first browser was registered."

    with (
        live_server(settings, tmp_path / "server.log") as server,
        circle_steps(node, server.url, os.environ.get("CONFRERE_WEB_SCREENSHOTS")) as b,
    ):
        screens = Screens(b)
        b("desk", "enrol", email=nurse.email, password=PASSWORD, suite="xwing")
        b("desk", "open", hash="#/circles/new", ready="form button[type=submit]")
        b("desk", "fill", label="Name", value=f"Nuits {marker}")
        b("desk", "press", button="Create the circle", then="section.circle")
        circle_id = b("desk", "attribute", selector="section.circle", name="data-circle-id")
        b("desk", "fill", label="Title", exact=True, value=title)
        b("desk", "fill", label="What you want to share or ask", value=body)
        b("desk", "press", button="Encrypt and post", then=_post_card(title))

        # The same nurse's second browser holds no key of epoch 1.
        b("laptop", "enrol", email=nurse.email, password=PASSWORD, suite="x25519")
        unreadable = f"{_post_card('(untitled)')} .verify.refused"
        b("laptop", "open", hash=f"#/circle/{circle_id}", ready=unreadable)
        assert b("laptop", "attribute", selector=unreadable, name="data-code") == "no_epoch_key"

        # The first browser grants the keys it holds; the directory proves the laptop is the nurse's.
        b("desk", "open", hash=f"#/circle/{circle_id}", ready=_post_card(title))
        b("desk", "press", button=GRANT, then=".grant-result[data-added]")
        assert b("desk", "attribute", selector=".grant-result", name="data-added") == "1"
        screens.check("desk", "circle-grant")
        with transaction(engine) as session:
            laptop = (
                session.execute(
                    select(Device.id)
                    .where(col(Device.user_id) == nurse.id)
                    .order_by(col(Device.created_at).desc())
                )
                .scalars()
                .first()
            )
            granted = (
                session.execute(
                    select(CircleEpochWrap.device_id)
                    .join(
                        CircleEpochStatement,
                        col(CircleEpochStatement.id) == col(CircleEpochWrap.statement_id),
                    )
                    .where(
                        col(CircleEpochStatement.circle_id) == uuid.UUID(circle_id),
                        col(CircleEpochStatement.kind) == "grant",
                    )
                )
                .scalars()
                .all()
            )
        assert granted == [laptop]

        b("laptop", "open", hash=f"#/circle/{circle_id}", ready=_post_card(title))
        assert b("laptop", "text", selector=f"{_post_card(title)} .post-body") == body
        assert b("laptop", "count", selector=".verify.refused") == 0

        # Every key is held now: a second grant adds nothing, and says so.
        b("desk", "open", hash=f"#/circle/{circle_id}", ready=_post_card(title))
        b("desk", "press", button=GRANT, then=".grant-result[data-added]")
        assert b("desk", "attribute", selector=".grant-result", name="data-added") == "0"

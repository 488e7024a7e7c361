"""The web client's peer circles (web/src/circle-format.js, circles.js and the circle screens).

The format is checked under Node against the reference implementation (app/crypto/circles.py), both ways:
what Python seals the browser code opens, and what the browser code seals Python opens and checks like the
server does. Then a nurse and a physician, each in their own Chromium profile, go through the circle screens
(web/tests/circle-steps.mjs) against a real server: posts, a pseudonymous reply, reactions, a report, a
co-development session whose composer follows the rounds, and a removal after which the removed browser
reads nothing.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from app.crypto import circles
from app.crypto.e2ee import Recipient
from app.crypto.e2ee_keys import DeviceKeys, Suite
from app.models.circles import CircleEpochWrap
from app.models.devices import Device
from app.models.users import Profession, Role, User
from app.runtime.database import transaction
from tests.conftest import PASSWORD, Account
from tests.live_server import live_server
from tests.test_web_e2e import (  # noqa: F401 (web_bundle: the fixture)
    WEB,
    BrowserSteps,
    _require_browser_tools,
    _run_in_web,
    browser_run,
    web_bundle,
)

pytestmark = pytest.mark.slow


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@pytest.mark.usefixtures("web_bundle")
def test_web_circle_format_keeps_its_rules_and_matches_the_known_answer_vectors():
    _run_in_web(_require_browser_tools(), "--test", "tests/circles.test.mjs", "tests/circles-kat.test.mjs")


@pytest.mark.usefixtures("web_bundle")
def test_web_and_reference_circle_formats_open_each_other():
    node = _require_browser_tools()
    circle_id, post_id, pseudonym_id = (str(uuid.uuid4()) for _ in range(3))
    devices = {
        suite: (
            str(uuid.uuid4()),
            DeviceKeys(suite=suite, signing_private=os.urandom(32), kem_private=os.urandom(32)),
        )
        for suite in (Suite.X25519, Suite.XWING)
    }
    author_id, author = devices[Suite.X25519]
    recipients = {device_id: Recipient(keys.suite, keys.kem_public) for device_id, keys in devices.values()}
    epoch = circles.new_epoch(circle_id, 1, author, author_id, recipients)
    header = circles.PostHeader(
        author=author_id,
        author_kind="device",
        circle_id=circle_id,
        epoch=1,
        kind="post",
        object_id=post_id,
        parent_id=post_id,
    )
    body = {
        "body": "Une famille refuse le transfert en soins palliatifs : comment faites-vous ?",
        "title": "Refus",
    }
    post = circles.seal_post(epoch.epoch_key, header, json.dumps(body).encode(), author)
    given = {
        "circle_id": circle_id,
        "pseudonym_id": pseudonym_id,
        "reply_text": "Même situation le mois dernier : une réunion avec l'équipe mobile a aidé.",
        "author_signing_public": _b64(author.signing_public),
        "devices": {
            str(keys.suite): {
                "device_id": device_id,
                "signing_seed": keys.signing_private.hex(),
                "kem_seed": keys.kem_private.hex(),
                "kem_public": keys.kem_public.hex(),
            }
            for device_id, keys in devices.values()
        },
        "epoch": {
            "statement": _b64(epoch.statement),
            "signature": _b64(epoch.signature),
            "wraps": {device_id: _b64(wrap) for device_id, wrap in epoch.wraps.items()},
        },
        "post": {
            "id": post_id,
            "header": _b64(post.header),
            "manifest": _b64(post.manifest),
            "signature": _b64(post.signature),
            "ciphertext": _b64(post.ciphertext),
        },
    }
    result = subprocess.run(
        [node, "tests/circles-interop.mjs"], cwd=WEB, input=json.dumps(given), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout)
    # Python to the browser: every suite's device opened the epoch and the post.
    assert answer["opened"] == {"x25519": body, "xwing": body}

    # The browser to Python: its epoch passes the server's upload check, and opens on every device.
    xwing_id, xwing = devices[Suite.XWING]
    statement = _unb64(answer["epoch"]["statement"])
    wraps = {device_id: _unb64(wrap) for device_id, wrap in answer["epoch"]["wraps"].items()}
    suites = {device_id: keys.suite for device_id, keys in devices.values()}
    signature = _unb64(answer["epoch"]["signature"])
    checked = circles.check_epoch_upload(statement, signature, wraps, xwing.signing_public, suites)
    assert (checked.kind, checked.epoch, set(checked.wraps)) == ("rotate", 2, set(suites))
    keys_opened = {
        circles.open_epoch(
            statement,
            signature,
            wraps[device_id],
            keys,
            device_id,
            xwing.signing_public,
            circle_id=circle_id,
            epoch=2,
        )
        for device_id, keys in devices.values()
    }
    assert len(keys_opened) == 1
    epoch_key = keys_opened.pop()

    def opened_reply(sealed: dict, signing_public: bytes) -> dict:
        header, manifest, signature, ciphertext = (
            _unb64(sealed[name]) for name in ("header", "manifest", "signature", "ciphertext")
        )
        served = circles.PostContext(
            circle_id=circle_id, object_id=sealed["id"], kind="reply", parent_id=post_id, epoch=2
        )
        return json.loads(
            circles.open_post(
                epoch_key, header, manifest, signature, ciphertext, signing_public, served=served
            )
        )

    reply = {"body": given["reply_text"]}
    assert opened_reply(answer["reply"], xwing.signing_public) == reply
    # The pseudonymous reply: signed by the pseudonym key, which the device's binding vouches for.
    pseudonymous = answer["pseudonymous"]
    public_key = _unb64(pseudonymous["public_key"])
    binding = circles.check_pseudonym_binding(
        _unb64(pseudonymous["binding"]),
        _unb64(pseudonymous["binding_signature"]),
        xwing.signing_public,
        public_key,
    )
    assert (binding.circle_id, binding.device_id, binding.pseudonym_id) == (circle_id, xwing_id, pseudonym_id)
    assert opened_reply(pseudonymous, public_key) == reply
    header_of_masked = circles.PostHeader.parse(_unb64(pseudonymous["header"]))
    assert (header_of_masked.author_kind, header_of_masked.author) == ("pseudonym", pseudonymous["key_id"])
    # A wrong author key is refused, as in the browser.
    with pytest.raises(circles.CircleError) as refused:
        opened_reply(pseudonymous, xwing.signing_public)
    assert refused.value.code == "invalid_signature"


# Both professionals, every circle screen, axe-core on each and two Argon2id-free device registrations.
CIRCLE_RUN_SECONDS = 240
NURSE_LANDS = "Peer circles"
HELPFUL_ON = '[data-reaction=helpful][aria-pressed="true"]'
PHYSICIAN_LANDS = "My cases"


def _professional(accounts, engine, profession: Profession) -> tuple[Account, str]:
    """A verified professional of `profession` (physicians with their case role) and their display name."""
    account = accounts.create(Role.PHYSICIAN) if profession is Profession.PHYSICIAN else accounts.create()
    with transaction(engine) as session:
        session.execute(update(User).where(col(User.id) == account.id).values(profession=profession.value))
        name = session.execute(select(User.display_name).where(col(User.id) == account.id)).scalar_one()
    return account, name


@contextmanager
def circle_steps(node: str, server_url: str, screenshots: str | None) -> Iterator[BrowserSteps]:
    config = {"url": server_url, "screenshots": str(Path(screenshots).resolve()) if screenshots else None}
    with browser_run(node, config, ("tests/circle-steps.mjs",), seconds=CIRCLE_RUN_SECONDS) as run:
        yield BrowserSteps(run)


def _post_card(title: str) -> str:
    return f'article.post:has(h3.post-title:has-text("{title}"))'


def _reply(text: str) -> str:
    return f'.replies article.post:has(p.post-body:has-text("{text}"))'


class Screens:
    """Each screen a test visits: axe-core finds no serious or critical violation, and under
    `make web-screenshots` it is photographed for docs/."""

    def __init__(self, browser: BrowserSteps):
        self.browser = browser

    def check(self, who: str, name: str | None = None) -> None:
        violations = self.browser(who, "axe")
        assert violations == [], f"axe-core on {who}'s screen {name or ''}: {violations}"
        if name:
            self.browser(who, "shot", name=name)


@pytest.mark.usefixtures("web_bundle")
def test_a_nurse_and_a_physician_share_a_circle_in_their_browsers(settings, accounts, engine, tmp_path):
    node = _require_browser_tools()
    nurse, nurse_name = _professional(accounts, engine, Profession.NURSE)
    physician, physician_name = _professional(accounts, engine, Profession.PHYSICIAN)
    marker = uuid.uuid4().hex[:6]
    circle_name = f"Soins palliatifs à domicile {marker}"
    question = (
        "A family refuses the transfer",
        "How do you talk with a family that refuses a transfer to palliative care?",
    )
    answer = "Same here last month: a meeting with the mobile palliative team helped."
    situation = (
        "Night shifts alone",
        "I am alone at night with 30 patients and a new protocol I do not master.",
    )
    after_removal = ("Rota for January", "Who can swap the 3rd of January?")
    screenshots = os.environ.get("CONFRERE_WEB_SCREENSHOTS")

    with (
        live_server(settings, tmp_path / "server.log") as server,
        circle_steps(node, server.url, screenshots) as b,
    ):
        screens = Screens(b)
        b("nurse", "enrol", email=nurse.email, password=PASSWORD, suite="xwing", lands=NURSE_LANDS)
        b(
            "physician",
            "enrol",
            email=physician.email,
            password=PASSWORD,
            suite="x25519",
            lands=PHYSICIAN_LANDS,
        )

        # The nurse creates an invitation circle and invites the physician by account id.
        b("nurse", "follow", link="Create a circle", then="form button[type=submit]")
        b("nurse", "fill", label="Name", value=circle_name)
        b("nurse", "fill", label="Description", value="Entraide entre infirmier·ères et médecins")
        b("nurse", "check", label="Only colleagues a moderator invites")
        screens.check("nurse", "circle-new")
        b("nurse", "press", button="Create the circle", then="section.circle")
        circle_id = b("nurse", "attribute", selector="section.circle", name="data-circle-id")
        assert b("nurse", "attribute", selector="section.circle", name="data-epoch") == "0"
        b("nurse", "follow", link="Members and moderation", then="section.circle-members")
        b("nurse", "fill", label="The colleague's account id", value=str(physician.id))
        b("nurse", "press", button="Invite", then=".confirmation")

        # The physician reaches the circles by keyboard, accepts, and posts first: the circle's first key is
        # made in this browser for both members' devices (X-Wing and X25519).
        b("physician", "keyboard", name="Circles", then=f'.joinable [data-circle-id="{circle_id}"]')
        screens.check("physician", "circles")
        b("physician", "press", button=f"Accept the invitation to {circle_name}", then="section.circle")
        b("physician", "fill", label="Title", exact=True, value=question[0])
        b("physician", "fill", label="What you want to share or ask", value=question[1])
        b("physician", "press", button="Encrypt and post", then=_post_card(question[0]))
        assert b("physician", "attribute", selector="section.circle", name="data-epoch") == "1"
        question_id = b("physician", "attribute", selector=_post_card(question[0]), name="data-post-id")

        # The nurse reads it, decrypted in her browser, with the physician's name.
        b("nurse", "open", hash=f"#/circle/{circle_id}", ready=_post_card(question[0]))
        assert b("nurse", "text", selector=f"{_post_card(question[0])} .post-body") == question[1]
        assert b("nurse", "text", selector=f"{_post_card(question[0])} .post-author") == physician_name
        screens.check("nurse")
        # A server that shows the physician's device-signed post as the nurse's own is caught.
        b(
            "nurse",
            "misattribute",
            circleId=circle_id,
            postId=question_id,
            userId=str(nurse.id),
            name=nurse_name,
        )
        b(
            "nurse",
            "open",
            hash=f"#/circle/{circle_id}",
            ready=f'[data-post-id="{question_id}"] .verify.refused',
        )
        refused = f'[data-post-id="{question_id}"] .verify.refused'
        assert b("nurse", "attribute", selector=refused, name="data-code") == "invalid_post_header"
        b("nurse", "honest")
        b("nurse", "open", hash=f"#/circle/{circle_id}", ready=_post_card(question[0]))
        # In French, the same page: every string is in the catalogue.
        b("nurse", "choose", label="Language", value="fr", within="header")
        b("nurse", "wait", selector='html[lang="fr"] section.circle h2:text-is("Messages")')
        screens.check("nurse", "circle-fr")
        b("nurse", "choose", label="Langue", value="en", within="header")
        b("nurse", "wait", selector='html[lang="en"] section.circle')

        # She answers under a pseudonym: the physician sees the pseudonym, never her name.
        b("nurse", "follow", link=f"Open the discussion: {question[0]}", then="section.circle-thread")
        b("nurse", "check", label="My pseudonym in this circle")
        b("nurse", "fill", label="Pseudonym (seen by the members instead of your name)", value="Colibri")
        b("nurse", "fill", label="Your reply", value=answer)
        b("nurse", "press", button="Encrypt and reply", then=_reply(answer))
        assert b("nurse", "text", selector=f"{_reply(answer)} .post-author") == "You, as Colibri"
        b("physician", "open", hash=f"#/circle/{circle_id}/post/{question_id}", ready=_reply(answer))
        assert b("physician", "text", selector=f"{_reply(answer)} .post-author") == "Colibri (pseudonym)"
        assert nurse_name not in b("physician", "text", selector=".replies")
        b(
            "physician",
            "press",
            button="Helpful (0)",
            within=_reply(answer),
            then=f"{_reply(answer)} {HELPFUL_ON}",
        )
        assert b("physician", "text", selector=f"{_reply(answer)} {HELPFUL_ON}") == "Helpful (1)"
        b("physician", "expand", summary="Report", within=_reply(answer))
        b("physician", "choose", label="Reason for reporting", value="off_topic", within=_reply(answer))
        b(
            "physician",
            "press",
            button="Report",
            within=_reply(answer),
            then=f"{_reply(answer)} [role=status]:not(:empty)",
        )
        screens.check("physician", "circle-thread")

        # A co-development session on the nurse's own post, facilitated by the physician.
        b("nurse", "open", hash=f"#/circle/{circle_id}", ready="form.composer")
        b("nurse", "fill", label="Title", exact=True, value=situation[0])
        b("nurse", "fill", label="What you want to share or ask", value=situation[1])
        b("nurse", "press", button="Encrypt and post", then=_post_card(situation[0]))
        b("nurse", "follow", link=f"Open the discussion: {situation[0]}", then="form.open-session")
        session_post = b("nurse", "attribute", selector="section.circle-thread", name="data-post-id")
        b("nurse", "choose", label="Facilitator", value=str(physician.id))
        b("nurse", "press", button="Open the session", then='.session[data-round="situation"]')
        b(
            "nurse",
            "fill",
            label="Your reply",
            value="The protocol changed on Monday; nobody trained the night team.",
        )
        b("nurse", "press", button="Encrypt and reply", then=".replies article.post")
        # The situation is the presenter's: the facilitator's composer is closed, with the round's rule.
        b("physician", "open", hash=f"#/circle/{circle_id}/post/{session_post}", ready=".session")
        assert b("physician", "enabled", selector="form.composer textarea") is False
        assert "only the presenter" in b("physician", "text", selector="form.composer .round-rule")
        b(
            "physician",
            "press",
            button="Next round: Clarifying questions",
            then='.session[data-round="clarifying_questions"]',
        )
        b(
            "physician",
            "fill",
            label="Your reply",
            value="Who wrote the protocol, and can they come at night?",
        )
        b("physician", "press", button="Encrypt and reply", then=".replies article.post >> nth=1")
        # The nurse's page still shows the clarifying round; the facilitator moves on to ideas meanwhile:
        # her answer is refused by the server, and her page says why.
        b(
            "nurse",
            "open",
            hash=f"#/circle/{circle_id}/post/{session_post}",
            ready='.session[data-round="clarifying_questions"]',
        )
        b("physician", "press", button="Next round: Ideas", then='.session[data-round="ideas"]')
        b("nurse", "fill", label="Your reply", value="The head nurse did; she works days only.")
        b("nurse", "press", button="Encrypt and reply", then='#notice[data-code="session_round_closed"]')
        b(
            "nurse",
            "open",
            hash=f"#/circle/{circle_id}/post/{session_post}",
            ready='.session[data-round="ideas"]',
        )
        assert b("nurse", "enabled", selector="form.composer textarea") is False
        screens.check("nurse", "circle-session")

        # The moderator sees the report, hides the reported reply with a reason that members then read in its
        # place, and removes the physician: the circle's key is rotated at once.
        b("nurse", "open", hash=f"#/circle/{circle_id}/members", ready="section.reports")
        [reported] = b("nurse", "texts", selector=".reports li")
        assert reported.startswith("Off topic · ")
        b("nurse", "follow", link="See the post", then=_reply(answer))
        b("nurse", "expand", summary="Hide", within=_reply(answer))
        b(
            "nurse",
            "fill",
            label="Reason for hiding",
            value="Kept for the palliative circle",
            within=_reply(answer),
        )
        b("nurse", "press", button="Hide", within=_reply(answer), then=".replies .hidden-note")
        b("physician", "open", hash=f"#/circle/{circle_id}/post/{question_id}", ready=".replies .hidden-note")
        assert b("physician", "text", selector=".replies .hidden-note") == (
            "Hidden by a moderator: Kept for the palliative circle"
        )
        assert b("physician", "count", selector=".replies .post-body") == 0
        b("nurse", "open", hash=f"#/circle/{circle_id}/members", ready="section.reports")
        screens.check("nurse", "circle-members")
        b("nurse", "press", button=f"Remove {physician_name}", then=".confirmation")
        b("nurse", "open", hash=f"#/circle/{circle_id}", ready="form.composer")
        b("nurse", "fill", label="Title", exact=True, value=after_removal[0])
        b("nurse", "fill", label="What you want to share or ask", value=after_removal[1])
        b("nurse", "press", button="Encrypt and post", then=_post_card(after_removal[0]))
        epoch = int(b("nurse", "attribute", selector="section.circle", name="data-epoch"))
        # A server that names the epoch before the removal, which the physician's devices hold, is refused:
        # the browser will not seal under it, even after a reload.
        b("nurse", "rollback", circleId=circle_id, epoch=epoch - 1)
        b("nurse", "open", hash=f"#/circle/{circle_id}", ready=f'section.circle[data-epoch="{epoch - 1}"]')
        b("nurse", "fill", label="Title", exact=True, value="Sealed under an old key?")
        b("nurse", "fill", label="What you want to share or ask", value="This must not be sent.")
        b("nurse", "press", button="Encrypt and post", then='#notice[data-code="epoch_rollback"]')
        b("nurse", "honest")
        b("nurse", "open", hash=f"#/circle/{circle_id}", ready=_post_card(after_removal[0]))
        assert b("nurse", "count", selector=_post_card("Sealed under an old key?")) == 0
        assert b("nurse", "phone") <= 0, "the circle page scrolls sideways at 390 px"
        screens.check("nurse", "circle-phone")
        b("nurse", "desktop")

        # The removed physician's browser can open nothing of the circle any more, and no key of the epoch
        # the new post was sealed under was ever wrapped for their device.
        b("physician", "open", hash=f"#/circle/{circle_id}", ready='#notice[data-code="circle_not_found"]')
        with transaction(engine) as session:
            physician_devices = set(
                session.execute(select(Device.id).where(col(Device.user_id) == physician.id)).scalars()
            )
            wrapped_for = set(
                session.execute(
                    select(CircleEpochWrap.device_id).where(
                        col(CircleEpochWrap.circle_id) == uuid.UUID(circle_id),
                        col(CircleEpochWrap.epoch) == epoch,
                    )
                ).scalars()
            )
        assert physician_devices and wrapped_for and not physician_devices & wrapped_for

        # An open circle, for every verified professional: the physician finds it among those to join, joins,
        # and the posts sealed before (for the nurse alone) say why this browser cannot read them.
        open_name = f"Entraide de nuit {marker}"
        b("nurse", "open", hash="#/circles/new", ready="form button[type=submit]")
        b("nurse", "fill", label="Name", value=open_name)
        b("nurse", "press", button="Create the circle", then="section.circle")
        b("nurse", "fill", label="Title", exact=True, value="Before anyone joined")
        b(
            "nurse",
            "fill",
            label="What you want to share or ask",
            value="Only the nurse's devices hold this key.",
        )
        b("nurse", "press", button="Encrypt and post", then=_post_card("Before anyone joined"))
        open_id = b("nurse", "attribute", selector="section.circle", name="data-circle-id")
        b("physician", "open", hash="#/circles", ready=f'.joinable [data-circle-id="{open_id}"]')
        assert "Open to every verified professional" in b(
            "physician", "text", selector=f'.joinable [data-circle-id="{open_id}"]'
        )
        unreadable = f"{_post_card('(untitled)')} .verify.refused"
        b("physician", "press", button=f"Join {open_name}", then=unreadable)
        assert b("physician", "attribute", selector=unreadable, name="data-code") == "no_epoch_key"

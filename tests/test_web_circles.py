"""The web client's peer circles (web/src/circle-format.js, circles.js and the circle screens).

The format is checked under Node against the reference implementation (app/crypto/circles.py), both ways:
what Python seals the browser code opens, and what the browser code seals Python opens and checks like the
server does.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid

import pytest

from app.crypto import circles
from app.crypto.e2ee import Recipient
from app.crypto.e2ee_keys import DeviceKeys, Suite
from tests.test_web_e2e import (  # noqa: F401 (web_bundle: the fixture)
    WEB,
    _require_browser_tools,
    _run_in_web,
    web_bundle,
)

pytestmark = pytest.mark.slow


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@pytest.mark.usefixtures("web_bundle")
def test_web_circle_format_keeps_its_rules():
    _run_in_web(_require_browser_tools(), "--test", "tests/circles.test.mjs")


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

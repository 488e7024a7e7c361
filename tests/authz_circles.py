"""The circles of the authorization matrix (tests/test_authz_matrix.py): the requester moderates a circle by
invitation in which the specialist is a member (and the facilitator of a session on the requester's post);
the other clinicians are strangers to it. Write cells get a fresh circle, as they get fresh cases."""

from __future__ import annotations

import uuid
from datetime import timedelta

from app.client.api import b64
from app.crypto.circles import PseudonymKey, new_epoch, pseudonym_binding, sign_pseudonym_binding
from app.models.base import utcnow
from tests.authz_world import REQUESTER, SPECIALIST, Build, Call, World
from tests.circle_helpers import (
    Member,
    create_circle,
    epoch_body,
    invite_and_join,
    post,
    post_body,
    recipients,
    rotate,
)


def _new_circle(w: World, access: str = "invitation") -> dict:
    moderator, member = Member(w.people[REQUESTER]), Member(w.people[SPECIALIST])
    circle = create_circle(w.client, moderator, access)["id"]
    invite_and_join(w.client, circle, moderator, member)
    rotate(w.client, circle, moderator)
    post_id = post(w.client, circle, moderator, "matrix").json()["id"]
    deadline = (utcnow() + timedelta(days=1)).isoformat()
    opened = w.client.post(
        f"/v1/circles/{circle}/sessions",
        json={"post_id": post_id, "facilitator_id": member.id, "deadline": deadline},
        headers=moderator.headers(),
    )
    assert opened.status_code == 201, opened.text
    return {"id": circle, "post_id": post_id, "session_id": opened.json()["id"], "key": moderator.keys}


def circle_of(w: World, fresh: bool | None = None, access: str = "invitation") -> dict:
    """A fresh circle when the call is expected to change it, else the shared one."""
    if fresh if fresh is not None else w.changing:
        return _new_circle(w, access)
    if "shared" not in w.circles:
        w.circles["shared"] = _new_circle(w)
    return w.circles["shared"]


def _member(w: World, role: str, circle: dict) -> Member:
    member = Member(w.device_author(role))
    member.keys.update(circle["key"])
    return member


def on_circle(method: str, suffix: str = "", body=None, *, with_device: bool = False) -> Build:
    def build(w: World, role: str) -> Call:
        circle = circle_of(w)
        headers = None
        if with_device and role in w.people:
            headers = {**w.headers[role], "X-Confrere-Device": w.people[role].device.id}
        return Call(
            method, f"/v1/circles/{circle['id']}{suffix.format(**circle)}", json=body, headers=headers
        )

    return build


def join(w: World, role: str) -> Call:
    circle = circle_of(w, access="open")
    return Call("POST", f"/v1/circles/{circle['id']}/join")


def invite(w: World, role: str) -> Call:
    circle = circle_of(w)
    return Call("POST", f"/v1/circles/{circle['id']}/invitations", json={"user_id": w.new_user()})


def on_member(method: str, suffix: str = "", body=None) -> Build:
    def build(w: World, role: str) -> Call:
        circle = circle_of(w)
        return Call(method, f"/v1/circles/{circle['id']}/members/{w.user_id(SPECIALIST)}{suffix}", json=body)

    return build


def rotation(w: World, role: str) -> Call:
    circle = circle_of(w)
    author = w.device_author(role)
    devices = recipients(w.client, circle["id"], Member(w.people[REQUESTER]))
    sealed = new_epoch(circle["id"], 2, author.device.keys, author.device.id, devices)
    return Call("POST", f"/v1/circles/{circle['id']}/epochs", json=epoch_body(sealed))


def pseudonym(w: World, role: str) -> Call:
    circle = circle_of(w)
    author = w.device_author(role)
    key = PseudonymKey.generate()
    binding, signature = sign_pseudonym_binding(
        pseudonym_binding(circle["id"], author.device.id, str(uuid.uuid4()), key.public), author.device.keys
    )
    body = {
        "name": f"p-{role}",
        "public_key": b64(key.public),
        "binding": b64(binding),
        "binding_signature": b64(signature),
    }
    return Call("POST", f"/v1/circles/{circle['id']}/pseudonym", json=body)


def new_post(w: World, role: str) -> Call:
    circle = circle_of(w)
    body = post_body(_member(w, role, circle), circle["id"], 1, "matrix post")
    return Call("POST", f"/v1/circles/{circle['id']}/posts", json=body)


def open_session(w: World, role: str) -> Call:
    circle = circle_of(w)
    deadline = (utcnow() + timedelta(days=1)).isoformat()
    body = {"post_id": circle["post_id"], "facilitator_id": w.user_id(SPECIALIST), "deadline": deadline}
    if w.changing:  # the fresh circle's post already has a session: open one on a new post
        body["post_id"] = post(w.client, circle["id"], _member(w, REQUESTER, circle), "another").json()["id"]
    return Call("POST", f"/v1/circles/{circle['id']}/sessions", json=body)

"""Peer circles over HTTP with real cryptography (app.crypto.circles): members with registered devices,
epochs rotated for the devices the server lists, posts sealed with the epoch's key."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.client.api import b64, unb64
from app.crypto.circles import (
    PostContext,
    PostHeader,
    PseudonymKey,
    new_epoch,
    open_epoch,
    open_post,
    pseudonym_binding,
    seal_post,
    sign_pseudonym_binding,
)
from app.crypto.e2ee import Recipient, Suite
from app.models.audit import AuditRecord
from app.models.users import Profession, Role
from tests.conftest import Accounts
from tests.e2ee_helpers import Clinician, Device, clinician


@dataclass
class Member:
    """A professional as a circle client sees itself: its account, devices, and the epoch keys it opened."""

    person: Clinician
    keys: dict[tuple[str, int], bytes] = field(default_factory=dict)
    pseudonyms: dict[str, tuple[str, str, PseudonymKey]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.person.id

    @property
    def device(self) -> Device:
        return self.person.device

    def headers(self, device: Device | None = None) -> dict[str, str]:
        return {**self.person.headers, "X-Confrere-Device": (device or self.device).id}


def professional(
    client: TestClient,
    accounts: Accounts,
    profession: Profession = Profession.NURSE,
    *,
    devices: int = 1,
    suite: Suite = Suite.X25519,
    specialties: tuple[str, ...] = (),
) -> Member:
    roles = (Role.PHYSICIAN,) if profession is Profession.PHYSICIAN else ()
    if specialties:
        roles = (Role.SPECIALIST,)
    person = clinician(
        client, accounts, *roles, specialties=specialties, suite=suite, devices=devices, profession=profession
    )
    return Member(person)


def create_circle(client: TestClient, owner: Member, access: str = "invitation", **extra) -> dict:
    body = {"name": "Soins palliatifs", "description": "Entraide", "access": access, **extra}
    response = client.post("/v1/circles", json=body, headers=owner.headers())
    assert response.status_code == 201, response.text
    return response.json()


def invite_and_join(client: TestClient, circle_id: str, moderator: Member, *members: Member) -> None:
    for member in members:
        invited = client.post(
            f"/v1/circles/{circle_id}/invitations", json={"user_id": member.id}, headers=moderator.headers()
        )
        assert invited.status_code == 201, invited.text
        joined = client.post(f"/v1/circles/{circle_id}/join", headers=member.headers())
        assert joined.status_code == 200, joined.text


def recipients(client: TestClient, circle_id: str, member: Member) -> dict[str, Recipient]:
    response = client.get(f"/v1/circles/{circle_id}/recipients", headers=member.headers())
    assert response.status_code == 200, response.text
    return {
        device["device_id"]: Recipient(Suite(device["suite"]), unb64(device["kem_public_key"]))
        for device in response.json()["devices"]
    }


def epoch_body(sealed) -> dict:
    return {
        "statement": b64(sealed.statement),
        "signature": b64(sealed.signature),
        "wraps": {device_id: b64(wrap) for device_id, wrap in sealed.wraps.items()},
    }


def rotate(client: TestClient, circle_id: str, member: Member, *, expect: int = 201):
    """The next epoch, wrapped for every device the server lists as the members'."""
    detail = client.get(f"/v1/circles/{circle_id}", headers=member.headers()).json()
    epoch = detail["current_epoch"] + 1
    sealed = new_epoch(
        circle_id, epoch, member.device.keys, member.device.id, recipients(client, circle_id, member)
    )
    response = client.post(
        f"/v1/circles/{circle_id}/epochs", json=epoch_body(sealed), headers=member.headers()
    )
    assert response.status_code == expect, response.text
    if response.status_code == 201:
        member.keys[(circle_id, epoch)] = sealed.epoch_key
    return response


def open_epochs(client: TestClient, circle_id: str, member: Member, device: Device | None = None) -> dict:
    """Fetches and opens every epoch the device holds a wrap for; returns the listing."""
    device = device or member.device
    response = client.get(f"/v1/circles/{circle_id}/epochs", headers=member.headers(device))
    assert response.status_code == 200, response.text
    for held in response.json()["epochs"]:
        member.keys[(circle_id, held["epoch"])] = open_epoch(
            unb64(held["statement"]),
            unb64(held["signature"]),
            unb64(held["wrap"]),
            device.keys,
            device.id,
            unb64(held["author_device"]["signing_public_key"]),
            circle_id=circle_id,
            epoch=held["epoch"],
        )
    return response.json()


def post_body(
    member: Member,
    circle_id: str,
    epoch: int,
    text: str,
    *,
    parent_id: str | None = None,
    pseudonym: bool = False,
    session: dict | None = None,
) -> dict:
    object_id = str(uuid.uuid4())
    if pseudonym:
        _, key_id, signer = member.pseudonyms[circle_id]
        author, author_kind = key_id, "pseudonym"
    else:
        author, author_kind, signer = member.device.id, "device", member.device.keys
    header = PostHeader(
        author=author,
        author_kind=author_kind,
        circle_id=circle_id,
        epoch=epoch,
        kind="reply" if parent_id else "post",
        object_id=object_id,
        parent_id=parent_id or object_id,
    )
    sealed = seal_post(member.keys[(circle_id, epoch)], header, json.dumps({"body": text}).encode(), signer)
    body = {
        "header": b64(sealed.header),
        "manifest": b64(sealed.manifest),
        "signature": b64(sealed.signature),
        "ciphertext": b64(sealed.ciphertext),
    }
    return {**body, "session": session} if session else body


def post(
    client: TestClient, circle_id: str, member: Member, text: str, *, epoch: int | None = None, **options
):
    if epoch is None:
        epoch = client.get(f"/v1/circles/{circle_id}", headers=member.headers()).json()["current_epoch"]
    body = post_body(member, circle_id, epoch, text, **options)
    return client.post(f"/v1/circles/{circle_id}/posts", json=body, headers=member.headers())


def read_post(member: Member, item: dict, author_signing_public: bytes) -> str:
    """Opens a post as served, with the key the member trusts for its author."""
    sealed = item["sealed"]
    plaintext = open_post(
        member.keys[(item["circle_id"], item["epoch"])],
        unb64(sealed["header"]),
        unb64(sealed["manifest"]),
        unb64(sealed["signature"]),
        unb64(sealed["ciphertext"]),
        author_signing_public,
        served=PostContext(
            circle_id=item["circle_id"],
            object_id=item["id"],
            kind="reply" if item["parent_id"] else "post",
            parent_id=item["parent_id"] or item["id"],
            epoch=item["epoch"],
        ),
    )
    return json.loads(plaintext)["body"]


def make_pseudonym(client: TestClient, circle_id: str, member: Member, name: str, *, expect: int = 201):
    key = PseudonymKey.generate()
    pseudonym_id = member.pseudonyms.get(circle_id, (str(uuid.uuid4()), "", key))[0]
    binding, signature = sign_pseudonym_binding(
        pseudonym_binding(circle_id, member.device.id, pseudonym_id, key.public), member.device.keys
    )
    body = {
        "name": name,
        "public_key": b64(key.public),
        "binding": b64(binding),
        "binding_signature": b64(signature),
    }
    response = client.post(f"/v1/circles/{circle_id}/pseudonym", json=body, headers=member.headers())
    assert response.status_code == expect, response.text
    if expect == 201:
        member.pseudonyms[circle_id] = (pseudonym_id, response.json()["key_id"], key)
    return response


def audit_of(engine, user_id: str) -> list[tuple[str, str, int]]:
    """The (action, outcome, status) of every audit record the user is the actor of, in order."""
    query = (
        select(AuditRecord.record).where(AuditRecord.actor_id == uuid.UUID(user_id)).order_by(AuditRecord.id)
    )
    with Session(engine) as session:
        records = [json.loads(raw) for raw in session.exec(query).all()]
    return [(record["action"], record["outcome"], record["status"]) for record in records]

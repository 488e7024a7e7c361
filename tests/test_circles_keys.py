"""Circle keys over HTTP with real cryptography: epochs wrap only for members' devices, a removed member
reads nothing posted after its removal, concurrent rotations, grants."""

from __future__ import annotations

import pytest

from app.client.api import b64, unb64
from app.crypto.circles import CircleError, new_epoch
from app.crypto.e2ee import Recipient, Suite
from app.models.users import Profession
from tests.circle_helpers import (
    audit_of,
    create_circle,
    epoch_body,
    invite_and_join,
    open_epochs,
    post,
    professional,
    read_post,
    recipients,
    rotate,
)
from tests.conftest import assert_problem
from tests.e2ee_helpers import register_device


def _circle_of_three(client, accounts):
    nurse = professional(client, accounts, devices=2)
    psychologist = professional(client, accounts, Profession.PSYCHOLOGIST)
    physician = professional(client, accounts, Profession.PHYSICIAN, suite=Suite.XWING)
    circle = create_circle(client, nurse)["id"]
    invite_and_join(client, circle, nurse, psychologist, physician)
    rotate(client, circle, nurse)
    return circle, nurse, psychologist, physician


def test_members_read_posts_sealed_once_for_the_circle(client, accounts):
    circle, nurse, psychologist, physician = _circle_of_three(client, accounts)
    created = post(client, circle, nurse, "Comment gérer une famille en colère ?")
    assert created.status_code == 201, created.text
    for reader in (psychologist, physician):
        open_epochs(client, circle, reader)
        items = client.get(f"/v1/circles/{circle}/posts", headers=reader.headers()).json()["items"]
        assert items[0]["author"] == {
            "kind": "member",
            "user_id": nurse.id,
            "display_name": items[0]["author"]["display_name"],
        }
        signing = unb64(items[0]["sealed"]["author_device"]["signing_public_key"])
        assert read_post(reader, items[0], signing) == "Comment gérer une famille en colère ?"
    # Every device of every member got a wrap; the second device of the nurse opens it too.
    open_epochs(client, circle, nurse, nurse.person.devices[1])


def test_a_removed_member_cannot_open_what_is_posted_after_removal(client, accounts):
    circle, nurse, psychologist, physician = _circle_of_three(client, accounts)
    open_epochs(client, circle, physician)
    before = post(client, circle, nurse, "before").json()
    removed = client.delete(f"/v1/circles/{circle}/members/{physician.id}", headers=nurse.headers())
    assert removed.status_code == 200, removed.text
    assert client.get(f"/v1/circles/{circle}", headers=nurse.headers()).json()["rotation_required"] is True
    # No post until the key rotates, and the rotation may not include the removed member's devices.
    assert_problem(post(client, circle, nurse, "too early"), 409, "epoch_rotation_required")
    stale = recipients(client, circle, nurse)
    stale[physician.device.id] = Recipient(physician.device.keys.suite, physician.device.keys.kem_public)
    sealed = new_epoch(circle, 2, nurse.device.keys, nurse.device.id, stale)
    refused = client.post(f"/v1/circles/{circle}/epochs", json=epoch_body(sealed), headers=nurse.headers())
    assert_problem(refused, 409, "members_changed")
    rotate(client, circle, nurse)
    after = post(client, circle, nurse, "after").json()

    # The removed member is answered as a stranger, and the key it holds does not open the new post.
    assert_problem(
        client.get(f"/v1/circles/{circle}/posts", headers=physician.headers()), 404, "circle_not_found"
    )
    assert_problem(
        client.get(f"/v1/circles/{circle}/epochs", headers=physician.headers()), 404, "circle_not_found"
    )
    assert (circle, 2) not in physician.keys
    signing = unb64(after["sealed"]["author_device"]["signing_public_key"])
    with pytest.raises(KeyError):
        read_post(physician, after, signing)
    forged = {**after, "epoch": 1}  # the old key, tried on the new post as if it were of epoch 1
    with pytest.raises(CircleError):
        read_post(physician, forged, signing)
    # What it could read before, it still reads on its device.
    assert read_post(physician, before, signing) == "before"
    open_epochs(client, circle, psychologist)
    assert read_post(psychologist, after, signing) == "after"


def test_a_non_member_device_never_receives_a_wrap(client, accounts, engine):
    circle, nurse, psychologist, _ = _circle_of_three(client, accounts)
    outsider = professional(client, accounts)
    client.delete(f"/v1/circles/{circle}/members/{psychologist.id}", headers=nurse.headers())
    with_outsider = recipients(client, circle, nurse)
    with_outsider[outsider.device.id] = Recipient(outsider.device.keys.suite, outsider.device.keys.kem_public)
    sealed = new_epoch(circle, 2, nurse.device.keys, nurse.device.id, with_outsider)
    assert_problem(
        client.post(f"/v1/circles/{circle}/epochs", json=epoch_body(sealed), headers=nurse.headers()),
        409,
        "members_changed",
    )
    # A grant to a non-member's device is refused as well.
    key = nurse.keys[(circle, 1)]
    grant = new_epoch(
        circle,
        1,
        nurse.device.keys,
        nurse.device.id,
        {outsider.device.id: Recipient(outsider.device.keys.suite, outsider.device.keys.kem_public)},
        kind="grant",
        epoch_key=key,
    )
    assert_problem(
        client.post(f"/v1/circles/{circle}/epochs", json=epoch_body(grant), headers=nurse.headers()),
        422,
        "recipient_not_eligible",
    )
    # The outsider sees no circle, no epochs, and the listing only ever serves the caller's own wraps.
    assert_problem(
        client.get(f"/v1/circles/{circle}/epochs", headers=outsider.headers()), 404, "circle_not_found"
    )
    listed = client.get(f"/v1/circles/{circle}/epochs", headers=nurse.headers()).json()
    assert {held["epoch"] for held in listed["epochs"]} == {1}
    assert listed["device_id"] == nurse.device.id
    second = client.get(f"/v1/circles/{circle}/epochs", headers=nurse.headers(nurse.person.devices[1])).json()
    assert second["epochs"][0]["wrap"] != listed["epochs"][0]["wrap"]
    refusals = audit_of(engine, nurse.id)
    assert ("circle.epoch.rotate", "error", 409) in refusals
    assert ("circle.epoch.grant", "error", 422) in refusals


def test_two_rotations_of_one_epoch_one_wins(client, accounts):
    circle, nurse, psychologist, _ = _circle_of_three(client, accounts)
    client.post(f"/v1/circles/{circle}/leave", headers=psychologist.headers())
    devices = recipients(client, circle, nurse)
    first = new_epoch(circle, 2, nurse.device.keys, nurse.device.id, devices)
    second = new_epoch(circle, 2, nurse.device.keys, nurse.device.id, devices)
    won = client.post(f"/v1/circles/{circle}/epochs", json=epoch_body(first), headers=nurse.headers())
    assert won.status_code == 201, won.text
    lost = client.post(f"/v1/circles/{circle}/epochs", json=epoch_body(second), headers=nurse.headers())
    assert_problem(lost, 409, "epoch_conflict")
    assert client.get(f"/v1/circles/{circle}", headers=nurse.headers()).json()["current_epoch"] == 2


def test_epoch_uploads_are_checked(client, accounts):
    circle, nurse, psychologist, _ = _circle_of_three(client, accounts)
    client.post(f"/v1/circles/{circle}/leave", headers=psychologist.headers())
    devices = recipients(client, circle, nurse)
    sealed = new_epoch(circle, 2, nurse.device.keys, nurse.device.id, devices)
    tampered = {**epoch_body(sealed), "signature": b64(bytes(64))}
    assert_problem(
        client.post(f"/v1/circles/{circle}/epochs", json=tampered, headers=nurse.headers()),
        422,
        "invalid_signature",
    )
    # Signed by a device of someone else: the member's own active device only.
    foreign = new_epoch(circle, 2, psychologist.device.keys, psychologist.device.id, devices)
    assert_problem(
        client.post(f"/v1/circles/{circle}/epochs", json=epoch_body(foreign), headers=nurse.headers()),
        422,
        "invalid_signing_device",
    )
    skipping = new_epoch(circle, 3, nurse.device.keys, nurse.device.id, devices)
    assert_problem(
        client.post(f"/v1/circles/{circle}/epochs", json=epoch_body(skipping), headers=nurse.headers()),
        409,
        "epoch_conflict",
    )


def test_a_new_device_gets_a_grant_and_a_grant_commits_to_its_epoch(client, accounts):
    circle, nurse, psychologist, _ = _circle_of_three(client, accounts)
    laptop = register_device(client, psychologist.person.headers, psychologist.id, Suite.X25519)
    psychologist.person.devices.append(laptop)
    target = {laptop.id: Recipient(laptop.keys.suite, laptop.keys.kem_public)}
    wrong_key = new_epoch(
        circle, 1, nurse.device.keys, nurse.device.id, target, kind="grant", epoch_key=bytes(32)
    )
    assert_problem(
        client.post(f"/v1/circles/{circle}/epochs", json=epoch_body(wrong_key), headers=nurse.headers()),
        422,
        "epoch_key_commitment_mismatch",
    )
    grant = new_epoch(
        circle, 1, nurse.device.keys, nurse.device.id, target, kind="grant", epoch_key=nurse.keys[(circle, 1)]
    )
    granted = client.post(f"/v1/circles/{circle}/epochs", json=epoch_body(grant), headers=nurse.headers())
    assert granted.status_code == 201, granted.text
    assert granted.json()["kind"] == "grant"
    open_epochs(client, circle, psychologist, laptop)
    assert psychologist.keys[(circle, 1)] == nurse.keys[(circle, 1)]
    again = client.post(f"/v1/circles/{circle}/epochs", json=epoch_body(grant), headers=nurse.headers())
    assert_problem(again, 409, "wrap_already_held")
    # A revoked device requires a rotation.
    client.delete(f"/v1/devices/{laptop.id}", headers=psychologist.person.headers)
    assert client.get(f"/v1/circles/{circle}", headers=nurse.headers()).json()["rotation_required"] is True


def test_a_rotation_for_many_devices_fits_the_limits(client, accounts):
    """A statement lists every device: its size grows with the circle (here 45 devices, some post-quantum)."""
    nurse = professional(client, accounts, devices=15)
    others = [
        professional(client, accounts, devices=15, suite=suite) for suite in (Suite.X25519, Suite.XWING)
    ]
    circle = create_circle(client, nurse)["id"]
    invite_and_join(client, circle, nurse, *others)
    rotated = rotate(client, circle, nurse)
    assert rotated.json()["wrap_count"] == 45
    open_epochs(client, circle, others[1], others[1].person.devices[-1])
    assert others[1].keys[(circle, 1)] == nurse.keys[(circle, 1)]


def test_only_a_moderator_shares_epochs_older_than_a_members_joining(client, accounts):
    circle, nurse, psychologist, _ = _circle_of_three(client, accounts)
    newcomer = professional(client, accounts)
    invite_and_join(client, circle, nurse, newcomer)
    rotate(client, circle, nurse)
    open_epochs(client, circle, psychologist)
    target = {newcomer.device.id: Recipient(newcomer.device.keys.suite, newcomer.device.keys.kem_public)}

    def grant(member):
        sealed = new_epoch(
            circle,
            1,
            member.device.keys,
            member.device.id,
            target,
            kind="grant",
            epoch_key=member.keys[(circle, 1)],
        )
        return client.post(f"/v1/circles/{circle}/epochs", json=epoch_body(sealed), headers=member.headers())

    assert_problem(grant(psychologist), 422, "recipient_not_eligible")
    assert grant(nurse).status_code == 201
    held = open_epochs(client, circle, newcomer)
    assert [epoch["epoch"] for epoch in held["epochs"]] == [1, 2]

"""Circle membership over HTTP: open circles and their audiences, invitations, the events of membership
changes, rotation required on a member's suspension, and two members rotating one epoch at the same time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from app.crypto.circles import new_epoch
from app.models.users import Profession, Role
from tests.circle_helpers import (
    audit_of,
    create_circle,
    epoch_body,
    invite_and_join,
    professional,
    recipients,
    rotate,
)
from tests.conftest import assert_problem, auth_headers
from tests.notification_helpers import circle_events_of


def _event_types(engine, user_id: str, circle_id: str) -> list[str]:
    return [event["type"] for event in circle_events_of(engine, user_id, circle_id)]


def test_open_circles_admit_their_audience_only(client, accounts, engine):
    nurse = professional(client, accounts, Profession.NURSE)
    colleague = professional(client, accounts, Profession.NURSE)
    psychologist = professional(client, accounts, Profession.PSYCHOLOGIST)
    circle = create_circle(client, nurse, "open", audience={"profession": "nurse"})
    assert circle["audience"] == {"profession": "nurse", "specialty": None}
    joinable = client.get("/v1/circles?joinable=true", headers=colleague.headers()).json()["items"]
    assert circle["id"] in [item["id"] for item in joinable]
    assert circle["id"] not in [
        item["id"]
        for item in client.get("/v1/circles?joinable=true", headers=psychologist.headers()).json()["items"]
    ]
    # Outside the audience, the circle does not exist; inside, the detail shows before joining.
    assert_problem(
        client.get(f"/v1/circles/{circle['id']}", headers=psychologist.headers()), 404, "circle_not_found"
    )
    assert_problem(
        client.post(f"/v1/circles/{circle['id']}/join", headers=psychologist.headers()),
        404,
        "circle_not_found",
    )
    seen = client.get(f"/v1/circles/{circle['id']}", headers=colleague.headers()).json()
    assert (seen["my_role"], seen["my_status"]) == (None, None)
    # Content stays for members only.
    assert_problem(
        client.get(f"/v1/circles/{circle['id']}/posts", headers=colleague.headers()), 404, "circle_not_found"
    )
    joined = client.post(f"/v1/circles/{circle['id']}/join", headers=colleague.headers())
    assert joined.status_code == 200 and joined.json()["joined_epoch"] == 1
    assert_problem(
        client.post(f"/v1/circles/{circle['id']}/join", headers=colleague.headers()), 409, "already_member"
    )
    assert _event_types(engine, nurse.id, circle["id"]) == [
        "circle.rotation.required",
        "circle.member.joined",
    ]
    assert ("circle.join", "denied", 404) in audit_of(engine, psychologist.id)


def test_invitations_and_specialty_audiences(client, accounts):
    derm = professional(client, accounts, Profession.PHYSICIAN, specialties=("dermatology",))
    physician = professional(client, accounts, Profession.PHYSICIAN)
    circle = create_circle(client, derm, "open", audience={"specialty": "dermatology"})["id"]
    assert_problem(
        client.post(f"/v1/circles/{circle}/join", headers=physician.headers()), 404, "circle_not_found"
    )
    invited = client.post(
        f"/v1/circles/{circle}/invitations", json={"user_id": physician.id}, headers=derm.headers()
    )
    assert invited.status_code == 201 and invited.json()["status"] == "invited"
    assert client.get(f"/v1/circles/{circle}", headers=physician.headers()).json()["my_status"] == "invited"
    assert client.post(f"/v1/circles/{circle}/join", headers=physician.headers()).status_code == 200
    officer = accounts.create(Role.COMPLIANCE_OFFICER)
    refused = client.post(
        f"/v1/circles/{circle}/invitations", json={"user_id": str(officer.id)}, headers=derm.headers()
    )
    assert_problem(refused, 404, "member_not_found")
    bad = client.post(
        "/v1/circles",
        json={"name": "x", "access": "open", "audience": {"specialty": "astrology"}},
        headers=derm.headers(),
    )
    assert_problem(bad, 404, "specialty_not_found")
    both = client.post(
        "/v1/circles",
        json={"name": "x", "access": "invitation", "audience": {"profession": "nurse"}},
        headers=derm.headers(),
    )
    assert_problem(both, 422, "invalid_input")


def test_a_members_suspension_requires_a_rotation(client, accounts, engine):
    nurse, psychologist = (
        professional(client, accounts),
        professional(client, accounts, Profession.PSYCHOLOGIST),
    )
    circle = create_circle(client, nurse)["id"]
    invite_and_join(client, circle, nurse, psychologist)
    rotate(client, circle, nurse)
    admin = accounts.create(Role.ADMIN)
    suspended = client.post(
        f"/v1/admin/users/{psychologist.id}/suspend",
        json={"reason": "other"},
        headers=auth_headers(client, admin),
    )
    assert suspended.status_code == 200, suspended.text
    assert client.get(f"/v1/circles/{circle}", headers=nurse.headers()).json()["rotation_required"] is True
    # The suspended member's devices are no recipients of the next epoch.
    assert set(recipients(client, circle, nurse)) == {nurse.device.id}
    rotate(client, circle, nurse)
    wraps = client.get(f"/v1/circles/{circle}/epochs", headers=nurse.headers()).json()
    assert wraps["current_epoch"] == 2 and wraps["rotation_required"] is False


def test_two_members_rotating_the_same_epoch_at_once_one_wins(client, accounts):
    nurse, psychologist = (
        professional(client, accounts),
        professional(client, accounts, Profession.PSYCHOLOGIST),
    )
    circle = create_circle(client, nurse)["id"]
    invite_and_join(client, circle, nurse, psychologist)
    devices = recipients(client, circle, nurse)
    bodies = [
        (member, epoch_body(new_epoch(circle, 1, member.device.keys, member.device.id, devices)))
        for member in (nurse, psychologist)
    ]
    start = threading.Barrier(2, timeout=30)

    def send(member_body):
        member, body = member_body
        start.wait()
        return client.post(f"/v1/circles/{circle}/epochs", json=body, headers=member.headers())

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(response.status_code for response in pool.map(send, bodies))
    assert statuses == [201, 409]
    assert client.get(f"/v1/circles/{circle}", headers=nurse.headers()).json()["current_epoch"] == 1

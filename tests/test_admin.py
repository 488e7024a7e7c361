"""Account administration: only admins with a TOTP session; never on themselves."""

from __future__ import annotations

from app.models.users import Role
from tests.conftest import assert_problem, auth_headers
from tests.test_auth import REGISTRATION


def test_admin_verifies_a_registered_clinician(client, accounts):
    admin = auth_headers(client, accounts.create(Role.ADMIN))
    registered = client.post("/v1/auth/register", json=REGISTRATION).json()
    pending = client.get("/v1/admin/users", params={"status": "pending"}, headers=admin).json()
    assert [user["id"] for user in pending["items"]] == [registered["id"]]

    verified = client.post(f"/v1/admin/users/{registered['id']}/verify", headers=admin)
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "active"
    assert verified.json()["verified_at"] is not None
    assert_problem(
        client.post(f"/v1/admin/users/{registered['id']}/verify", headers=admin), 409, "already_verified"
    )


def test_non_admins_are_refused(client, accounts):
    physician = auth_headers(client, accounts.create(Role.PHYSICIAN))
    officer = auth_headers(client, accounts.create(Role.COMPLIANCE_OFFICER))
    target = accounts.create(Role.PHYSICIAN, verified=False)
    for headers in (physician, officer):
        assert_problem(client.get("/v1/admin/users", headers=headers), 403, "role_required")
        assert_problem(
            client.post(f"/v1/admin/users/{target.id}/verify", headers=headers), 403, "role_required"
        )
    assert_problem(client.get("/v1/admin/users"), 401, "unauthenticated")


def test_admin_powers_need_a_totp_session(client, accounts):
    admin = accounts.create(Role.ADMIN, with_totp=False)
    assert_problem(client.get("/v1/admin/users", headers=auth_headers(client, admin)), 403, "mfa_required")


def test_pending_and_suspended_admins_are_refused(client, accounts):
    pending = accounts.create(Role.ADMIN, verified=False)
    assert_problem(
        client.get("/v1/admin/users", headers=auth_headers(client, pending)), 403, "account_not_active"
    )


def test_suspension_ends_sessions_and_reactivation_restores_login(client, accounts):
    admin = auth_headers(client, accounts.create(Role.ADMIN))
    physician = accounts.create(Role.PHYSICIAN)
    physician_headers = auth_headers(client, physician)
    body = {"reason": "security_incident"}
    suspended = client.post(f"/v1/admin/users/{physician.id}/suspend", json=body, headers=admin)
    assert suspended.json()["status"] == "suspended"
    assert_problem(client.get("/v1/me", headers=physician_headers), 401, "invalid_token")
    client.post(f"/v1/admin/users/{physician.id}/reactivate", headers=admin)
    assert client.get("/v1/me", headers=auth_headers(client, physician)).status_code == 200


def test_roles_and_specialties(client, accounts):
    admin_account = accounts.create(Role.ADMIN)
    admin = auth_headers(client, admin_account)
    user = accounts.create(Role.PHYSICIAN)
    body = {"roles": ["physician", "specialist"], "specialties": ["cardiology"]}
    updated = client.put(f"/v1/admin/users/{user.id}/roles", json=body, headers=admin)
    assert updated.status_code == 200, updated.text
    assert updated.json()["roles"] == ["physician", "specialist"]
    assert updated.json()["specialties"] == ["cardiology"]
    cardiologists = client.get("/v1/admin/users", params={"specialty": "cardiology"}, headers=admin).json()
    assert [item["id"] for item in cardiologists["items"]] == [str(user.id)]

    unknown = {"roles": ["specialist"], "specialties": ["astrology"]}
    assert_problem(
        client.put(f"/v1/admin/users/{user.id}/roles", json=unknown, headers=admin), 422, "unknown_specialty"
    )
    own = client.put(
        f"/v1/admin/users/{admin_account.id}/roles",
        json={"roles": ["admin", "specialist"], "specialties": ["cardiology"]},
        headers=admin,
    )
    assert_problem(own, 403, "self_change_refused")
    missing = "00000000-0000-4000-8000-000000000000"
    assert_problem(client.post(f"/v1/admin/users/{missing}/verify", headers=admin), 404, "user_not_found")


def test_user_list_paginates_with_a_cursor(client, accounts):
    admin = auth_headers(client, accounts.create(Role.ADMIN))
    created = {str(accounts.create(Role.PHYSICIAN).id) for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"role": "physician", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/admin/users", params=params, headers=admin).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == created
    assert_problem(
        client.get("/v1/admin/users", params={"cursor": "garbage!"}, headers=admin), 422, "invalid_cursor"
    )


def test_specialties(client, accounts):
    admin = auth_headers(client, accounts.create(Role.ADMIN))
    physician = auth_headers(client, accounts.create(Role.PHYSICIAN))
    listed = client.get("/v1/specialties", headers=physician).json()
    assert {"code": "cardiology", "name": "Cardiology", "snomed_code": "394579002", "active": True} in listed
    body = {"code": "sleep-medicine", "name": "Sleep medicine", "snomed_code": "1571000175102"}
    assert client.post("/v1/admin/specialties", json=body, headers=admin).status_code == 201
    assert_problem(client.post("/v1/admin/specialties", json=body, headers=admin), 409, "specialty_exists")
    assert_problem(client.post("/v1/admin/specialties", json=body, headers=physician), 403, "role_required")

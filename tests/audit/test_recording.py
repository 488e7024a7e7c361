"""What requests put on the record: actions in order, actors, outcomes, and denials that survive rollback."""

from __future__ import annotations

from app.models.users import Role
from tests.audit.conftest import parsed_log
from tests.conftest import PASSWORD, assert_problem, auth_headers
from tests.test_auth import REGISTRATION


def summary(record: dict) -> tuple:
    return (record["action"], record["outcome"], record["status"], record["actor"].get("user"))


def test_a_flow_is_recorded_in_order_with_actors_and_outcomes(client, accounts, engine, flush):
    admin = accounts.create(Role.ADMIN)
    admin_headers = auth_headers(client, admin)
    registered = client.post("/v1/auth/register", json=REGISTRATION)
    assert registered.status_code == 201
    physician_id = registered.json()["id"]
    assert client.post(f"/v1/admin/users/{physician_id}/verify", headers=admin_headers).status_code == 200
    credentials = {"email": REGISTRATION["email"], "password": REGISTRATION["password"]}
    tokens = client.post("/v1/auth/token", json=credentials).json()
    physician = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/v1/me", headers=physician).status_code == 200
    assert_problem(client.get("/v1/admin/users", headers=physician), 403, "role_required")
    wrong = {"email": REGISTRATION["email"], "password": PASSWORD + "?"}
    assert_problem(client.post("/v1/auth/token", json=wrong), 401, "invalid_credentials")
    assert client.post("/v1/auth/logout", headers=physician).status_code == 204

    assert flush() == 8
    records = parsed_log(engine)
    assert [summary(record) for record in records] == [
        ("auth.login", "success", 200, str(admin.id)),
        ("auth.register", "success", 201, None),
        ("admin.user.verify", "success", 200, str(admin.id)),
        ("auth.login", "success", 200, physician_id),
        ("user.read_self", "success", 200, physician_id),
        ("admin.user.list", "denied", 403, physician_id),
        ("auth.login", "denied", 401, physician_id),
        ("auth.logout", "success", 204, physician_id),
    ]
    assert records[1]["resource"] == {"type": "user", "id": physician_id}
    assert records[2]["resource"] == {"type": "user", "id": physician_id}
    assert records[2]["purpose"] == "HSYSADMIN"
    assert records[5]["actor"]["roles"] == ["physician"]
    # Records carry ids, never names or e-mail addresses.
    for record in records:
        text = str(record)
        assert REGISTRATION["email"].lower() not in text.lower()
        assert REGISTRATION["display_name"] not in text


def test_a_denied_request_is_recorded_although_its_transaction_rolled_back(client, accounts, engine, flush):
    physician = accounts.create(Role.PHYSICIAN)
    headers = auth_headers(client, physician)
    target = accounts.create(Role.PHYSICIAN, verified=False)
    denied = client.post(f"/v1/admin/users/{target.id}/verify", headers=headers)
    assert_problem(denied, 403, "role_required")
    flush()
    record = parsed_log(engine)[-1]
    assert summary(record) == ("admin.user.verify", "denied", 403, str(physician.id))
    assert record["resource"] == {"type": "user", "id": str(target.id)}
    assert record["request"] == denied.json()["request_id"]

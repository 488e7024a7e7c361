"""Limits: a body limit on every route, envelopes per request, devices per user, page sizes, per-user rate
limits on writes and audit exports (429 with Retry-After), and the lockout after failed logins."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlmodel import select

from app.crypto.e2ee import Suite, generate_device_keys
from app.models.audit import AuditRecord
from app.models.users import Role
from app.platform.ratelimit import MAX_KEYS, RateLimited, RateLimiter
from app.platform.routes import api_routes
from app.runtime.body_limits import limits_by_route
from app.runtime.database import new_session
from tests.conftest import PASSWORD, assert_problem, auth_headers
from tests.e2ee_helpers import clinician, create_case, registration_body, request_challenge, share_body


@pytest.fixture
def settings(settings, request):
    """The limits a test exercises: @pytest.mark.parametrize("settings", [{...}], indirect=True)."""
    return settings.model_copy(update=getattr(request, "param", {}))


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


SMALL_BODIES = {
    "max_body_bytes": 1024,
    "max_case_body_bytes": 2048,
    "max_attachment_bytes": 1024,
    "max_key_backup_bytes": 1024,
}


@pytest.mark.parametrize("settings", [SMALL_BODIES], indirect=True)
def test_every_route_refuses_a_body_over_its_limit(client, settings):
    """The limit holds before routing, authentication or parsing: whatever the method, whoever calls."""
    limit_for = limits_by_route(client.app, settings)
    checked = 0
    for route in api_routes(client.app):
        for method in route.methods:
            path = _concrete(route.path)
            body = b"x" * (limit_for(method, path) + 1)
            response = client.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            assert_problem(response, 413, "payload_too_large")
            checked += 1
    assert checked >= 40


# Lists answered whole, and what bounds them.
UNPAGED_LISTS = {
    "/v1/devices": "the caller's own devices; registrations are rate limited and capped while active",
    "/v1/specialties": "the specialties admins created",
    "/v1/professions": "the fixed list of professions",
    "/v1/webhooks": "the caller's own webhooks, at most max_webhooks_per_user",
}


def test_every_list_is_paged_with_a_capped_limit_or_bounded(client, app):
    document = app.openapi()
    for path, item in document["paths"].items():
        operation = item.get("get")
        if operation is None:
            continue
        schema = (
            operation["responses"]["200"].get("content", {}).get("application/json", {}).get("schema", {})
        )
        if schema.get("type") == "array":
            assert path in UNPAGED_LISTS, f"{path} answers an unbounded list"
            continue
        name = schema.get("$ref", "").rsplit("/", 1)[-1]
        properties = document["components"]["schemas"].get(name, {}).get("properties", {})
        if "items" not in properties:
            continue
        limit = next((p for p in operation.get("parameters", []) if p["name"] == "limit"), None)
        assert limit is not None, f"{path} pages without a limit"
        assert limit["schema"]["maximum"] <= 500, path


def test_a_limit_over_the_maximum_is_refused(client, accounts):
    headers = auth_headers(client, accounts.create(Role.SPECIALIST, specialties=("dermatology",)))
    for path in ("/v1/cases", "/v1/cases/queue", f"/v1/cases/{uuid.uuid4()}/messages"):
        assert_problem(client.get(path, params={"limit": 201}, headers=headers), 422, "invalid_input")


@pytest.mark.parametrize(
    "settings", [{"max_envelopes_per_request": 3, "max_devices_per_user": 4}], indirect=True
)
def test_envelopes_per_share_and_devices_per_user_are_capped(client, accounts):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",))
    colleague = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",), devices=4)
    case = create_case(client, physician, derm.devices, specialty="dermatology")
    detail = client.get(f"/v1/cases/{case['id']}", headers=physician.headers).json()
    body = share_body(physician.device, case["id"], [detail["sealed"]], colleague)
    response = client.post(f"/v1/cases/{case['id']}/envelopes", json=body, headers=physician.headers)
    assert_problem(response, 422, "too_many_envelopes")

    # A fifth active device is refused; revoking one makes room.
    keys = generate_device_keys(Suite.X25519)
    challenge = request_challenge(client, colleague.headers, keys).json()
    body = registration_body(keys, challenge, colleague.id)
    assert_problem(client.post("/v1/devices", json=body, headers=colleague.headers), 409, "too_many_devices")
    client.delete(f"/v1/devices/{colleague.devices[0].id}", headers=colleague.headers)
    challenge = request_challenge(client, colleague.headers, keys).json()
    body = registration_body(keys, challenge, colleague.id)
    assert client.post("/v1/devices", json=body, headers=colleague.headers).status_code == 201


@pytest.mark.parametrize("settings", [{"write_rate_per_minute": 60, "write_burst": 3}], indirect=True)
def test_writes_are_rate_limited_per_user(client, accounts, engine):
    first = accounts.create(Role.PHYSICIAN)
    headers, other = auth_headers(client, first), auth_headers(client, accounts.create(Role.PHYSICIAN))
    keys = generate_device_keys(Suite.X25519)
    for _ in range(3):
        assert request_challenge(client, headers, keys).status_code == 201
    limited = request_challenge(client, headers, keys)
    assert_problem(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    # Reads are not writes, and another user has a bucket of their own.
    assert client.get("/v1/me", headers=headers).status_code == 200
    assert request_challenge(client, other, keys).status_code == 201
    with new_session(engine) as session:
        refused = session.exec(
            select(AuditRecord).where(
                AuditRecord.action == "device.challenge", AuditRecord.actor_id == first.id
            )
        ).all()
    assert sorted(b'"status":429' in row.record for row in refused) == [False, False, False, True]


# One token a minute: on a loaded machine three logins (Argon2id each) may take longer than a second.
@pytest.mark.parametrize("settings", [{"write_rate_per_minute": 1, "write_burst": 2}], indirect=True)
def test_anonymous_writes_are_rate_limited_per_address(client):
    body = {"email": "someone@example.org", "password": "whatever-at-all"}
    statuses = [client.post("/v1/auth/token", json=body).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


@pytest.mark.parametrize("settings", [{"write_rate_per_minute": 1, "write_burst": 2}], indirect=True)
def test_requests_without_a_valid_token_are_rate_limited_per_address_and_audited_until_then(client, engine):
    stolen = {"Authorization": "Bearer not.a.token"}
    answers = [
        client.post("/v1/devices", json={}, headers=stolen),
        client.get("/v1/me", headers=stolen),
        client.get("/v1/me"),
    ]
    assert [answer.status_code for answer in answers] == [401, 401, 429]
    assert_problem(answers[-1], 429, "rate_limited")
    assert int(answers[-1].headers["Retry-After"]) >= 1
    with new_session(engine) as session:
        records = session.exec(select(AuditRecord.action, AuditRecord.outcome)).all()
    # The two refusals within the limit are on record; the flood past it costs no write.
    assert sorted(action for action, _ in records) == ["device.register", "user.read_self"]


@pytest.mark.parametrize("settings", [{"audit_exports_per_hour": 6, "audit_export_burst": 2}], indirect=True)
def test_audit_exports_are_rate_limited_per_officer(client, accounts):
    headers = auth_headers(client, accounts.create(Role.COMPLIANCE_OFFICER))
    for _ in range(2):
        assert client.post("/v1/audit/exports", json={}, headers=headers).status_code == 201
    limited = client.post("/v1/audit/exports", json={}, headers=headers)
    assert_problem(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 500  # one export every ten minutes


def test_a_locked_account_gets_a_clear_error_and_the_refusal_is_recorded(client, accounts, settings, engine):
    account = accounts.create(Role.PHYSICIAN)
    for _ in range(settings.login_max_failures):
        client.post("/v1/auth/token", json={"email": account.email, "password": "wrong password!"})
    locked = client.post("/v1/auth/token", json={"email": account.email, "password": PASSWORD})
    body = assert_problem(locked, 429, "account_locked")
    assert "locked" in body["title"]
    assert (
        settings.login_lockout_seconds - 5
        <= int(locked.headers["Retry-After"])
        <= settings.login_lockout_seconds + 1
    )
    with new_session(engine) as session:
        records = session.exec(
            select(AuditRecord.record).where(
                AuditRecord.action == "auth.login", AuditRecord.actor_id == account.id
            )
        ).all()
    assert sum(b'"status":401' in record for record in records) == settings.login_max_failures
    assert sum(b'"status":429' in record for record in records) == 1


def test_token_buckets_refill_and_stay_bounded():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, what="writes", clock=lambda: now[0])
    limiter.check("a")
    limiter.check("a")
    with pytest.raises(RateLimited) as refused:
        limiter.check("a")
    assert refused.value.headers["Retry-After"] == "1"
    now[0] = 1.0
    limiter.check("a")  # one token back after a second
    RateLimiter(per_minute=0, burst=1, what="off").check("a")  # 0 disables
    for number in range(MAX_KEYS + 10):
        limiter.check(f"user:{number}")
    assert len(limiter._buckets) <= MAX_KEYS

"""Registration, login, refresh, logout, TOTP and throttling, over HTTP."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import select

from app.crypto import totp
from app.models.audit import AuditRecord
from app.models.users import Role, User
from app.runtime.database import new_session
from tests.conftest import PASSWORD, assert_problem, auth_headers, login

REGISTRATION = {
    "email": "Dr.Martin@Example.org",
    "password": "correct horse battery staple",
    "display_name": "Dr Claire Martin",
    "professional_id_kind": "rpps",
    "professional_id": "10000000009",
    "roles": ["physician"],
}


def test_register_creates_a_pending_account(client):
    response = client.post("/v1/auth/register", json=REGISTRATION)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["email"] == "dr.martin@example.org"
    assert body["roles"] == ["physician"]
    assert body["verified_at"] is None
    assert "password" not in response.text


def test_register_refuses_bad_input(client):
    cases = [
        ({"professional_id": "10000000008"}, "professional_id"),  # Luhn check fails
        ({"professional_id_kind": "npi", "professional_id": "1234567890"}, "NPI"),
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"roles": ["admin"]}, "roles"),
        ({"roles": ["specialist"]}, "specialty"),
        ({"unexpected": "field"}, "unexpected"),
    ]
    for change, hint in cases:
        response = client.post("/v1/auth/register", json=REGISTRATION | change)
        body = assert_problem(response, 422, "invalid_input")
        assert hint.lower() in response.text.lower(), (change, body)
        assert "correct horse" not in response.text


def _comparable(registration) -> dict:
    assert registration.status_code == 201, registration.text
    return {key: value for key, value in registration.json().items() if key not in ("id", "created_at")}


def test_registration_answers_the_same_whether_or_not_the_email_or_id_is_taken(client, accounts, engine):
    npi = REGISTRATION | {"professional_id_kind": "npi", "professional_id": "1234567893"}
    first = client.post("/v1/auth/register", json=npi)
    again = client.post("/v1/auth/register", json=npi | {"password": "another password 42"})
    assert _comparable(again) == _comparable(first)
    assert again.json()["id"] != first.json()["id"]
    # The e-mail's account is untouched: its own password still logs in, the second one does not.
    credentials = {"email": npi["email"], "password": npi["password"]}
    assert client.post("/v1/auth/token", json=credentials).status_code == 200
    wrong = {"email": npi["email"], "password": "another password 42"}
    assert_problem(client.post("/v1/auth/token", json=wrong), 401, "invalid_credentials")
    # A professional id already claimed (or verified) is claimed again without a word.
    other = client.post("/v1/auth/register", json=npi | {"email": "other@example.org"})
    assert _comparable(other) == _comparable(first) | {"email": "other@example.org"}


def test_the_admin_sees_a_professional_id_conflict_at_verification(client, accounts):
    admin_headers = auth_headers(client, accounts.create(Role.ADMIN))
    squatter = client.post("/v1/auth/register", json=REGISTRATION | {"email": "squatter@example.org"})
    owner = client.post("/v1/auth/register", json=REGISTRATION)
    verified = client.post(f"/v1/admin/users/{owner.json()['id']}/verify", headers=admin_headers)
    assert verified.status_code == 200
    refused = client.post(f"/v1/admin/users/{squatter.json()['id']}/verify", headers=admin_headers)
    body = assert_problem(refused, 409, "professional_id_verified_elsewhere")
    assert body["holder"] == owner.json()["id"]


def test_register_refuses_unknown_specialty(client):
    body = REGISTRATION | {"roles": ["specialist"], "specialties": ["astrology"]}
    assert_problem(client.post("/v1/auth/register", json=body), 422, "unknown_specialty")


def test_malformed_json_is_a_problem_not_a_crash(client):
    response = client.post(
        "/v1/auth/token", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 422, "invalid_input")


def test_login_refresh_logout(client, accounts):
    account = accounts.create(Role.PHYSICIAN)
    tokens = login(client, account)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/v1/me", headers=headers).json()["id"] == str(account.id)

    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]

    new_headers = {"Authorization": f"Bearer {new['access_token']}"}
    assert client.post("/v1/auth/logout", headers=new_headers).status_code == 204
    # Logout ends the session: its access tokens and refresh tokens stop working at once.
    assert_problem(client.get("/v1/me", headers=headers), 401, "invalid_token")
    assert_problem(
        client.post("/v1/auth/refresh", json={"refresh_token": new["refresh_token"]}),
        401,
        "invalid_refresh_token",
    )


def test_reused_refresh_token_revokes_the_whole_family(client, accounts):
    account = accounts.create(Role.PHYSICIAN)
    first = login(client, account)
    second = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    # The honest client moves on; an old token presented after its successor was used is a replay
    # (the grace for retries ends there: tests/test_concurrency.py).
    third = client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).json()
    reuse = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(reuse, 401, "refresh_token_reused")
    # The thief's replay also kills the honest client's newer tokens.
    assert_problem(
        client.post("/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}),
        401,
        "invalid_refresh_token",
    )
    assert_problem(
        client.get("/v1/me", headers={"Authorization": f"Bearer {third['access_token']}"}),
        401,
        "invalid_token",
    )


def test_wrong_password_and_unknown_user_look_the_same(client, accounts):
    account = accounts.create(Role.PHYSICIAN)
    wrong = client.post("/v1/auth/token", json={"email": account.email, "password": "wrong password!"})
    unknown = client.post("/v1/auth/token", json={"email": "nobody@example.org", "password": "whatever12345"})
    assert (
        assert_problem(wrong, 401, "invalid_credentials")["title"]
        == assert_problem(unknown, 401, "invalid_credentials")["title"]
    )


def test_account_locks_after_repeated_failures_and_is_audited(client, accounts, settings, engine):
    account = accounts.create(Role.PHYSICIAN)
    for _ in range(settings.login_max_failures):
        bad = client.post("/v1/auth/token", json={"email": account.email, "password": "wrong password!"})
        assert_problem(bad, 401, "invalid_credentials")
    locked = client.post("/v1/auth/token", json={"email": account.email, "password": PASSWORD})
    assert_problem(locked, 429, "account_locked")
    assert int(locked.headers["Retry-After"]) > 0
    with new_session(engine) as session:
        failures = session.exec(
            select(AuditRecord).where(AuditRecord.action == "auth.login", AuditRecord.actor_id == account.id)
        ).all()
        assert [row.outcome for row in failures].count("denied") == settings.login_max_failures
        assert all(b"wrong password" not in row.record for row in failures)


def test_the_lockout_answers_the_same_for_unknown_emails(client, accounts, settings):
    account = accounts.create(Role.PHYSICIAN)
    answers = {}
    for email in (account.email, "nobody@example.org"):
        for _ in range(settings.login_max_failures):
            bad = client.post("/v1/auth/token", json={"email": email, "password": "wrong password!"})
            assert_problem(bad, 401, "invalid_credentials")
        locked = client.post("/v1/auth/token", json={"email": email, "password": "wrong password!"})
        answers[email] = assert_problem(locked, 429, "account_locked")
        answers[email].pop("request_id")
    assert answers[account.email] == answers["nobody@example.org"]


def test_a_stranger_locks_an_account_only_for_their_own_address(app, client, accounts, settings):
    account = accounts.create(Role.PHYSICIAN)
    with TestClient(app, client=("203.0.113.66", 4444)) as stranger:
        for _ in range(settings.login_max_failures + 1):
            stranger.post("/v1/auth/token", json={"email": account.email, "password": "wrong password!"})
        locked = stranger.post("/v1/auth/token", json={"email": account.email, "password": PASSWORD})
        assert_problem(locked, 429, "account_locked")
    # The owner, from their own address, logs in as usual.
    assert (
        client.post("/v1/auth/token", json={"email": account.email, "password": PASSWORD}).status_code == 200
    )


def test_address_throttle(client, accounts, settings):
    for attempt in range(settings.login_ip_max_failures):
        client.post(
            "/v1/auth/token", json={"email": f"ghost{attempt}@example.org", "password": "nope-nope-nope"}
        )
    account = accounts.create(Role.PHYSICIAN)
    throttled = client.post("/v1/auth/token", json={"email": account.email, "password": PASSWORD})
    assert_problem(throttled, 429, "too_many_requests")
    assert int(throttled.headers["Retry-After"]) > 0


def test_suspended_user_cannot_log_in(client, accounts):
    account = accounts.create(Role.PHYSICIAN, status="suspended")
    response = client.post("/v1/auth/token", json={"email": account.email, "password": PASSWORD})
    assert_problem(response, 403, "account_not_active")


def test_totp_enrolment_then_required_at_login(client, accounts, engine):
    account = accounts.create(Role.PHYSICIAN)
    headers = auth_headers(client, account)
    enrolment = client.post("/v1/auth/mfa/totp", headers=headers)
    assert enrolment.status_code == 200
    secret_b32 = enrolment.json()["secret"]
    assert enrolment.json()["otpauth_uri"].startswith("otpauth://totp/")
    import base64

    account.totp_secret = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    wrong = client.post("/v1/auth/mfa/totp/confirm", json={"code": "000000"}, headers=headers)
    if wrong.status_code != 204:  # one in a million: 000000 is the current code
        assert_problem(wrong, 422, "totp_code_mismatch")
    confirm = client.post(
        "/v1/auth/mfa/totp/confirm", json={"code": account.next_totp_code()}, headers=headers
    )
    assert confirm.status_code == 204, confirm.text
    assert_problem(client.post("/v1/auth/mfa/totp", headers=headers), 409, "totp_already_enabled")

    no_code = client.post("/v1/auth/token", json={"email": account.email, "password": PASSWORD})
    assert_problem(no_code, 401, "totp_required")
    tokens = login(client, account)
    assert tokens["access_token"]
    # A code that was already used is refused: TOTP codes are single use.
    replay = totp.code_at(account.totp_secret, account._last_step * totp.STEP_SECONDS)
    reused = client.post(
        "/v1/auth/token", json={"email": account.email, "password": PASSWORD, "totp_code": replay}
    )
    assert_problem(reused, 401, "invalid_totp")
    with new_session(engine) as session:
        user = session.get(User, account.id)
        assert user.totp_secret_sealed is not None
        assert account.totp_secret not in user.totp_secret_sealed


def test_expired_access_token_is_refused(client, accounts, app):
    account = accounts.create(Role.PHYSICIAN)
    authenticator = app.state.runtime.authenticator
    login(client, account)
    past = int(time.time()) - int(timedelta(hours=1).total_seconds())
    token = authenticator.tokens.issue(
        {
            "iss": app.state.runtime.settings.public_url,
            "aud": app.state.runtime.settings.token_audience,
            "sub": str(account.id),
            "sid": "00000000-0000-0000-0000-000000000000",
            "iat": past,
            "exp": past + 60,
        }
    )
    assert_problem(client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token")


def test_missing_token_is_401_with_challenge(client):
    response = client.get("/v1/me")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_jwks_publishes_the_signing_key(client, accounts):
    jwks = client.get("/.well-known/jwks.json").json()
    token = login(client, accounts.create(Role.PHYSICIAN))["access_token"]
    from jose import jwt

    kid = jwt.get_unverified_header(token)["kid"]
    assert kid in {key["kid"] for key in jwks["keys"]}
    assert all("d" not in key for key in jwks["keys"])

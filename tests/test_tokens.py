"""The python-jose wrapper refuses every classic JWT forgery."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from jose import jwt

from app.crypto.tokens import TokenError, TokenKeySet, TokenSigningKey
from app.models.users import Role
from tests.conftest import assert_problem, login

AUD, ISS = "confrere-api", "https://confrere.example"


def _claims(**changes):
    now = int(time.time())
    return {"sub": "user", "aud": AUD, "iss": ISS, "iat": now, "exp": now + 60} | changes


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def keys() -> tuple[TokenKeySet, TokenSigningKey]:
    key = TokenSigningKey.generate()
    return TokenKeySet([key]), key


def test_valid_token_verifies(keys):
    key_set, _ = keys
    assert key_set.verify(key_set.issue(_claims()), audience=AUD, issuer=ISS)["sub"] == "user"


def test_alg_none_is_refused(keys):
    key_set, key = keys
    token = f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': key.kid})}.{_b64(_claims())}."
    with pytest.raises(TokenError):
        key_set.verify(token, audience=AUD, issuer=ISS)


def test_hs256_signed_with_the_public_key_is_refused(keys):
    key_set, key = keys
    public_der = key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    header = _b64({"alg": "HS256", "typ": "at+jwt", "kid": key.kid})
    payload = _b64(_claims())
    signature = hmac.new(public_der, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(TokenError):
        key_set.verify(f"{header}.{payload}.{_b64(signature)}", audience=AUD, issuer=ISS)


@pytest.mark.parametrize(
    "claims",
    [
        lambda now: _claims(aud="another-api"),
        lambda now: _claims(iss="https://evil.example"),
        lambda now: _claims(exp=now - 3600),
        lambda now: _claims(iat=now + 61, exp=now + 3600),
        lambda now: _claims(iat=now + 86400, exp=now + 90000),
    ],
    ids=["wrong-audience", "wrong-issuer", "expired", "issued-61s-ahead", "issued-a-day-ahead"],
)
def test_wrong_claims_are_refused(keys, claims):
    key_set, _ = keys
    # Claims made when the test runs, not when it is collected (a full run takes minutes).
    token = key_set.issue(claims(int(time.time()) + 1))
    with pytest.raises(TokenError):
        key_set.verify(token, audience=AUD, issuer=ISS)


def test_a_token_issued_within_a_minute_ahead_is_accepted(keys):
    key_set, _ = keys
    token = key_set.issue(_claims(iat=int(time.time()) + 50, exp=int(time.time()) + 3600))
    assert key_set.verify(token, audience=AUD, issuer=ISS)["sub"] == "user"


@pytest.mark.parametrize("missing", ["exp", "aud", "iss", "sub", "iat"])
def test_tokens_missing_a_required_claim_are_refused(keys, missing):
    key_set, key = keys
    claims = _claims()
    del claims[missing]
    token = jwt.encode(
        claims, key.to_pem().decode(), algorithm="ES256", headers={"kid": key.kid, "typ": "at+jwt"}
    )
    with pytest.raises(TokenError):
        key_set.verify(token, audience=AUD, issuer=ISS)


def test_unknown_kid_and_foreign_key_are_refused(keys):
    key_set, _ = keys
    stranger = TokenKeySet([TokenSigningKey.generate()])
    with pytest.raises(TokenError):
        key_set.verify(stranger.issue(_claims()), audience=AUD, issuer=ISS)


def test_tampered_payload_is_refused(keys):
    key_set, _ = keys
    header, _, signature = key_set.issue(_claims()).split(".")
    forged = f"{header}.{_b64(_claims(sub='admin'))}.{signature}"
    with pytest.raises(TokenError):
        key_set.verify(forged, audience=AUD, issuer=ISS)


def test_rotation_keeps_old_tokens_valid():
    old, new = TokenSigningKey.generate(), TokenSigningKey.generate()
    before = TokenKeySet([old])
    after = TokenKeySet([old, new])
    token = before.issue(_claims())
    assert after.verify(token, audience=AUD, issuer=ISS)["sub"] == "user"
    assert json.loads(base64.urlsafe_b64decode(after.issue(_claims()).split(".")[0] + "=="))["kid"] == new.kid


def test_forged_token_over_http_is_401(client, accounts):
    token = login(client, accounts.create(Role.PHYSICIAN))["access_token"]
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {header}.{payload}.{flipped}"})
    assert_problem(response, 401, "invalid_token")

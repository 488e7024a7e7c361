"""RFC 6238 TOTP (SHA-1, 6 digits, 30 s): what every authenticator app implements."""

from __future__ import annotations

import base64
import os
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

SECRET_BYTES = 20
DIGITS = 6
STEP_SECONDS = 30
# One step either side absorbs clock drift between phone and server.
ALLOWED_DRIFT_STEPS = 1


def new_secret() -> bytes:
    return os.urandom(SECRET_BYTES)


def _totp(secret: bytes) -> TOTP:
    # RFC 6238 with HMAC-SHA1 is what authenticator apps implement; HMAC-SHA1 is not broken.
    return TOTP(secret, DIGITS, SHA1(), STEP_SECONDS, enforce_key_length=True)  # noqa: S303


def code_at(secret: bytes, unix_time: float) -> str:
    return _totp(secret).generate(int(unix_time)).decode()


def matching_step(secret: bytes, code: str, unix_time: float, last_used_step: int | None) -> int | None:
    """The time step the code belongs to, or None; a step at or before the last used one is a replay."""
    if not (len(code) == DIGITS and code.isdigit()):
        return None
    totp = _totp(secret)
    now_step = int(unix_time) // STEP_SECONDS
    for step in range(now_step - ALLOWED_DRIFT_STEPS, now_step + ALLOWED_DRIFT_STEPS + 1):
        if last_used_step is not None and step <= last_used_step:
            continue
        try:
            totp.verify(code.encode(), step * STEP_SECONDS)
        except InvalidToken:
            continue
        return step
    return None


def provisioning_uri(secret: bytes, account: str, issuer: str) -> str:
    label = quote(f"{issuer}:{account}")
    query = urlencode({"secret": base32(secret), "issuer": issuer, "digits": DIGITS, "period": STEP_SECONDS})
    return f"otpauth://totp/{label}?{query}"


def base32(secret: bytes) -> str:
    return base64.b32encode(secret).decode().rstrip("=")

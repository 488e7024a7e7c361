"""Access tokens: ES256 JWTs through python-jose, with its sharp edges filed off in this one module.

python-jose 3.5 tries every key it is given and, without `algorithms`, accepts an HS256 token
"signed" with our public key; by default it lets a token without `aud` or `exp` through. So we pick
the one key by `kid` from our own set, pin ES256, require every registered claim and check `typ`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jwt
from jose.exceptions import ExpiredSignatureError, JOSEError

ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"  # noqa: S105 (RFC 9068 media type)
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ("exp", "iat", "sub", "aud", "iss")
# python-jose checks only that `iat` is a number: a token "issued" later than this is refused here.
MAX_FUTURE_IAT_SECONDS = 60


class TokenError(ValueError):
    pass


class TokenExpired(TokenError):
    """Signed by us and otherwise valid, but past its `exp`: the client should refresh."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class TokenSigningKey:
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> TokenSigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes) -> TokenSigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise TokenError("token signing keys must be P-256")
        return cls(key)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        jwk = {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
        # RFC 7638 thumbprint: stable across restarts and derived from the key alone.
        thumbprint = hashlib.sha256(json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()).digest()
        return {**jwk, "kid": _b64url(thumbprint), "alg": ALGORITHM, "use": "sig"}

    @property
    def kid(self) -> str:
        return self.public_jwk()["kid"]

    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )


class TokenKeySet:
    """The newest key signs; every key in the set still verifies, so rotation logs nobody out."""

    def __init__(self, keys: list[TokenSigningKey]):
        if not keys:
            raise TokenError("at least one token signing key is needed")
        self._signing = keys[-1]
        # Parsed once: python-jose would otherwise load the PEM on every verification. An ES256 key object
        # also cannot be mistaken for an HMAC secret.
        self._verifying = {key.kid: jwk.construct(key.public_pem(), ALGORITHM) for key in keys}
        self._jwks = {"keys": [key.public_jwk() for key in keys]}

    @property
    def jwks(self) -> dict[str, Any]:
        return self._jwks

    def issue(self, claims: dict[str, Any]) -> str:
        missing = [name for name in REQUIRED_CLAIMS if name not in claims]
        if missing:
            raise TokenError(f"claims missing: {missing}")
        return jwt.encode(
            claims,
            self._signing.to_pem().decode(),
            algorithm=ALGORITHM,
            headers={"kid": self._signing.kid, "typ": TOKEN_TYPE},
        )

    def verify(self, token: str, *, audience: str, issuer: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError as error:
            raise TokenError("malformed token") from error
        if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
            raise TokenError("unexpected token algorithm or type")
        public_key = self._verifying.get(header.get("kid", ""))
        if public_key is None:
            raise TokenError("unknown signing key")
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=issuer,
                options={f"require_{name}": True for name in REQUIRED_CLAIMS} | {"leeway": LEEWAY_SECONDS},
            )
        except ExpiredSignatureError as error:
            raise TokenExpired("the token has expired") from error
        except JOSEError as error:
            raise TokenError(str(error)) from error
        if claims["iat"] > time.time() + MAX_FUTURE_IAT_SECONDS:
            raise TokenError("the token was issued in the future")
        return claims

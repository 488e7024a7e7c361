"""E2EE suites, device keys, errors and the device registration proof (spec: docs/e2ee.md).

Only `cryptography` primitives; no I/O. Shared by the server (validation) and the reference client.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519

SEED_LENGTH = 32
SIGNATURE_LENGTH = 64
SIGNING_PUBLIC_KEY_LENGTH = 32
CONTENT_KEY_LENGTH = 32
MIN_CHALLENGE_LENGTH = 16

_X25519_LENGTH = 32
_MLKEM768_PUBLIC_LENGTH = 1184
_XWING_EXPANDED_LENGTH = 96
# Version 2 of the registration message adds the KEM proof; version 1 (signing key only) is refused.
_REGISTRATION_LABEL = b"confrere/v2/device-registration"
_KEM_PROOF_LABEL = b"confrere/v2/device-kem-proof"
KEM_PROOF_LENGTH = 32

# y-coordinates of the 8 small-order Edwards25519 points (each y covers both signs of x). OpenSSL verifies
# against such keys, and a key of small order lets anyone forge signatures with probability 1/8.
_ED25519_SMALL_ORDER_Y = frozenset(
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)
_ED25519_P = 2**255 - 19


class E2EEError(ValueError):
    """A refusal with a stable snake_case `code` (the API problem code) and a message free of secrets."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code.replace("_", " "))
        self.code = code


class Suite(StrEnum):
    X25519 = "x25519"
    XWING = "xwing"

    @classmethod
    def _missing_(cls, value: object) -> Suite:
        # Enum re-raises a ValueError subclass from _missing_ unchanged, so Suite("...") carries our code.
        raise E2EEError("unknown_suite", "unknown E2EE suite")

    @property
    def hpke(self) -> hpke.Suite:
        return _HPKE_SUITES[self]


_HPKE_SUITES = {
    Suite.X25519: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
    Suite.XWING: hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
}

KEM_PUBLIC_KEY_LENGTH: dict[Suite, int] = {
    Suite.X25519: _X25519_LENGTH,
    Suite.XWING: _MLKEM768_PUBLIC_LENGTH + _X25519_LENGTH,
}
# HPKE enc || AES-256-GCM(content key) with its 16-byte tag; enc is 32 B (X25519) or 1120 B (X-Wing).
WRAPPED_KEY_LENGTH: dict[Suite, int] = {
    Suite.X25519: 32 + CONTENT_KEY_LENGTH + 16,
    Suite.XWING: 1120 + CONTENT_KEY_LENGTH + 16,
}

KemPublicKey = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
KemPrivateKey = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey


def length_prefixed(label: bytes, *fields: bytes) -> bytes:
    """`label || (u32be(len(f)) || f)*`: the unambiguous binary framing of every non-JSON signed input."""
    return label + b"".join(len(f).to_bytes(4, "big") + f for f in fields)


def check_wrapped_key_length(suite: Suite, wrapped_key: bytes, code: str) -> None:
    """A wrapped 32-byte key (HPKE `enc || ct`) has one length per suite; `code` names the object refused."""
    if len(wrapped_key) != WRAPPED_KEY_LENGTH[suite]:
        raise E2EEError(code, f"a {suite} wrapped key is {WRAPPED_KEY_LENGTH[suite]} bytes")


def hpke_seal(suite: Suite, kem_public: bytes, plaintext: bytes, info: bytes) -> bytes:
    """HPKE single-shot base mode to a raw KEM public key of `suite` (empty aad): `enc || ct`."""
    suite = Suite(suite)
    return suite.hpke.encrypt(plaintext, load_kem_public_key(suite, kem_public), info=info)


def hpke_open(keys: DeviceKeys, sealed: bytes, info: bytes, message: str) -> bytes:
    """Open `hpke_seal`'s output with a device's KEM key; E2EEError("decryption_failed", message) if not."""
    try:
        return keys.suite.hpke.decrypt(sealed, keys.kem_private_key(), info=info)
    except (InvalidTag, ValueError):
        raise E2EEError("decryption_failed", message) from None


def _x25519_public(raw: bytes) -> x25519.X25519PublicKey:
    key = x25519.X25519PublicKey.from_public_bytes(raw)
    try:
        # A low-order point yields an all-zero shared secret, which OpenSSL refuses: catch it at the door
        # instead of failing later inside a sender's seal().
        x25519.X25519PrivateKey.generate().exchange(key)
    except ValueError:
        raise E2EEError("invalid_key", "X25519 public key of low order") from None
    return key


def load_kem_public_key(suite: Suite, raw: bytes) -> KemPublicKey:
    """Parse a raw KEM public key of `suite`; E2EEError("invalid_key") when it is malformed."""
    suite = Suite(suite)
    if len(raw) != KEM_PUBLIC_KEY_LENGTH[suite]:
        raise E2EEError("invalid_key", f"{suite} KEM public key must be {KEM_PUBLIC_KEY_LENGTH[suite]} bytes")
    if suite is Suite.X25519:
        return _x25519_public(raw)
    try:
        mlkem_public = mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PUBLIC_LENGTH])
    except ValueError:
        raise E2EEError("invalid_key", "malformed ML-KEM-768 public key") from None
    return hpke.MLKEM768X25519PublicKey(mlkem_public, _x25519_public(raw[_MLKEM768_PUBLIC_LENGTH:]))


def load_signing_public_key(raw: bytes) -> ed25519.Ed25519PublicKey:
    """Parse a raw Ed25519 public key, refusing non-canonical and small-order encodings."""
    if len(raw) != SIGNING_PUBLIC_KEY_LENGTH:
        raise E2EEError("invalid_key", "Ed25519 public key must be 32 bytes")
    y = bytes(raw[:31]) + bytes([raw[31] & 0x7F])
    if int.from_bytes(y, "little") >= _ED25519_P or y in _ED25519_SMALL_ORDER_Y:
        raise E2EEError("invalid_key", "Ed25519 public key is non-canonical or of small order")
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise E2EEError("invalid_key", "malformed Ed25519 public key") from None


def verify_signature(public_raw: bytes, signature: bytes, message: bytes) -> None:
    """Ed25519 verification; E2EEError("invalid_signature") on any failure."""
    key = load_signing_public_key(public_raw)
    if len(signature) != SIGNATURE_LENGTH:
        raise E2EEError("invalid_signature", "Ed25519 signature must be 64 bytes")
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise E2EEError("invalid_signature", "signature does not verify") from None


def _xwing_expand(seed: bytes) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    # X-Wing (draft-connolly-cfrg-xwing-kem): SHAKE256(seed, 96) = ML-KEM-768 seed d||z || X25519 key.
    shake = hashes.Hash(hashes.SHAKE256(_XWING_EXPANDED_LENGTH))
    shake.update(seed)
    expanded = shake.finalize()
    return (
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        x25519.X25519PrivateKey.from_private_bytes(expanded[64:]),
    )


@dataclass(frozen=True)
class DeviceKeys:
    """A device's private keys: 32-byte seeds, kept out of repr so they never reach a log line."""

    suite: Suite
    signing_private: bytes = field(repr=False)
    kem_private: bytes = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "suite", Suite(self.suite))
        if len(self.signing_private) != SEED_LENGTH or len(self.kem_private) != SEED_LENGTH:
            raise E2EEError("invalid_key", "device private keys are 32-byte seeds")

    def signing_key(self) -> ed25519.Ed25519PrivateKey:
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.signing_private)

    def kem_private_key(self) -> KemPrivateKey:
        if self.suite is Suite.X25519:
            return x25519.X25519PrivateKey.from_private_bytes(self.kem_private)
        return hpke.MLKEM768X25519PrivateKey(*_xwing_expand(self.kem_private))

    @property
    def signing_public(self) -> bytes:
        return self.signing_key().public_key().public_bytes_raw()

    @property
    def kem_public(self) -> bytes:
        if self.suite is Suite.X25519:
            return (
                x25519.X25519PrivateKey.from_private_bytes(self.kem_private).public_key().public_bytes_raw()
            )
        # The HPKE X-Wing key object exposes no bytes, so serialize its two components.
        mlkem_private, x_private = _xwing_expand(self.kem_private)
        return mlkem_private.public_key().public_bytes_raw() + x_private.public_key().public_bytes_raw()

    def sign(self, message: bytes) -> bytes:
        return self.signing_key().sign(message)


def generate_device_keys(suite: Suite) -> DeviceKeys:
    return DeviceKeys(
        suite=Suite(suite), signing_private=os.urandom(SEED_LENGTH), kem_private=os.urandom(SEED_LENGTH)
    )


def kem_proof_info(challenge: bytes, user_id: str, suite: Suite, kem_public: bytes) -> bytes:
    """HPKE `info` of the registration's KEM challenge: binds it to the challenge, account, suite and key."""
    return length_prefixed(_KEM_PROOF_LABEL, challenge, user_id.encode(), Suite(suite).encode(), kem_public)


def seal_kem_challenge(
    secret: bytes, challenge: bytes, user_id: str, suite: Suite, kem_public: bytes
) -> bytes:
    """Server side: HPKE-seal the registration's KEM secret to the key being registered (`enc || ct`)."""
    suite = Suite(suite)
    _check_challenge(challenge, user_id)
    if len(secret) != KEM_PROOF_LENGTH:
        raise E2EEError("invalid_challenge", f"the KEM secret is {KEM_PROOF_LENGTH} bytes")
    return hpke_seal(suite, kem_public, secret, kem_proof_info(challenge, user_id, suite, kem_public))


def open_kem_challenge(keys: DeviceKeys, sealed_secret: bytes, challenge: bytes, user_id: str) -> bytes:
    """Device side: decapsulate the server's KEM challenge; only the holder of the KEM private key can."""
    info = kem_proof_info(challenge, user_id, keys.suite, keys.kem_public)
    secret = hpke_open(keys, sealed_secret, info, "the KEM challenge does not open with this device's key")
    if len(secret) != KEM_PROOF_LENGTH:
        raise E2EEError("invalid_challenge", f"the KEM secret is {KEM_PROOF_LENGTH} bytes")
    return secret


def _check_challenge(challenge: bytes, user_id: str) -> None:
    if len(challenge) < MIN_CHALLENGE_LENGTH:
        raise E2EEError("invalid_challenge", f"challenge must be at least {MIN_CHALLENGE_LENGTH} bytes")
    if not user_id:
        raise E2EEError("invalid_challenge", "user id is empty")


def device_registration_message(
    challenge: bytes, user_id: str, suite: Suite, signing_public: bytes, kem_public: bytes, kem_proof: bytes
) -> bytes:
    """The bytes a device signs at registration (version 2): both public keys, and the KEM secret it
    decapsulated, so one signature proves possession of the signing key and of the KEM key."""
    suite = Suite(suite)
    load_signing_public_key(signing_public)
    load_kem_public_key(suite, kem_public)
    _check_challenge(challenge, user_id)
    if len(kem_proof) != KEM_PROOF_LENGTH:
        raise E2EEError("invalid_kem_proof", f"the KEM proof is {KEM_PROOF_LENGTH} bytes")
    return length_prefixed(
        _REGISTRATION_LABEL,
        challenge,
        user_id.encode(),
        suite.encode(),
        signing_public,
        kem_public,
        kem_proof,
    )


def sign_device_registration(keys: DeviceKeys, challenge: bytes, user_id: str, kem_proof: bytes) -> bytes:
    message = device_registration_message(
        challenge, user_id, keys.suite, keys.signing_public, keys.kem_public, kem_proof
    )
    return keys.sign(message)


def verify_device_registration(
    signature: bytes,
    challenge: bytes,
    user_id: str,
    suite: Suite,
    signing_public: bytes,
    kem_public: bytes,
    kem_proof: bytes,
) -> None:
    message = device_registration_message(challenge, user_id, suite, signing_public, kem_public, kem_proof)
    verify_signature(signing_public, signature, message)

"""Per-circle pseudonym keys (docs/e2ee.md section 20.5): an Ed25519 key per device and pseudonym, bound to
the device by a signature the server keeps as evidence of the author. Re-exported by app.crypto.circles.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ed25519

from app.crypto.circle_objects import CircleError, PseudonymBinding, circle_errors, sha256_digest
from app.crypto.e2ee import DeviceKeys
from app.crypto.e2ee_keys import SEED_LENGTH, load_signing_public_key, verify_signature

PSEUDONYM_LABEL = b"confrere/circle/v1/pseudonym\x00"


@dataclass(frozen=True)
class PseudonymKey:
    """A device's Ed25519 key for one pseudonym (a 32-byte seed kept out of repr); it signs posts."""

    private: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.private) != SEED_LENGTH:
            raise CircleError("invalid_key", "a pseudonym key is a 32-byte seed")

    @classmethod
    def generate(cls) -> PseudonymKey:
        return cls(os.urandom(SEED_LENGTH))

    @property
    def public(self) -> bytes:
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.private).public_key().public_bytes_raw()

    def sign(self, message: bytes) -> bytes:
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.private).sign(message)


def pseudonym_signing_input(binding_bytes: bytes) -> bytes:
    return PSEUDONYM_LABEL + binding_bytes


@circle_errors
def pseudonym_binding(
    circle_id: str, device_id: str, pseudonym_id: str, public_key: bytes
) -> PseudonymBinding:
    load_signing_public_key(public_key)
    return PseudonymBinding(
        circle_id=circle_id,
        device_id=device_id,
        pseudonym_id=pseudonym_id,
        public_key_sha256=sha256_digest(public_key).hex(),
    )


def sign_pseudonym_binding(binding: PseudonymBinding, keys: DeviceKeys) -> tuple[bytes, bytes]:
    """Return `(binding_bytes, signature)` signed with the device's signing key."""
    binding_bytes = binding.to_bytes()
    return binding_bytes, keys.sign(pseudonym_signing_input(binding_bytes))


@circle_errors
def check_pseudonym_binding(
    binding_bytes: bytes, signature: bytes, device_signing_public: bytes, public_key: bytes
) -> PseudonymBinding:
    """Server side: strict parse, the device's signature, and that the binding names this pseudonym key.

    The caller still checks the device is the caller's active device, and the circle and pseudonym ids."""
    binding = PseudonymBinding.parse(binding_bytes)
    verify_signature(device_signing_public, signature, pseudonym_signing_input(binding_bytes))
    load_signing_public_key(public_key)
    if binding.public_key_sha256 != sha256_digest(public_key).hex():
        raise CircleError("invalid_pseudonym_binding", "the binding names another pseudonym key")
    return binding

"""Seals small server-side secrets (TOTP seeds) at rest with AES-256-GCM under a key derived from the
server secret, bound to what they belong to so a sealed value cannot be moved to another row; and derives
keyed values (HMAC-SHA256 under another key from the same secret) that only this server can compute."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


class SealingError(ValueError):
    pass


class SecretSealer:
    def __init__(self, server_secret: bytes):
        key = HKDF(hashes.SHA256(), 32, salt=None, info=b"confrere/v1/server-sealing").derive(server_secret)
        self._aead = AESGCM(key)
        self._mac_key = HKDF(hashes.SHA256(), 32, salt=None, info=b"confrere/v1/server-mac").derive(
            server_secret
        )

    def derive(self, value: bytes, context: bytes) -> bytes:
        """HMAC-SHA256 of `value` under the server's MAC key, bound to `context` (length-prefixed)."""
        mac = hmac.HMAC(self._mac_key, hashes.SHA256())
        mac.update(len(context).to_bytes(2, "big") + context + value)
        return mac.finalize()

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context)
        except (InvalidTag, ValueError) as error:
            raise SealingError("sealed secret does not open under this server key") from error

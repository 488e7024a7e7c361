"""C2SP tlog-cosignature (c2sp.org/tlog-cosignature), Ed25519 type `cosignature/v1`: a witness's statement
that, as of its timestamp, this checkpoint is the largest consistent tree head it has seen of the log.

- key id: SHA-256(name || "\\n" || 0x04 || Ed25519 public key)[:4];
- signature line: `— <name> base64(key id || u64 big-endian timestamp || Ed25519 signature)`;
- signed message: `cosignature/v1\\n` `time <timestamp>\\n` then the whole checkpoint text (note body).

Key strings follow the signed-note encodings with algorithm byte 0x04: verifier `name+<key id hex>+
base64(0x04 || public key)`, signer `PRIVATE+KEY+name+<key id hex>+base64(0x04 || seed)`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from app.crypto.signed_note import (
    ED25519_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    KEY_ID_SIZE,
    SIGNATURE_PREFIX,
    SIGNER_KEY_PREFIX,
    NoteError,
    check_key_name,
    key_id,
    note_parts,
    split_key,
)

ALG_COSIGNATURE_V1 = 0x04
HEADER = b"cosignature/v1\n"
TIMESTAMP_SIZE = 8
MAX_TIMESTAMP = (1 << 63) - 1


def signed_message(checkpoint_text: str, timestamp: int) -> bytes:
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is out of range")
    return HEADER + f"time {timestamp}\n".encode() + checkpoint_text.encode()


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class WitnessKey:
    """A witness's public key, as the log and offline verifiers are configured with it."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def from_key_string(cls, vkey: str) -> WitnessKey:
        name, claimed_id, raw = split_key(vkey.strip().split("+", 2), "witness", ALG_COSIGNATURE_V1)
        if key_id(name, raw, ALG_COSIGNATURE_V1) != claimed_id:
            raise NoteError(f"malformed witness key: key id {claimed_id.hex()} does not match the key")
        return cls(name, claimed_id, Ed25519PublicKey.from_public_bytes(raw))

    @property
    def key_string(self) -> str:
        encoded = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + _raw(self.public_key)).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def timestamp_of(self, checkpoint_text: str, signature: bytes) -> int | None:
        """The timestamp of a valid cosignature (`key id || timestamp || signature`) by this key, or None."""
        if len(signature) != KEY_ID_SIZE + TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
            return None
        if signature[:KEY_ID_SIZE] != self.key_id:
            return None
        timestamp = int.from_bytes(signature[KEY_ID_SIZE : KEY_ID_SIZE + TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            return None
        try:
            self.public_key.verify(
                signature[KEY_ID_SIZE + TIMESTAMP_SIZE :], signed_message(checkpoint_text, timestamp)
            )
        except InvalidSignature:
            return None
        return timestamp


@dataclass(frozen=True)
class Cosignature:
    witness: WitnessKey
    timestamp: int
    line: str  # the note signature line, without its newline


def cosignatures(note: bytes, witnesses: list[WitnessKey]) -> tuple[str, list[Cosignature]]:
    """The note's text and its valid cosignatures by the given witnesses; other signatures are ignored."""
    text, signatures = note_parts(note)
    found = []
    for name, signature in signatures:
        for witness in witnesses:
            if witness.name != name:
                continue
            timestamp = witness.timestamp_of(text, signature)
            if timestamp is not None:
                line = f"{SIGNATURE_PREFIX}{name} {base64.b64encode(signature).decode()}"
                found.append(Cosignature(witness, timestamp, line))
    return text, found


class WitnessSigner:
    """A witness's private key; it never leaves the witness's machine."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = name
        self._private_key = private_key
        self.key_id = key_id(name, _raw(private_key.public_key()), ALG_COSIGNATURE_V1)

    @classmethod
    def generate(cls, name: str) -> WitnessSigner:
        check_key_name(name)
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_key_string(cls, skey: str) -> WitnessSigner:
        if not skey.startswith(SIGNER_KEY_PREFIX):
            raise NoteError(f"malformed witness signer key: must start with {SIGNER_KEY_PREFIX}")
        fields = skey.strip().removeprefix(SIGNER_KEY_PREFIX).split("+", 2)
        name, claimed_id, seed = split_key(fields, "witness signer", ALG_COSIGNATURE_V1)
        if len(seed) != ED25519_KEY_SIZE:
            raise NoteError("an Ed25519 seed is 32 bytes")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id != claimed_id:
            raise NoteError(f"malformed witness signer key: key id {claimed_id.hex()} does not match the key")
        return signer

    @property
    def key_string(self) -> str:
        seed = self._private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + seed).decode()
        return f"{SIGNER_KEY_PREFIX}{self.name}+{self.key_id.hex()}+{encoded}"

    def verifier(self) -> WitnessKey:
        return WitnessKey(self.name, self.key_id, self._private_key.public_key())

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """The cosignature line (without its newline) over a checkpoint's text."""
        signature = self._private_key.sign(signed_message(checkpoint_text, timestamp))
        payload = self.key_id + timestamp.to_bytes(TIMESTAMP_SIZE, "big") + signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(payload).decode()}"

    def __repr__(self) -> str:
        return f"WitnessSigner({self.name}+{self.key_id.hex()})"  # never the seed

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
from typing import ClassVar

from cryptography.exceptions import InvalidSignature

from app.crypto.signed_note import (
    ED25519_SIGNATURE_SIZE,
    KEY_ID_SIZE,
    SIGNATURE_PREFIX,
    NoteError,
    NoteSigner,
    NoteVerifier,
    note_parts,
)

ALG_COSIGNATURE_V1 = 0x04
HEADER = b"cosignature/v1\n"
TIMESTAMP_SIZE = 8
MAX_TIMESTAMP = (1 << 63) - 1


def signed_message(checkpoint_text: str, timestamp: int) -> bytes:
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is out of range")
    return HEADER + f"time {timestamp}\n".encode() + checkpoint_text.encode()


@dataclass(frozen=True)
class WitnessKey(NoteVerifier):
    """A witness's public key, as the log and offline verifiers are configured with it."""

    ALGORITHM: ClassVar[int] = ALG_COSIGNATURE_V1

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


class WitnessSigner(NoteSigner):
    """A witness's private key; it never leaves the witness's machine."""

    VERIFIER: ClassVar[type[NoteVerifier]] = WitnessKey

    def verifier(self) -> WitnessKey:
        return WitnessKey(self.name, self.key_id, self._private_key.public_key())

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """The cosignature line (without its newline) over a checkpoint's text."""
        signature = self.sign(signed_message(checkpoint_text, timestamp))
        payload = self.key_id + timestamp.to_bytes(TIMESTAMP_SIZE, "big") + signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(payload).decode()}"

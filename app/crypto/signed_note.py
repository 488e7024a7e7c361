"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and checkpoints (c2sp.org/tlog-checkpoint).

Key strings use the golang.org/x/mod/sumdb/note encodings, so keys and notes interoperate with Go tools:
verifier key `name+<key id hex>+base64(0x01 || public key)`, signer key
`PRIVATE+KEY+name+<key id hex>+base64(0x01 || seed)`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import ClassVar, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from app.crypto.merkle import HASH_SIZE

ALG_ED25519 = 0x01
KEY_ID_SIZE = 4
ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
SIGNER_KEY_PREFIX = "PRIVATE+KEY+"
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
# The spec asks verifiers to accept at least 16 signatures; the Go implementation stops at 100.
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 20

_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """A note, key or checkpoint is malformed, or a note lacks a valid signature by the expected key."""


class SignatureError(NoteError):
    """The note is well formed but not validly signed by the expected key."""


def _b64decode_strict(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"invalid base64 {text!r}") from exc
    # Only the canonical encoding is accepted, so a note or key has exactly one textual form.
    if base64.b64encode(raw).decode() != text:
        raise NoteError(f"non-canonical base64 {text!r}")
    return raw


def check_key_name(name: str) -> None:
    if not name or "+" in name or any(char.isspace() for char in name):
        raise NoteError(f"invalid key name {name!r}: must be non-empty, without spaces or '+'")


def key_id(name: str, public_key: bytes, algorithm: int = ALG_ED25519) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([algorithm]) + public_key).digest()[:KEY_ID_SIZE]


def _raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def split_key(fields: list[str], kind: str, algorithm: int = ALG_ED25519) -> tuple[str, bytes, bytes]:
    """(name, key id, key bytes without the algorithm byte) from `name`, `hex id`, `base64` fields."""
    if len(fields) != 3:
        raise NoteError(f"malformed {kind} key: expected name+keyid+key")
    name, id_hex, encoded = fields
    check_key_name(name)
    if not _KEY_ID_HEX.fullmatch(id_hex):
        raise NoteError(f"malformed {kind} key: key id {id_hex!r} is not 8 lowercase hex digits")
    raw = _b64decode_strict(encoded)
    if len(raw) != 1 + ED25519_KEY_SIZE or raw[0] != algorithm:
        raise NoteError(f"malformed {kind} key: not an Ed25519 key")
    return name, bytes.fromhex(id_hex), raw[1:]


@dataclass(frozen=True)
class NoteVerifier:
    # The signature type byte of the key encoding and key id (a witness's cosignature key is another).
    ALGORITHM: ClassVar[int] = ALG_ED25519

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def from_key_string(cls, vkey: str) -> Self:
        name, claimed_id, raw = split_key(vkey.strip().split("+", 2), "verifier", cls.ALGORITHM)
        if key_id(name, raw, cls.ALGORITHM) != claimed_id:
            raise NoteError(f"malformed verifier key: key id {claimed_id.hex()} does not match the key")
        return cls(name, claimed_id, Ed25519PublicKey.from_public_bytes(raw))

    @property
    def key_string(self) -> str:
        encoded = base64.b64encode(bytes([self.ALGORITHM]) + _raw_public_key(self.public_key)).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class NoteSigner:
    VERIFIER: ClassVar[type[NoteVerifier]] = NoteVerifier

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_key_name(name)
        self.name = name
        self._private_key = private_key
        self.key_id = key_id(name, _raw_public_key(private_key.public_key()), self.VERIFIER.ALGORITHM)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Self:
        if len(seed) != ED25519_KEY_SIZE:
            raise NoteError("an Ed25519 seed is 32 bytes")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls, name: str) -> Self:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_key_string(cls, skey: str) -> Self:
        skey = skey.strip()
        if not skey.startswith(SIGNER_KEY_PREFIX):
            raise NoteError(f"malformed signer key: must start with {SIGNER_KEY_PREFIX}")
        fields = skey.removeprefix(SIGNER_KEY_PREFIX).split("+", 2)
        name, claimed_id, seed = split_key(fields, "signer", cls.VERIFIER.ALGORITHM)
        signer = cls.from_seed(name, seed)
        if signer.key_id != claimed_id:
            raise NoteError(f"malformed signer key: key id {claimed_id.hex()} does not match the key")
        return signer

    @property
    def key_string(self) -> str:
        seed = self._private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(bytes([self.VERIFIER.ALGORITHM]) + seed).decode()
        return f"{SIGNER_KEY_PREFIX}{self.name}+{self.key_id.hex()}+{encoded}"

    def verifier(self) -> NoteVerifier:
        return self.VERIFIER(self.name, self.key_id, self._private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self._private_key.sign(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}+{self.key_id.hex()})"  # never the seed


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("malformed note: text must end with a newline")
    if any(ord(char) < 0x20 and char != "\n" for char in text):
        raise NoteError("malformed note: control characters other than newline")


def sign_note(text: str, signer: NoteSigner) -> bytes:
    _check_text(text)
    message = text.encode()
    signature = base64.b64encode(signer.key_id + signer.sign(message)).decode()
    return message + f"\n{SIGNATURE_PREFIX}{signer.name} {signature}\n".encode()


def open_note(note: bytes, verifier: NoteVerifier) -> str:
    """The note text if the verifier's key signed it; signatures by other keys are ignored (C2SP rule)."""
    text, signatures = note_parts(note)
    verified = False
    for name, signature in signatures:
        if name != verifier.name or signature[:KEY_ID_SIZE] != verifier.key_id:
            continue
        if not verifier.verify(text.encode(), signature[KEY_ID_SIZE:]):
            raise SignatureError(f"bad signature for key {verifier.name}+{verifier.key_id.hex()}")
        verified = True
    if not verified:
        raise SignatureError(f"no valid signature for key {verifier.name}+{verifier.key_id.hex()}")
    return text


def note_parts(note: bytes) -> tuple[str, list[tuple[str, bytes]]]:
    """(text, [(key name, key id || signature)]) of a well-formed note; no signature is checked here."""
    if len(note) > MAX_NOTE_BYTES:
        raise NoteError(f"malformed note: larger than {MAX_NOTE_BYTES} bytes")
    try:
        decoded = note.decode()
    except UnicodeDecodeError as exc:
        raise NoteError("malformed note: not UTF-8") from exc
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, signature_block = decoded[: split + 1], decoded[split + 2 :]
    _check_text(text)
    _check_text(signature_block)
    lines = signature_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return text, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> tuple[str, bytes]:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(f"malformed note: signature line {line[:40]!r} does not start with an em dash")
    fields = line.removeprefix(SIGNATURE_PREFIX).split(" ")
    if len(fields) != 2:
        raise NoteError(f"malformed note: signature line {line[:40]!r} is not '— name signature'")
    name, encoded = fields
    check_key_name(name)
    signature = _b64decode_strict(encoded)
    if len(signature) <= KEY_ID_SIZE:
        raise NoteError(f"malformed note: signature by {name} is too short")
    return name, signature


@dataclass(frozen=True)
class Checkpoint:
    """The text of a C2SP tlog checkpoint: origin, tree size, root hash, optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("malformed checkpoint: origin must be one non-empty line")
        if self.size < 0:
            raise NoteError("malformed checkpoint: negative tree size")
        if len(self.root_hash) != HASH_SIZE:
            raise NoteError(f"malformed checkpoint: root hash must be {HASH_SIZE} bytes")
        if any(not line or "\n" in line for line in self.extensions):
            raise NoteError("malformed checkpoint: extension lines must be non-empty single lines")

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise NoteError("malformed checkpoint: text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("malformed checkpoint: needs origin, size and root hash lines")
        origin, size, root, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise NoteError(
                f"malformed checkpoint: tree size {size!r} is not a decimal without leading zeros"
            )
        root_hash = _b64decode_strict(root)
        if len(root_hash) != HASH_SIZE:
            raise NoteError(f"malformed checkpoint: root hash is {len(root_hash)} bytes, not {HASH_SIZE}")
        return cls(origin, int(size), root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> bytes:
    return sign_note(checkpoint.to_text(), signer)


def open_checkpoint(note: bytes, verifier: NoteVerifier) -> Checkpoint:
    """A checkpoint signed by the verifier's key, whose origin is that key's name (how Confrere signs)."""
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not the key name {verifier.name!r}")
    return checkpoint

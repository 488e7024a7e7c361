"""Peer circles (normative spec: docs/e2ee.md section 20): a key per circle epoch, wrapped with HPKE for every
member device and signed by the member who rotates it; posts sealed once with a key derived from the epoch
key; per-circle pseudonym keys bound to a device. Composed only from `cryptography`; no I/O.

Server side (public keys only): `check_epoch_upload`, `check_grant_commitment`, `check_post_upload`,
`check_pseudonym_binding`. Client side: `new_epoch`, `open_epoch`, `seal_post`, `open_post`,
`pseudonym_binding`, `sign_pseudonym_binding`, `PseudonymKey`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.crypto.circle_objects import (
    AUTHOR_KINDS,
    CIRCLE_FORMAT,
    EPOCH_KINDS,
    POST_KINDS,
    CircleError,
    EpochStatement,
    PostHeader,
    PostManifest,
    PseudonymBinding,
    WrapEntry,
    circle_errors,
    sha256_digest,
)
from app.crypto.circle_pseudonyms import (
    PSEUDONYM_LABEL,
    PseudonymKey,
    check_pseudonym_binding,
    pseudonym_binding,
    pseudonym_signing_input,
    sign_pseudonym_binding,
)
from app.crypto.e2ee import (
    NONCE_LENGTH,
    DeviceKeys,
    Recipient,
    Suite,
    check_ciphertext,
    decrypt_content,
    encrypt_content,
)
from app.crypto.e2ee_keys import (
    check_wrapped_key_length,
    hpke_open,
    hpke_seal,
    length_prefixed,
    verify_signature,
)

__all__ = [
    "AUTHOR_KINDS",
    "CIRCLE_FORMAT",
    "EPOCH_KEY_LENGTH",
    "EPOCH_KINDS",
    "POST_KINDS",
    "PSEUDONYM_LABEL",
    "CircleError",
    "EpochStatement",
    "PostContext",
    "PostHeader",
    "PostManifest",
    "PseudonymBinding",
    "PseudonymKey",
    "SealedEpoch",
    "SealedPost",
    "Signer",
    "WrapEntry",
    "check_epoch_upload",
    "check_grant_commitment",
    "check_post_context",
    "check_post_upload",
    "check_pseudonym_binding",
    "epoch_key_commitment",
    "epoch_signing_input",
    "epoch_wrap_info",
    "new_epoch",
    "open_epoch",
    "open_post",
    "post_key",
    "post_signing_input",
    "pseudonym_binding",
    "pseudonym_signing_input",
    "seal_post",
    "sign_pseudonym_binding",
    "wrap_epoch_key",
]

EPOCH_KEY_LENGTH = 32
EPOCH_KEY_LABEL = b"confrere/circle/v1/epoch-key"
EPOCH_COMMITMENT_LABEL = b"confrere/circle/v1/epoch-commitment"
EPOCH_STATEMENT_LABEL = b"confrere/circle/v1/epoch\x00"
POST_KEY_LABEL = b"confrere/circle/v1/post-key"
POST_LABEL = b"confrere/circle/v1/post\x00"


class Signer(Protocol):
    """A device's keys or a pseudonym key: whatever signs a post."""

    def sign(self, message: bytes) -> bytes: ...


def _epoch_text(epoch: int) -> bytes:
    return str(epoch).encode()


# --- Epochs -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SealedEpoch:
    statement: bytes
    signature: bytes
    wraps: dict[str, bytes]
    epoch_key: bytes = field(repr=False)


def epoch_key_commitment(epoch_key: bytes, circle_id: str, epoch: int) -> bytes:
    """HMAC-SHA256 keyed by the epoch key over the circle and epoch: a wrap cannot carry another key."""
    message = length_prefixed(EPOCH_COMMITMENT_LABEL, circle_id.encode(), _epoch_text(epoch))
    return hmac.new(epoch_key, message, hashlib.sha256).digest()


def epoch_wrap_info(suite: Suite, circle_id: str, epoch: int, device_id: str) -> bytes:
    """HPKE `info` of a wrap: binds it to its suite, circle, epoch and recipient device."""
    return length_prefixed(
        EPOCH_KEY_LABEL, Suite(suite).encode(), circle_id.encode(), _epoch_text(epoch), device_id.encode()
    )


def epoch_signing_input(statement_bytes: bytes) -> bytes:
    return EPOCH_STATEMENT_LABEL + statement_bytes


def wrap_epoch_key(
    epoch_key: bytes, circle_id: str, epoch: int, device_id: str, recipient: Recipient
) -> bytes:
    info = epoch_wrap_info(recipient.suite, circle_id, epoch, device_id)
    return hpke_seal(recipient.suite, recipient.kem_public, epoch_key, info)


@circle_errors
def new_epoch(
    circle_id: str,
    epoch: int,
    author: DeviceKeys,
    author_device_id: str,
    recipients: Mapping[str, Recipient],
    kind: Literal["rotate", "grant"] = "rotate",
    epoch_key: bytes | None = None,
) -> SealedEpoch:
    """Wrap an epoch key for `recipients` (device id -> Recipient) and sign the statement.

    A rotation draws a fresh key unless one is given (test vectors); a grant re-wraps the epoch's key, which
    the caller must pass."""
    if epoch_key is None:
        if kind == "grant":
            raise CircleError("invalid_epoch_statement", "a grant wraps the existing epoch key")
        epoch_key = os.urandom(EPOCH_KEY_LENGTH)
    if len(epoch_key) != EPOCH_KEY_LENGTH:
        raise CircleError("invalid_key", f"an epoch key is {EPOCH_KEY_LENGTH} bytes")
    wraps = {
        device_id: wrap_epoch_key(epoch_key, circle_id, epoch, device_id, recipient)
        for device_id, recipient in recipients.items()
    }
    statement = EpochStatement(
        author_device_id=author_device_id,
        circle_id=circle_id,
        epoch=epoch,
        key_commitment=epoch_key_commitment(epoch_key, circle_id, epoch).hex(),
        kind=kind,
        wraps={
            device_id: WrapEntry(sha256_digest(wrap).hex(), recipients[device_id].suite)
            for device_id, wrap in wraps.items()
        },
    ).to_bytes()
    return SealedEpoch(statement, author.sign(epoch_signing_input(statement)), wraps, epoch_key)


def _verify_statement(
    statement_bytes: bytes, signature: bytes, author_signing_public: bytes
) -> EpochStatement:
    statement = EpochStatement.parse(statement_bytes)
    verify_signature(author_signing_public, signature, epoch_signing_input(statement_bytes))
    return statement


def _check_wrap(entry: WrapEntry, suite: Suite, wrap: bytes) -> None:
    if entry.suite is not suite:
        raise CircleError("suite_mismatch", "a wrap is labelled with another suite than its device's")
    check_wrapped_key_length(suite, wrap, "wrap_length")
    if sha256_digest(wrap).hex() != entry.sha256:
        raise CircleError("wrap_hash_mismatch", "a wrap differs from its signed hash")


@circle_errors
def check_epoch_upload(
    statement_bytes: bytes,
    signature: bytes,
    wraps: Mapping[str, bytes],
    author_signing_public: bytes,
    device_suites: Mapping[str, Suite],
) -> EpochStatement:
    """Server side: strict parse, the author's signature, and every uploaded wrap against the statement
    (same devices, each device's registered suite from `device_suites`, length, hash).

    A wrap for a device missing from `device_suites` is refused (`wrap_set_mismatch`). The caller still
    checks the author device is the caller's, circle and epoch against the request, that a rotation covers
    exactly the members' active devices, and a grant's commitment (`check_grant_commitment`)."""
    statement = _verify_statement(statement_bytes, signature, author_signing_public)
    if set(wraps) != set(statement.wraps):
        raise CircleError("wrap_set_mismatch", "uploaded wraps differ from the signed statement")
    for device_id, wrap in wraps.items():
        suite = device_suites.get(device_id)
        if suite is None:
            raise CircleError("wrap_set_mismatch", "a wrap names a device that may not receive it")
        _check_wrap(statement.wraps[device_id], Suite(suite), wrap)
    return statement


def check_grant_commitment(grant: EpochStatement, rotation: EpochStatement) -> None:
    """A grant re-wraps its epoch's key: same circle and epoch, and the rotation's key commitment."""
    if grant.kind != "grant" or rotation.kind != "rotate":
        raise CircleError("invalid_epoch_statement", "compare a grant with its epoch's rotation")
    if (grant.circle_id, grant.epoch) != (rotation.circle_id, rotation.epoch):
        raise CircleError("context_mismatch", "the grant is for another circle or epoch")
    if not hmac.compare_digest(grant.key_commitment, rotation.key_commitment):
        raise CircleError("epoch_key_commitment_mismatch", "the grant commits to another key than its epoch")


@circle_errors
def open_epoch(
    statement_bytes: bytes,
    signature: bytes,
    wrap: bytes,
    keys: DeviceKeys,
    device_id: str,
    author_signing_public: bytes,
    *,
    circle_id: str,
    epoch: int,
    rotation_commitment: str | None = None,
) -> bytes:
    """Reader side: verify the statement (`author_signing_public` proved by the device directory), that it
    is for the circle and epoch it was served as, that it lists this device's wrap, then unwrap and check
    the key commitment. A grant is checked against its epoch's rotation when `rotation_commitment` is given.
    Returns the epoch key."""
    statement = _verify_statement(statement_bytes, signature, author_signing_public)
    if (statement.circle_id, statement.epoch) != (circle_id, epoch):
        raise CircleError("context_mismatch", "the epoch statement was signed for another circle or epoch")
    entry = statement.wraps.get(device_id)
    if entry is None:
        raise CircleError("wrap_set_mismatch", "the statement lists no wrap for this device")
    _check_wrap(entry, keys.suite, wrap)
    info = epoch_wrap_info(keys.suite, circle_id, epoch, device_id)
    epoch_key = hpke_open(keys, wrap, info, "the wrap does not open for this device, circle and epoch")
    expected = bytes.fromhex(statement.key_commitment)
    if len(epoch_key) != EPOCH_KEY_LENGTH or not hmac.compare_digest(
        epoch_key_commitment(epoch_key, circle_id, epoch), expected
    ):
        raise CircleError("epoch_key_commitment_mismatch", "the epoch key does not match its commitment")
    if rotation_commitment is not None and not hmac.compare_digest(
        rotation_commitment, statement.key_commitment
    ):
        raise CircleError("epoch_key_commitment_mismatch", "the grant commits to another key than its epoch")
    return epoch_key


# --- Posts ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostContext:
    """Where the API served a post: its circle, id, kind, parent (its own id for a post) and epoch."""

    circle_id: str
    object_id: str
    kind: str
    parent_id: str
    epoch: int


@dataclass(frozen=True)
class SealedPost:
    header: bytes
    manifest: bytes
    signature: bytes
    ciphertext: bytes


def post_key(epoch_key: bytes, header_sha256: bytes) -> bytes:
    """HKDF-SHA256 of the epoch key with the header hash as context: one key per post."""
    if len(epoch_key) != EPOCH_KEY_LENGTH:
        raise CircleError("invalid_key", f"an epoch key is {EPOCH_KEY_LENGTH} bytes")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=POST_KEY_LABEL + header_sha256)
    return hkdf.derive(epoch_key)


def post_signing_input(manifest_bytes: bytes) -> bytes:
    return POST_LABEL + manifest_bytes


@circle_errors
def seal_post(
    epoch_key: bytes, header: PostHeader, plaintext: bytes, signing_key: Signer, *, nonce: bytes | None = None
) -> SealedPost:
    """Encrypt once under the post key (whatever the circle's size) and sign the manifest with the author's
    device key or pseudonym key. `nonce` is random unless given (test vectors only)."""
    header_bytes = header.to_bytes()
    header_sha256 = sha256_digest(header_bytes)
    ciphertext = encrypt_content(
        post_key(epoch_key, header_sha256),
        os.urandom(NONCE_LENGTH) if nonce is None else nonce,
        header_bytes,
        plaintext,
    )
    manifest = PostManifest(
        ciphertext_sha256=sha256_digest(ciphertext).hex(),
        ciphertext_size=len(ciphertext),
        header_sha256=header_sha256.hex(),
    ).to_bytes()
    return SealedPost(header_bytes, manifest, signing_key.sign(post_signing_input(manifest)), ciphertext)


@circle_errors
def check_post_upload(
    header_bytes: bytes,
    manifest_bytes: bytes,
    signature: bytes,
    ciphertext_sha256: bytes,
    ciphertext_size: int,
    author_signing_public: bytes,
) -> tuple[PostHeader, PostManifest]:
    """Strict parse, the author's signature over the manifest, the manifest over header and ciphertext.

    The caller still checks that `author_signing_public` is the key of `header.author` (the caller's device,
    or a key of the caller's pseudonym), the circle, epoch, kind and parent against the request."""
    header = PostHeader.parse(header_bytes)
    manifest = PostManifest.parse(manifest_bytes)
    verify_signature(author_signing_public, signature, post_signing_input(manifest_bytes))
    if manifest.header_sha256 != sha256_digest(header_bytes).hex():
        raise CircleError("header_mismatch", "the manifest is for another header")
    check_ciphertext(manifest, ciphertext_sha256, ciphertext_size)
    return header, manifest


def check_post_context(header: PostHeader, served: PostContext) -> None:
    """A reader MUST refuse a post whose signed header names another circle, id, kind, parent or epoch than
    where it was served: a genuine post must not be replayed as another, or into another thread."""
    signed = (header.circle_id, header.object_id, header.kind, header.parent_id, header.epoch)
    if signed != (served.circle_id, served.object_id, served.kind, served.parent_id, served.epoch):
        raise CircleError("context_mismatch", "the post was signed for another circle, thread or epoch")


@circle_errors
def open_post(
    epoch_key: bytes,
    header_bytes: bytes,
    manifest_bytes: bytes,
    signature: bytes,
    ciphertext: bytes,
    author_signing_public: bytes,
    *,
    served: PostContext,
) -> bytes:
    """Verify and decrypt a post. `author_signing_public` is the key the reader trusts for `header.author`
    (a directory-proved device key, or a key the server lists for the pseudonym)."""
    header, _ = check_post_upload(
        header_bytes,
        manifest_bytes,
        signature,
        sha256_digest(ciphertext),
        len(ciphertext),
        author_signing_public,
    )
    check_post_context(header, served)
    return decrypt_content(post_key(epoch_key, sha256_digest(header_bytes)), header_bytes, ciphertext)

"""The Confrere E2EE format (normative spec: docs/e2ee.md): content encryption, HPKE key envelopes, signed
manifests, key commitment and re-sharing. Composed only from `cryptography` primitives; no I/O.

Client side: `seal`, `open_sealed` (with `check_context`), `unwrap_content_key`, `rewrap`, `sign_share`,
`open_kem_challenge`. Server side (public keys only): `check_sealed_upload`, `check_share`,
`seal_kem_challenge`. New objects are format version 2 (each envelope names its KEM suite); version 1
objects still open.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.crypto.canonical import (
    CONTENT_AEAD,
    FORMAT_V1,
    FORMAT_V2,
    MESSAGE_KINDS,
    MIN_CIPHERTEXT_SIZE,
    OBJECT_KINDS,
    Header,
    Manifest,
    ShareEntry,
    ShareStatement,
)
from app.crypto.e2ee_keys import (
    CONTENT_KEY_LENGTH,
    KEM_PROOF_LENGTH,
    KEM_PUBLIC_KEY_LENGTH,
    WRAPPED_KEY_LENGTH,
    DeviceKeys,
    E2EEError,
    Suite,
    check_wrapped_key_length,
    device_registration_message,
    generate_device_keys,
    hpke_open,
    hpke_seal,
    kem_proof_info,
    length_prefixed,
    load_kem_public_key,
    load_signing_public_key,
    open_kem_challenge,
    seal_kem_challenge,
    sign_device_registration,
    verify_device_registration,
    verify_signature,
)

__all__ = [
    "CONTENT_AEAD",
    "CONTENT_KEY_LENGTH",
    "FORMAT_V1",
    "FORMAT_V2",
    "KEM_PROOF_LENGTH",
    "KEM_PUBLIC_KEY_LENGTH",
    "MESSAGE_KINDS",
    "NONCE_LENGTH",
    "OBJECT_KINDS",
    "WRAPPED_KEY_LENGTH",
    "DeviceKeys",
    "E2EEError",
    "Header",
    "Manifest",
    "ObjectContext",
    "Recipient",
    "SealedObject",
    "ShareEntry",
    "ShareStatement",
    "Suite",
    "check_ciphertext",
    "check_context",
    "check_sealed_upload",
    "check_share",
    "decrypt_content",
    "device_registration_message",
    "encrypt_content",
    "envelope_info",
    "envelope_suite",
    "envelope_suites",
    "generate_device_keys",
    "kem_proof_info",
    "key_commitment",
    "load_kem_public_key",
    "load_signing_public_key",
    "manifest_signing_input",
    "open_kem_challenge",
    "open_sealed",
    "rewrap",
    "seal",
    "seal_kem_challenge",
    "share_entry",
    "share_signing_input",
    "sign_device_registration",
    "sign_share",
    "unwrap_content_key",
    "verify_device_registration",
    "verify_manifest",
    "wrap_content_key",
]

NONCE_LENGTH = 12
ENVELOPE_LABEL = b"confrere/v1/envelope"
KEY_COMMITMENT_LABEL = b"confrere/v1/key-commitment"
MANIFEST_LABEL = b"confrere/v1/manifest\x00"
SHARE_LABEL = b"confrere/v1/share\x00"


@dataclass(frozen=True)
class Recipient:
    """A device to seal for, as the directory names it: its KEM suite and KEM public key."""

    suite: Suite
    kem_public: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "suite", Suite(self.suite))


@dataclass(frozen=True)
class ObjectContext:
    """Where the API served an object: the case, and the kind and id of the case, message or attachment."""

    case_id: str
    kind: str
    object_id: str


def check_context(header: Header, served: ObjectContext) -> None:
    """A recipient MUST refuse an object whose signed header names another case, kind or object than the
    one it was served as: a genuinely signed object of one case must not open inside another."""
    if (header.case_id, header.kind, header.object_id) != (served.case_id, served.kind, served.object_id):
        raise E2EEError("context_mismatch", "the object was signed for another case, kind or object")


@dataclass(frozen=True)
class SealedObject:
    header: bytes
    ciphertext: bytes
    envelopes: dict[str, bytes]
    manifest: bytes
    signature: bytes


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def encrypt_content(content_key: bytes, nonce: bytes, header_bytes: bytes, plaintext: bytes) -> bytes:
    """`nonce || AES-256-GCM(content_key, nonce, plaintext, aad=header_bytes)`."""
    if len(content_key) != CONTENT_KEY_LENGTH or len(nonce) != NONCE_LENGTH:
        raise E2EEError("invalid_key", "content key must be 32 bytes and nonce 12 bytes")
    return nonce + AESGCM(content_key).encrypt(nonce, plaintext, header_bytes)


def decrypt_content(content_key: bytes, header_bytes: bytes, ciphertext: bytes) -> bytes:
    if len(ciphertext) < MIN_CIPHERTEXT_SIZE:
        raise E2EEError("decryption_failed", "ciphertext shorter than nonce and tag")
    nonce, body = ciphertext[:NONCE_LENGTH], ciphertext[NONCE_LENGTH:]
    try:
        return AESGCM(content_key).decrypt(nonce, body, header_bytes)
    except InvalidTag:
        raise E2EEError("decryption_failed", "content does not decrypt") from None


def key_commitment(content_key: bytes, header_sha256: bytes) -> bytes:
    """HMAC-SHA256 keyed by the content key: AES-GCM alone does not commit to its key, this does."""
    return hmac.new(content_key, KEY_COMMITMENT_LABEL + header_sha256, hashlib.sha256).digest()


def envelope_info(suite: Suite, case_id: str, header_sha256: bytes, recipient_device_id: str) -> bytes:
    """HPKE `info`: binds an envelope to its suite, case, object header and recipient device."""
    if len(header_sha256) != 32:
        raise E2EEError("invalid_header", "header hash must be 32 bytes")
    return length_prefixed(
        ENVELOPE_LABEL, Suite(suite).encode(), case_id.encode(), header_sha256, recipient_device_id.encode()
    )


def envelope_suite(header: Header, recipient_suite: Suite) -> Suite:
    """The suite of an envelope for a device of `recipient_suite`: its own in version 2; in version 1 every
    envelope is of the header's suite, so a device of the other suite cannot be a recipient."""
    if header.v == FORMAT_V1 and header.suite is not recipient_suite:
        raise E2EEError(
            "suite_mismatch", "a version 1 object is sealed for devices of its header's suite only"
        )
    return Suite(recipient_suite)


def envelope_suites(header: Header, manifest: Manifest) -> dict[str, Suite]:
    """The KEM suite of every envelope the manifest lists, by recipient device id."""
    if manifest.v != header.v:
        raise E2EEError("invalid_manifest", "manifest and header are of different format versions")
    if header.suite is not None:  # version 1: the header's suite for every envelope
        return dict.fromkeys(manifest.envelopes, header.suite)
    return dict(manifest.envelope_suites)


def wrap_content_key(
    content_key: bytes, header: Header, recipient_device_id: str, recipient: Recipient
) -> bytes:
    """HPKE single-shot base-mode encryption of the content key for one device: `enc || ct`."""
    suite = envelope_suite(header, recipient.suite)
    info = envelope_info(suite, header.case_id, header.sha256, recipient_device_id)
    return hpke_seal(suite, recipient.kem_public, content_key, info)


def manifest_signing_input(manifest_bytes: bytes) -> bytes:
    return MANIFEST_LABEL + manifest_bytes


def share_signing_input(statement_bytes: bytes) -> bytes:
    return SHARE_LABEL + statement_bytes


def seal(
    plaintext: bytes, header: Header, recipients: Mapping[str, Recipient], author: DeviceKeys
) -> SealedObject:
    """Encrypt under a fresh content key, wrap it for every recipient device in its own suite (version 2;
    a version 1 header allows only its suite), sign the manifest."""
    if header.v == FORMAT_V1 and author.suite is not header.suite:
        raise E2EEError("suite_mismatch", "author keys and header use different suites")
    header_bytes = header.to_bytes()
    content_key = os.urandom(CONTENT_KEY_LENGTH)
    ciphertext = encrypt_content(content_key, os.urandom(NONCE_LENGTH), header_bytes, plaintext)
    envelopes = {
        device_id: wrap_content_key(content_key, header, device_id, recipient)
        for device_id, recipient in recipients.items()
    }
    suites = {device_id: recipient.suite for device_id, recipient in recipients.items()}
    manifest = Manifest(
        v=header.v,
        header_sha256=header.sha256.hex(),
        ciphertext_sha256=_sha256(ciphertext).hex(),
        ciphertext_size=len(ciphertext),
        envelopes={device_id: _sha256(w).hex() for device_id, w in envelopes.items()},
        key_commitment=key_commitment(content_key, header.sha256).hex(),
        envelope_suites=suites if header.v == FORMAT_V2 else {},
    ).to_bytes()
    return SealedObject(
        header_bytes, ciphertext, envelopes, manifest, author.sign(manifest_signing_input(manifest))
    )


def verify_manifest(
    header_bytes: bytes, manifest_bytes: bytes, signature: bytes, author_signing_public: bytes
) -> tuple[Header, Manifest]:
    """Strict-parse header and manifest, verify the author's signature and that it covers this header."""
    header = Header.parse(header_bytes)
    manifest = Manifest.parse(manifest_bytes)
    verify_signature(author_signing_public, signature, manifest_signing_input(manifest_bytes))
    if manifest.header_sha256 != _sha256(header_bytes).hex():
        raise E2EEError("header_mismatch", "manifest is for another header")
    envelope_suites(header, manifest)
    return header, manifest


class SignedCiphertext(Protocol):
    """A signed manifest's view of the ciphertext (case objects and circle posts alike)."""

    @property
    def ciphertext_sha256(self) -> str: ...

    @property
    def ciphertext_size(self) -> int: ...


def check_ciphertext(manifest: SignedCiphertext, ciphertext_sha256: bytes, ciphertext_size: int) -> None:
    if manifest.ciphertext_size != ciphertext_size:
        raise E2EEError("ciphertext_size_mismatch", "ciphertext size differs from the manifest")
    if manifest.ciphertext_sha256 != ciphertext_sha256.hex():
        raise E2EEError("ciphertext_hash_mismatch", "ciphertext hash differs from the manifest")


def _check_envelope_length(suite: Suite, wrapped_key: bytes) -> None:
    check_wrapped_key_length(suite, wrapped_key, "envelope_length")


def check_sealed_upload(
    header_bytes: bytes,
    ciphertext_sha256: bytes,
    ciphertext_size: int,
    envelopes: Mapping[str, bytes],
    manifest_bytes: bytes,
    signature: bytes,
    author_signing_public: bytes,
) -> tuple[Header, Manifest]:
    """Server-side validation of an upload; the ciphertext arrives as the hash computed while streaming.

    The caller still checks that `author_signing_public` is the key of `header.author_device_id`, that the
    uploader owns that device, and that every envelope device is an eligible recipient of `header.suite`.
    """
    header, manifest = verify_manifest(header_bytes, manifest_bytes, signature, author_signing_public)
    check_ciphertext(manifest, ciphertext_sha256, ciphertext_size)
    if set(envelopes) != set(manifest.envelopes):
        raise E2EEError("envelope_set_mismatch", "uploaded envelopes differ from the signed manifest")
    suites = envelope_suites(header, manifest)
    for device_id, wrapped_key in envelopes.items():
        _check_envelope_length(suites[device_id], wrapped_key)
        if _sha256(wrapped_key).hex() != manifest.envelopes[device_id]:
            raise E2EEError("envelope_hash_mismatch", "an envelope differs from its signed hash")
    return header, manifest


def unwrap_content_key(
    header: Header, manifest: Manifest, wrapped_key: bytes, device_id: str, keys: DeviceKeys
) -> bytes:
    """Open an envelope addressed to `device_id` and check the content key against the signed commitment.

    `header` and `manifest` must come from `verify_manifest`. The envelope is of this device's suite: a
    manifest that labels it otherwise is refused, and `info` binds the suite, so a relabelled envelope
    does not open.
    """
    if manifest.header_sha256 != header.sha256.hex():
        raise E2EEError("header_mismatch", "manifest is for another header")
    # None: a re-shared version 2 envelope, which the author's manifest does not list.
    labelled = header.suite if header.v == FORMAT_V1 else envelope_suites(header, manifest).get(device_id)
    if labelled not in (None, keys.suite):
        raise E2EEError("suite_mismatch", "the envelope is labelled with another suite than this device's")
    _check_envelope_length(keys.suite, wrapped_key)
    info = envelope_info(keys.suite, header.case_id, header.sha256, device_id)
    content_key = hpke_open(keys, wrapped_key, info, "envelope does not open for this device and object")
    expected = bytes.fromhex(manifest.key_commitment)
    if len(content_key) != CONTENT_KEY_LENGTH or not hmac.compare_digest(
        key_commitment(content_key, header.sha256), expected
    ):
        raise E2EEError("key_commitment_mismatch", "content key does not match the author's commitment")
    return content_key


def open_sealed(
    header: bytes,
    ciphertext: bytes,
    wrapped_key: bytes,
    manifest: bytes,
    signature: bytes,
    device_id: str,
    keys: DeviceKeys,
    author_signing_public: bytes,
    *,
    served: ObjectContext,
    reshared: bool = False,
) -> bytes:
    """Verify and decrypt an object for this device, served by the API as `served` (docs/e2ee.md section
    13: the signed header must name that case, kind and object).

    A re-shared envelope is not in the author's manifest; it is accepted with `reshared=True` because the
    signed key commitment still proves the sharer wrapped the author's key, and `info` binds it to this
    device.
    `author_signing_public` must be the key the caller trusts for the header's `author_device_id`.
    """
    parsed_header, parsed_manifest = verify_manifest(header, manifest, signature, author_signing_public)
    check_context(parsed_header, served)
    check_ciphertext(parsed_manifest, _sha256(ciphertext), len(ciphertext))
    if not reshared and parsed_manifest.envelopes.get(device_id) != _sha256(wrapped_key).hex():
        raise E2EEError("envelope_set_mismatch", "envelope is not listed for this device in the manifest")
    content_key = unwrap_content_key(parsed_header, parsed_manifest, wrapped_key, device_id, keys)
    return decrypt_content(content_key, header, ciphertext)


def rewrap(
    header: Header,
    manifest: Manifest,
    wrapped_key: bytes,
    device_id: str,
    keys: DeviceKeys,
    recipient_device_id: str,
    recipient: Recipient,
) -> bytes:
    """Re-share: open this device's envelope (commitment checked) and wrap the same key for a new device
    in that device's suite (a version 1 object only for devices of its header's suite)."""
    content_key = unwrap_content_key(header, manifest, wrapped_key, device_id, keys)
    return wrap_content_key(content_key, header, recipient_device_id, recipient)


def share_entry(header: Header, recipient_device_id: str, envelope: bytes) -> ShareEntry:
    return ShareEntry(
        object_id=header.object_id,
        header_sha256=header.sha256.hex(),
        recipient_device_id=recipient_device_id,
        envelope_sha256=_sha256(envelope).hex(),
    )


def sign_share(statement: ShareStatement, keys: DeviceKeys) -> tuple[bytes, bytes]:
    """Return `(statement_bytes, signature)`."""
    statement_bytes = statement.to_bytes()
    return statement_bytes, keys.sign(share_signing_input(statement_bytes))


def check_share(
    statement_bytes: bytes,
    signature: bytes,
    sharer_signing_public: bytes,
    envelopes: Mapping[tuple[str, str], bytes],
    header_by_object: Mapping[str, Header],
    recipient_suites: Mapping[str, Suite],
) -> ShareStatement:
    """Server-side validation of a re-share upload keyed by (object_id, recipient_device_id).

    `header_by_object` holds the stored headers of the case's objects (an entry naming any other object,
    or another header, is refused here rather than failing at the recipient) and `recipient_suites` the
    registered suite of every recipient device. The caller still checks the statement's case and sharer
    device against the request and that the sharer is a participant.
    """
    statement = ShareStatement.parse(statement_bytes)
    verify_signature(sharer_signing_public, signature, share_signing_input(statement_bytes))
    if {e.key for e in statement.entries} != set(envelopes):
        raise E2EEError("envelope_set_mismatch", "uploaded envelopes differ from the signed statement")
    for entry in statement.entries:
        header = header_by_object.get(entry.object_id)
        if header is None:
            raise E2EEError("envelope_set_mismatch", "statement names an unknown object")
        if header.sha256.hex() != entry.header_sha256:
            raise E2EEError("header_mismatch", "statement names another header for an object")
        if entry.recipient_device_id not in recipient_suites:
            raise E2EEError("envelope_set_mismatch", "statement names an unknown device")
        wrapped_key = envelopes[entry.key]
        _check_envelope_length(
            envelope_suite(header, recipient_suites[entry.recipient_device_id]), wrapped_key
        )
        if _sha256(wrapped_key).hex() != entry.envelope_sha256:
            raise E2EEError("envelope_hash_mismatch", "an envelope differs from its signed hash")
    return statement

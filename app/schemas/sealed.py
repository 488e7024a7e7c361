"""Binary values in JSON, and the sealed objects clients upload and download (format: docs/e2ee.md).

Binary travels as standard base64 with padding (RFC 4648 section 4): the transport encoding only, never
signed or hashed, so a strict decoder loses nothing and refuses ambiguous input.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import GroupedMetadata
from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from app.schemas.common import RequestModel, ResponseModel

MiB = 1024 * 1024


def _encode(value: bytes) -> str:
    return base64.b64encode(value).decode()


@dataclass(frozen=True)
class Base64(GroupedMetadata):
    """Marks `bytes` read from and written as base64: `Annotated[bytes, Base64(max_bytes)]`. Longer input
    is refused before it is decoded."""

    max_bytes: int | None = None

    @property
    def max_chars(self) -> int | None:
        return None if self.max_bytes is None else 4 * ((self.max_bytes + 2) // 3)

    def decode(self, value: object) -> bytes:
        if isinstance(value, bytes):  # built from a stored row, not from a request
            return value
        if not isinstance(value, str):
            raise ValueError("expected a base64 string")
        if self.max_chars is not None and len(value) > self.max_chars:
            raise ValueError(f"at most {self.max_bytes} bytes")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError("not standard base64 with padding (RFC 4648 section 4)") from None

    def __iter__(self) -> Iterator[Any]:
        schema: dict[str, Any] = {"type": "string", "contentEncoding": "base64"}
        if self.max_chars is not None:
            schema["maxLength"] = self.max_chars
        yield BeforeValidator(self.decode)
        yield PlainSerializer(_encode, return_type=str)
        yield WithJsonSchema(schema)


Header = Annotated[bytes, Base64(1024)]
Manifest = Annotated[bytes, Base64(MiB)]
Signature = Annotated[bytes, Base64(128)]
WrappedKey = Annotated[bytes, Base64(2048)]
PublicKey = Annotated[bytes, Base64(2048)]
# Bounded by the route's body limit (settings.max_case_body_bytes), which depends on configuration.
Ciphertext = Annotated[bytes, Base64()]


class EnvelopeIn(RequestModel):
    device_id: uuid.UUID
    wrapped_key: WrappedKey = Field(description="HPKE `enc || ct` of the content key for this device.")


class SealedParts(RequestModel):
    """Everything of a sealed object but its ciphertext (attachments send that as a file part)."""

    header: Header = Field(description="Canonical JSON header (docs/e2ee.md section 6).")
    envelopes: list[EnvelopeIn] = Field(
        min_length=1, description="One per recipient device; at most settings.max_envelopes_per_request."
    )
    manifest: Manifest = Field(description="Canonical JSON manifest (docs/e2ee.md section 10).")
    signature: Signature = Field(description="Ed25519 signature of the author device over the manifest.")


class SealedIn(SealedParts):
    ciphertext: Ciphertext = Field(description="`nonce || AES-256-GCM(content)`, header as associated data.")


class DirectoryDevice(ResponseModel):
    """A device's public keys, as senders need them to wrap keys and readers to verify signatures."""

    device_id: uuid.UUID
    user_id: uuid.UUID
    suite: str = Field(examples=["xwing"])
    signing_public_key: PublicKey
    kem_public_key: PublicKey


class EnvelopeOut(ResponseModel):
    device_id: uuid.UUID
    wrapped_key: WrappedKey


class SealedOut(ResponseModel):
    header: Header
    ciphertext: Ciphertext | None = Field(description="Null for attachments: download the bytes separately.")
    manifest: Manifest
    signature: Signature
    ciphertext_sha256: str = Field(description="Lowercase hex SHA-256 of the ciphertext.")
    ciphertext_size: int
    author_device: DirectoryDevice = Field(
        description="The signing device, even if revoked since: verify the manifest with its key."
    )
    envelopes: list[EnvelopeOut] = Field(description="Only the envelopes of the caller's own active devices.")

"""Devices, the recipient directory and the key backup."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from app.schemas.common import RequestModel, ResponseModel
from app.schemas.sealed import Base64, DirectoryDevice, PublicKey, Signature

Challenge = Annotated[bytes, Base64(64)]
# Bounded by settings.max_key_backup_bytes (checked by the service) and the route's body limit.
BackupBlob = Annotated[bytes, Base64()]


class ChallengeOut(ResponseModel):
    challenge_id: uuid.UUID
    challenge: Challenge = Field(description="32 random bytes to sign; single use, for 5 minutes.")
    expires_at: datetime


class DeviceCreate(RequestModel):
    challenge_id: uuid.UUID
    # A plain string, so that an unknown suite gets its own stable code (`unknown_suite`) rather than a
    # generic validation error.
    suite: str = Field(max_length=20, examples=["xwing"], description="`x25519` or `xwing`.")
    signing_public_key: PublicKey = Field(description="Ed25519 public key, 32 bytes.")
    kem_public_key: PublicKey = Field(description="32 bytes (x25519) or 1216 bytes (xwing).")
    label: str = Field(min_length=1, max_length=100, examples=["Claire's iPhone"])
    signature: Signature = Field(
        description="Ed25519 over the registration message (docs/e2ee.md section 11): challenge, user id, "
        "suite and both public keys."
    )


class DeviceOut(ResponseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    suite: str = Field(examples=["xwing"])
    signing_public_key: PublicKey
    kem_public_key: PublicKey
    label: str
    created_at: datetime
    revoked_at: datetime | None


class SpecialtyRecipients(ResponseModel):
    specialty: str = Field(examples=["dermatology"])
    devices: list[DirectoryDevice]


class UserDevices(ResponseModel):
    user_id: uuid.UUID
    devices: list[DirectoryDevice]


class KeyBackupIn(RequestModel):
    blob: BackupBlob = Field(description="Opaque, encrypted by the client; at most max_key_backup_bytes.")


class KeyBackupOut(ResponseModel):
    blob: BackupBlob
    updated_at: datetime

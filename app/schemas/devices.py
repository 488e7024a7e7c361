"""Devices, the recipient directory and the key backup."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from app.schemas.common import RequestModel, ResponseModel
from app.schemas.sealed import Base64, DirectoryDevice, PublicKey, Signature

Challenge = Annotated[bytes, Base64(64)]
KemChallenge = Annotated[bytes, Base64(2048)]
KemProof = Annotated[bytes, Base64(64)]
SUITE_DESCRIPTION = "`x25519` or `xwing`."
# Bounded by settings.max_key_backup_bytes (checked by the service) and the route's body limit.
BackupBlob = Annotated[bytes, Base64()]


class ChallengeIn(RequestModel):
    """The KEM key the next registration will register, so that the server can seal a secret to it."""

    # A plain string, so that an unknown suite gets its own stable code (`unknown_suite`) rather than a
    # generic validation error.
    suite: str = Field(max_length=20, examples=["xwing"], description=SUITE_DESCRIPTION)
    kem_public_key: PublicKey = Field(description="32 bytes (x25519) or 1216 bytes (xwing).")


class ChallengeOut(ResponseModel):
    challenge_id: uuid.UUID
    challenge: Challenge = Field(description="32 random bytes to sign; single use, for 5 minutes.")
    kem_challenge: KemChallenge = Field(
        description="HPKE `enc || ct` of a 32-byte secret sealed to the KEM key of the request "
        "(docs/e2ee.md section 11): the device opens it and returns the secret as `kem_proof`."
    )
    expires_at: datetime


class DeviceCreate(RequestModel):
    challenge_id: uuid.UUID
    suite: str = Field(max_length=20, examples=["xwing"], description=SUITE_DESCRIPTION)
    signing_public_key: PublicKey = Field(description="Ed25519 public key, 32 bytes.")
    kem_public_key: PublicKey = Field(description="32 bytes (x25519) or 1216 bytes (xwing).")
    label: str = Field(min_length=1, max_length=100, examples=["Claire's iPhone"])
    kem_proof: KemProof = Field(description="The 32-byte secret the device opened from `kem_challenge`.")
    signature: Signature = Field(
        description="Ed25519 over the registration message (docs/e2ee.md section 11): challenge, user id, "
        "suite, both public keys and the KEM proof."
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

"""Client devices (their public keys), registration challenges and the opaque key backups."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, LargeBinary, String
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow

# The nil UUID, which no device has: what a malformed device id stands for.
NO_DEVICE = uuid.UUID(int=0)


class Device(SQLModel, table=True):
    """A client install: its Ed25519 signing key and its KEM key of one suite. Never deleted: old content
    stays verifiable against the key that signed it, so revocation only stamps `revoked_at`."""

    __tablename__ = "devices"
    # One KEM key, one device: an envelope sealed to it must never be openable by two accounts. The database
    # holds the rule too, so two registrations racing past the service's query cannot both commit.
    __table_args__ = (Index("uq_devices_kem_public_key", "kem_public_key", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), index=True, nullable=False))
    suite: str = Field(sa_type=String(10))
    # One signing key identifies one device: a signature must never be attributable to two accounts.
    signing_public_key: bytes = Field(sa_column=Column(LargeBinary(32), unique=True, nullable=False))
    kem_public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    label: str = Field(sa_type=String(100))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class DeviceChallenge(SQLModel, table=True):
    """A random nonce a new device signs, and from which the KEM secret sealed to its KEM key is derived:
    together they prove it holds both private keys. Deleted when used."""

    __tablename__ = "device_challenges"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False)
    )
    challenge: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    expires_at: datetime = Field(sa_type=UTCDateTime)


class KeyBackup(SQLModel, table=True):
    """A user's device keys, encrypted by their client; the server cannot open it."""

    __tablename__ = "key_backups"

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, nullable=False)
    )
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

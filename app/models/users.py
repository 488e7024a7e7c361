"""Accounts: users, their roles and their specialties."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, LargeBinary, String, text
from sqlmodel import Field, SQLModel, col

from app.models.base import UTCDateTime, utcnow


class Role(StrEnum):
    PHYSICIAN = "physician"
    SPECIALIST = "specialist"
    COMPLIANCE_OFFICER = "compliance_officer"
    ADMIN = "admin"


CLINICAL_ROLES = frozenset({Role.PHYSICIAN, Role.SPECIALIST})
MFA_ROLES = frozenset({Role.ADMIN, Role.COMPLIANCE_OFFICER})


class UserStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class ProfessionalIdKind(StrEnum):
    RPPS = "rpps"
    ADELI = "adeli"
    NPI = "npi"


class Profession(StrEnum):
    """What a professional is licensed as. Only physicians hold the clinical roles (cases); every verified
    professional takes part in peer circles."""

    PHYSICIAN = "physician"
    NURSE = "nurse"
    PSYCHOLOGIST = "psychologist"
    MIDWIFE = "midwife"
    PHARMACIST = "pharmacist"
    PHYSIOTHERAPIST = "physiotherapist"


# A professional id belongs to one verified account. Pending registrations may name the same one (whoever
# registers first holds nothing, so a public RPPS number cannot be squatted, and the answer to a registration
# never says whether the id is known): the admin sees the conflict at verification.
_VERIFIED = text("verified_at IS NOT NULL")


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        Index(
            "uq_users_verified_professional_id",
            "professional_id_kind",
            "professional_id",
            unique=True,
            postgresql_where=_VERIFIED,
            sqlite_where=_VERIFIED,
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(sa_type=String(254), unique=True, index=True)
    password_hash: str = Field(sa_type=String(200))
    display_name: str = Field(sa_type=String(200))
    profession: str = Field(
        default=Profession.PHYSICIAN, sa_column=Column(String(30), nullable=False, server_default="physician")
    )
    professional_id_kind: str | None = Field(default=None, sa_type=String(10))
    professional_id: str | None = Field(default=None, sa_type=String(20))
    status: str = Field(default=UserStatus.PENDING, sa_type=String(20), index=True)
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    verified_by: uuid.UUID | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    totp_secret_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    totp_confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    totp_last_step: int | None = Field(default=None)

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    @property
    def can_act(self) -> bool:
        return account_can_act(self.verified_at, self.status)

    @property
    def totp_enabled(self) -> bool:
        return self.totp_confirmed_at is not None


def account_can_act(verified_at: datetime | None, status: str) -> bool:
    """Only verified, active users act on cases or use any role's powers."""
    return verified_at is not None and status == UserStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class Account:
    """Another user as policies and answers see them, read as a plain row (ACCOUNT_COLUMNS): an ORM instance
    per user cost more than the query on the write path, where a new case loads every specialist of its
    specialty."""

    id: uuid.UUID
    display_name: str
    profession: str
    status: str
    verified_at: datetime | None

    @property
    def can_act(self) -> bool:
        return account_can_act(self.verified_at, self.status)


ACCOUNT_COLUMNS = (
    col(User.id),
    col(User.display_name),
    col(User.profession),
    col(User.status),
    col(User.verified_at),
)


class UserRole(SQLModel, table=True):
    __tablename__ = "user_roles"

    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True))
    role: str = Field(sa_type=String(30), primary_key=True)


class UserSpecialty(SQLModel, table=True):
    __tablename__ = "user_specialties"

    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True))
    specialty_code: str = Field(
        sa_column=Column(String(40), ForeignKey("specialties.code"), primary_key=True, index=True)
    )

"""Registration, profile and administration of accounts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field, model_validator

from app.models.users import Profession, ProfessionalIdKind, Role, UserStatus
from app.schemas import professional_ids
from app.schemas.common import RequestModel, ResponseModel


class RegisterRequest(RequestModel):
    email: EmailStr = Field(max_length=254, examples=["dr.martin@example.org"])
    password: str = Field(min_length=12, max_length=128, examples=["correct horse battery staple"])
    display_name: str = Field(min_length=1, max_length=200, examples=["Dr Claire Martin"])
    profession: Profession = Field(
        default=Profession.PHYSICIAN,
        description="Only physicians hold the physician and specialist roles (cases); every verified "
        "professional takes part in peer circles. `GET /v1/professions` lists each one's identifier kinds.",
        examples=["physician"],
    )
    professional_id_kind: ProfessionalIdKind = Field(examples=["rpps"])
    professional_id: str = Field(min_length=9, max_length=11, examples=["10000000009"])
    roles: list[Literal[Role.PHYSICIAN, Role.SPECIALIST]] = Field(
        default_factory=list,
        max_length=2,
        description="At least one for a physician; none for any other profession.",
        examples=[["physician"]],
    )
    specialties: list[str] = Field(default_factory=list, max_length=10, examples=[[]])

    @model_validator(mode="after")
    def _check(self) -> RegisterRequest:
        if not professional_ids.allows(self.profession, self.professional_id_kind):
            raise ValueError(
                f"a {self.profession} does not register with a {self.professional_id_kind.upper()}"
            )
        if not professional_ids.is_valid(self.professional_id_kind, self.professional_id):
            raise ValueError(f"professional_id is not a valid {self.professional_id_kind.upper()} number")
        if self.profession is Profession.PHYSICIAN and not self.roles:
            raise ValueError("a physician registers with the physician or specialist role")
        if self.profession is not Profession.PHYSICIAN and (self.roles or self.specialties):
            raise ValueError("only physicians hold the physician and specialist roles and specialties")
        if Role.SPECIALIST in self.roles and not self.specialties:
            raise ValueError("a specialist names at least one specialty")
        if self.password.strip().lower() == self.email.lower():
            raise ValueError("the password must not be the e-mail address")
        return self


class UserOut(ResponseModel):
    id: uuid.UUID
    email: str
    display_name: str
    profession: Profession
    professional_id_kind: ProfessionalIdKind | None
    professional_id: str | None
    status: UserStatus
    verified_at: datetime | None
    roles: list[Role]
    specialties: list[str]
    totp_enabled: bool
    created_at: datetime


class UserPage(ResponseModel):
    items: list[UserOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last.")


class RolesUpdate(RequestModel):
    roles: list[Role] = Field(max_length=4, examples=[["specialist"]])
    specialties: list[str] = Field(default_factory=list, max_length=20, examples=[["cardiology"]])

    @model_validator(mode="after")
    def _check(self) -> RolesUpdate:
        if Role.SPECIALIST in self.roles and not self.specialties:
            raise ValueError("a specialist needs at least one specialty")
        if Role.SPECIALIST not in self.roles and self.specialties:
            raise ValueError("only specialists hold specialties")
        return self


class SuspendRequest(RequestModel):
    reason: Literal["left_organisation", "license_withdrawn", "security_incident", "other"] = Field(
        examples=["security_incident"]
    )


class ClinicianName(ResponseModel):
    """How a colleague is shown: never their e-mail or professional id."""

    id: uuid.UUID
    display_name: str = Field(examples=["Dr Claire Martin"])
    profession: Profession
    roles: list[Role]
    specialties: list[str]


class ClinicianNames(ResponseModel):
    clinicians: list[ClinicianName] = Field(
        description="The verified, active clinicians among the ids asked for; anyone else is left out."
    )


class ProfessionOut(ResponseModel):
    code: Profession
    name_fr: str = Field(examples=["Infirmier·ère"])
    name_en: str = Field(examples=["Nurse"])
    id_kinds: list[ProfessionalIdKind] = Field(
        description="The professional identifiers this profession registers with.",
        examples=[["rpps", "adeli"]],
    )

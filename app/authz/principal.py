"""Who is calling: the user as loaded for this request, with the roles and session they act under."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.models.users import Role, User


@dataclass(frozen=True)
class Principal:
    user: User
    roles: frozenset[Role]
    specialties: frozenset[str]
    session_id: uuid.UUID
    amr: frozenset[str]

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    @property
    def used_totp(self) -> bool:
        return "otp" in self.amr

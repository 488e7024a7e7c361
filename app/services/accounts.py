"""Accounts: registration and the views of a user with their roles and specialties."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from app.authz.queries import roles_and_specialties
from app.crypto.passwords import PasswordHasher
from app.errors import Conflict, InvalidInput
from app.models.specialties import Specialty
from app.models.users import Role, User, UserRole, UserSpecialty, UserStatus
from app.schemas.accounts import RegisterRequest, UserOut


class EmailTaken(Conflict):
    code = "email_taken"
    title = "An account with this e-mail address exists"


class UnknownSpecialty(InvalidInput):
    code = "unknown_specialty"
    title = "A named specialty does not exist or is inactive"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(col(User.email) == normalize_email(email))).first()


_ACTIVE_SPECIALTIES = select(Specialty.code).where(
    col(Specialty.code).in_(bindparam("codes", expanding=True)), Specialty.active
)


def require_active_specialties(session: Session, codes: Iterable[str]) -> set[str]:
    wanted = set(codes)
    found = set(session.exec(_ACTIVE_SPECIALTIES, params={"codes": list(wanted)}).all())
    if missing := wanted - found:
        raise UnknownSpecialty(f"unknown or inactive specialties: {', '.join(sorted(missing))}")
    return wanted


@dataclass(frozen=True)
class Registration:
    """What a registration answers (`shown`) and which account its audit record names (`account_id`)."""

    shown: UserOut
    account_id: uuid.UUID


def register(session: Session, request: RegisterRequest, password_hash: str) -> Registration:
    """A clinician signs up; the account stays pending until an admin checks the professional id. The
    password comes hashed: the hash is computed before the write transaction (app/routers/auth.py).

    The answer never says whether the e-mail or the professional id is known. A professional id may be
    claimed by several pending accounts (the admin sees them at verification). An e-mail already in use
    creates nothing, yet gets the answer a new account would get (a fresh id, pending); the record names
    the existing account, for the officer."""
    specialties = require_active_specialties(session, request.specialties)
    user = User(
        email=normalize_email(request.email),
        password_hash=password_hash,
        display_name=request.display_name.strip(),
        profession=request.profession.value,
        professional_id_kind=request.professional_id_kind.value,
        professional_id=request.professional_id,
    )
    shown = UserOut.model_validate(
        {
            **user.model_dump(),
            "roles": sorted(request.roles),
            "specialties": sorted(specialties),
            "totp_enabled": False,
        }
    )
    existing = find_by_email(session, user.email)
    if existing is not None:
        return Registration(shown, existing.id)
    session.add(user)
    session.flush()
    replace_roles(session, user.id, set(request.roles), specialties)
    return Registration(shown, user.id)


def provision(
    session: Session,
    hasher: PasswordHasher,
    *,
    email: str,
    password: str,
    display_name: str,
    roles: set[Role],
    specialties: AbstractSet[str] = frozenset(),
    now: datetime,
) -> User:
    """An account created by an operator (bootstrap admin, demo): verified and active from the start."""
    if find_by_email(session, email):
        raise EmailTaken()
    user = User(
        email=normalize_email(email),
        password_hash=hasher.hash(password),
        display_name=display_name,
        status=UserStatus.ACTIVE,
        verified_at=now,
    )
    session.add(user)
    session.flush()
    replace_roles(session, user.id, roles, require_active_specialties(session, specialties))
    return user


def replace_roles(session: Session, user_id: uuid.UUID, roles: set[Role], specialties: set[str]) -> None:
    for model in (UserRole, UserSpecialty):
        for row in session.exec(select(model).where(model.user_id == user_id)).all():
            session.delete(row)
    session.flush()
    session.add_all(UserRole(user_id=user_id, role=role.value) for role in roles)
    session.add_all(UserSpecialty(user_id=user_id, specialty_code=code) for code in specialties)


def views(session: Session, users: list[User]) -> list[UserOut]:
    roles, specialties = roles_and_specialties(session, [user.id for user in users])
    return [
        UserOut.model_validate(
            {
                **user.model_dump(),
                "roles": sorted(roles[user.id]),
                "specialties": sorted(specialties[user.id]),
                "totp_enabled": user.totp_enabled,
            }
        )
        for user in users
    ]


def view(session: Session, user: User) -> UserOut:
    return views(session, [user])[0]

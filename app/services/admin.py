"""Administration of accounts: verification, suspension, roles and specialties."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session, or_, select

from app.errors import Conflict, NotFound
from app.models.users import Role, User, UserRole, UserSpecialty, UserStatus
from app.schemas.accounts import RolesUpdate
from app.services import accounts
from app.services.auth import revoke_all_sessions
from app.services.pagination import Page, decode_cursor, page_of

CURSOR_KEYS = ("created_at", "id")


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "No such user"


class AlreadyVerified(Conflict):
    code = "already_verified"
    title = "The user is already verified"


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound()
    return user


def list_users(
    session: Session,
    *,
    status: UserStatus | None,
    role: Role | None,
    specialty: str | None,
    limit: int,
    cursor: str | None,
) -> Page[User]:
    query = select(User)
    if status is not None:
        query = query.where(User.status == status.value)
    if role is not None:
        query = query.where(User.id.in_(select(UserRole.user_id).where(UserRole.role == role.value)))
    if specialty is not None:
        query = query.where(
            User.id.in_(select(UserSpecialty.user_id).where(UserSpecialty.specialty_code == specialty))
        )
    if cursor is not None:
        after = decode_cursor(cursor, CURSOR_KEYS)
        created_at, last_id = datetime.fromisoformat(after["created_at"]), uuid.UUID(after["id"])
        query = query.where(
            or_(User.created_at > created_at, (User.created_at == created_at) & (User.id > last_id))
        )
    rows = list(session.exec(query.order_by(User.created_at, User.id).limit(limit + 1)).all())
    return page_of(rows, limit, lambda user: {"created_at": user.created_at.isoformat(), "id": str(user.id)})


def verify(session: Session, user_id: uuid.UUID, admin_id: uuid.UUID, now: datetime) -> User:
    user = get_user(session, user_id)
    if user.is_verified:
        raise AlreadyVerified()
    user.verified_at, user.verified_by, user.updated_at = now, admin_id, now
    if user.status == UserStatus.PENDING:
        user.status = UserStatus.ACTIVE
    return user


def suspend(session: Session, user_id: uuid.UUID, now: datetime) -> User:
    user = get_user(session, user_id)
    user.status, user.updated_at = UserStatus.SUSPENDED, now
    revoke_all_sessions(session, user.id, "suspended")
    return user


def reactivate(session: Session, user_id: uuid.UUID, now: datetime) -> User:
    user = get_user(session, user_id)
    user.status = UserStatus.ACTIVE if user.is_verified else UserStatus.PENDING
    user.updated_at = now
    return user


def set_roles(session: Session, user_id: uuid.UUID, update: RolesUpdate, now: datetime) -> User:
    user = get_user(session, user_id)
    specialties = accounts.require_active_specialties(session, update.specialties)
    accounts.replace_roles(session, user.id, set(update.roles), specialties)
    user.updated_at = now
    return user

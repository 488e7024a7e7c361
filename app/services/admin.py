"""Administration of accounts: verification, suspension, roles and specialties."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.crypto.directory import EntryAction
from app.directory.log import DirectoryLog
from app.errors import Conflict, InvalidInput, NotFound
from app.models.users import CLINICAL_ROLES, Profession, Role, User, UserRole, UserSpecialty, UserStatus
from app.platform.pagination import Page
from app.schemas.accounts import RolesUpdate
from app.services import accounts, circle_rotation
from app.services.auth import revoke_all_sessions
from app.services.keyset import Keyset

# A cursor that does not decode to this order's (time, id) pair is refused with 422 invalid_cursor.
OLDEST_FIRST = Keyset(User.created_at, User.id)


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "No such user"


class AlreadyVerified(Conflict):
    code = "already_verified"
    title = "The user is already verified"


class ProfessionalIdVerifiedElsewhere(Conflict):
    code = "professional_id_verified_elsewhere"
    title = "Another verified account holds this professional identifier"


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
        query = query.where(col(User.status) == status.value)
    if role is not None:
        query = query.where(
            col(User.id).in_(select(UserRole.user_id).where(col(UserRole.role) == role.value))
        )
    if specialty is not None:
        query = query.where(
            col(User.id).in_(
                select(UserSpecialty.user_id).where(col(UserSpecialty.specialty_code) == specialty)
            )
        )
    if cursor is not None:
        query = query.where(OLDEST_FIRST.after(cursor))
    rows = list(session.exec(query.order_by(*OLDEST_FIRST.order_by()).limit(limit + 1)).all())
    return OLDEST_FIRST.page(rows, limit)


# Every change below that alters who may receive a specialty's keys is also an entry of the device directory
# log, written in the same transaction (docs/key-transparency.md).


def verify(
    session: Session, user_id: uuid.UUID, admin_id: uuid.UUID, now: datetime, directory: DirectoryLog
) -> User:
    """Registrations may claim a professional id another account holds; the first verified keeps it, and
    the admin resolves any other claim (docs/api.md). The unique index on verified ids settles a race."""
    user = get_user(session, user_id)
    if user.is_verified:
        raise AlreadyVerified()
    holder = session.exec(
        select(User.id).where(
            col(User.professional_id_kind) == user.professional_id_kind,
            col(User.professional_id) == user.professional_id,
            col(User.verified_at).is_not(None),
        )
    ).first()
    if user.professional_id is not None and holder is not None:
        raise ProfessionalIdVerifiedElsewhere(f"held by the verified account {holder}", holder=str(holder))
    user.verified_at, user.verified_by, user.updated_at = now, admin_id, now
    if user.status == UserStatus.PENDING:
        user.status = UserStatus.ACTIVE
    try:
        session.flush()
    except IntegrityError:
        raise ProfessionalIdVerifiedElsewhere() from None
    directory.account_changed(session, user.id, EntryAction.ACCOUNT_VERIFY, now)
    return user


def suspend(session: Session, user_id: uuid.UUID, now: datetime, directory: DirectoryLog) -> User:
    user = get_user(session, user_id)
    if user.status != UserStatus.SUSPENDED:
        directory.account_changed(session, user.id, EntryAction.ACCOUNT_SUSPEND, now)
    if user.status != UserStatus.SUSPENDED:
        circle_rotation.member_devices_changed(session, user.id, now)
    user.status, user.updated_at = UserStatus.SUSPENDED, now
    revoke_all_sessions(session, user.id, "suspended")
    return user


def reactivate(session: Session, user_id: uuid.UUID, now: datetime, directory: DirectoryLog) -> User:
    user = get_user(session, user_id)
    if user.status == UserStatus.SUSPENDED:
        directory.account_changed(session, user.id, EntryAction.ACCOUNT_REACTIVATE, now)
        circle_rotation.member_devices_changed(session, user.id, now)
    user.status = UserStatus.ACTIVE if user.is_verified else UserStatus.PENDING
    user.updated_at = now
    return user


def _receivable_specialties(session: Session, user_id: uuid.UUID) -> set[str]:
    """The specialties whose keys the user may receive as a specialist (none without the role)."""
    is_specialist = session.exec(
        select(UserRole).where(col(UserRole.user_id) == user_id, col(UserRole.role) == Role.SPECIALIST.value)
    ).first()
    if is_specialist is None:
        return set()
    rows = session.exec(select(UserSpecialty.specialty_code).where(col(UserSpecialty.user_id) == user_id))
    return set(rows.all())


class ClinicalRoleNotAllowed(InvalidInput):
    code = "clinical_role_not_allowed"
    title = "Only physicians hold the physician and specialist roles"


def set_roles(
    session: Session, user_id: uuid.UUID, update: RolesUpdate, now: datetime, directory: DirectoryLog
) -> User:
    user = get_user(session, user_id)
    if user.profession != Profession.PHYSICIAN and set(update.roles) & CLINICAL_ROLES:
        raise ClinicalRoleNotAllowed()
    specialties = accounts.require_active_specialties(session, update.specialties)
    before = _receivable_specialties(session, user.id)
    accounts.replace_roles(session, user.id, set(update.roles), specialties)
    after = specialties if Role.SPECIALIST in update.roles else set()
    for code in sorted(before - after):
        directory.account_changed(session, user.id, EntryAction.SPECIALTY_REMOVE, now, code)
    for code in sorted(after - before):
        directory.account_changed(session, user.id, EntryAction.SPECIALTY_ADD, now, code)
    user.updated_at = now
    return user

"""Administration: verify, suspend and reactivate clinicians, set roles and specialties, add specialties.

Admins need a TOTP session. They never read case content and cannot edit their own roles.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.audit.records import Purpose, Resource
from app.authz import policies
from app.deps import Admin, DirectoryDep, SessionDep, TrailDep, audited, refuse
from app.models.base import utcnow
from app.models.users import Role, UserStatus
from app.schemas.accounts import RolesUpdate, SuspendRequest, UserOut, UserPage
from app.schemas.common import problems
from app.schemas.specialties import SpecialtyCreate, SpecialtyOut
from app.services import accounts, admin, specialties

router = APIRouter(prefix="/v1/admin", tags=["admin"])
ADMIN = Purpose.SYSTEM_ADMINISTRATION


def _user_action(action: str):
    return audited(action, resource="user", id_param="user_id", purpose=ADMIN)


@router.get(
    "/users",
    operation_id="adminListUsers",
    summary="List users, filtered by status, role or specialty (cursor pagination)",
    response_model=UserPage,
    responses=problems(401, 403, 422),
    dependencies=[audited("admin.user.list", purpose=ADMIN)],
)
def list_users(
    _: Admin,
    session: SessionDep,
    status_: Annotated[UserStatus | None, Query(alias="status")] = None,
    role: Role | None = None,
    specialty: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> UserPage:
    page = admin.list_users(
        session, status=status_, role=role, specialty=specialty, limit=limit, cursor=cursor
    )
    return UserPage(items=accounts.views(session, page.items), next_cursor=page.next_cursor)


@router.post(
    "/users/{user_id}/verify",
    operation_id="adminVerifyUser",
    summary="Mark a clinician's professional identifier as checked; a pending account becomes active",
    response_model=UserOut,
    responses=problems(401, 403, 404, 409, 422, 429),
    dependencies=[_user_action("admin.user.verify")],
)
def verify_user(
    user_id: uuid.UUID, principal: Admin, session: SessionDep, directory: DirectoryDep
) -> UserOut:
    return accounts.view(session, admin.verify(session, user_id, principal.id, utcnow(), directory))


@router.post(
    "/users/{user_id}/suspend",
    operation_id="adminSuspendUser",
    summary="Suspend a user: every session ends at once and the account can no longer log in",
    response_model=UserOut,
    responses=problems(400, 401, 403, 404, 413, 422, 429),
    dependencies=[_user_action("admin.user.suspend")],
)
def suspend_user(
    user_id: uuid.UUID, body: SuspendRequest, principal: Admin, session: SessionDep, directory: DirectoryDep
) -> UserOut:
    refuse(policies.may_change_roles_of(principal, user_id))
    return accounts.view(session, admin.suspend(session, user_id, utcnow(), directory))


@router.post(
    "/users/{user_id}/reactivate",
    operation_id="adminReactivateUser",
    summary="Lift a suspension",
    response_model=UserOut,
    responses=problems(401, 403, 404, 422, 429),
    dependencies=[_user_action("admin.user.reactivate")],
)
def reactivate_user(
    user_id: uuid.UUID, principal: Admin, session: SessionDep, directory: DirectoryDep
) -> UserOut:
    return accounts.view(session, admin.reactivate(session, user_id, utcnow(), directory))


@router.put(
    "/users/{user_id}/roles",
    operation_id="adminSetUserRoles",
    summary="Replace a user's roles and specialties (never one's own)",
    response_model=UserOut,
    responses=problems(400, 401, 403, 404, 413, 422, 429),
    dependencies=[_user_action("admin.user.roles")],
)
def set_roles(
    user_id: uuid.UUID, body: RolesUpdate, principal: Admin, session: SessionDep, directory: DirectoryDep
) -> UserOut:
    refuse(policies.may_change_roles_of(principal, user_id))
    return accounts.view(session, admin.set_roles(session, user_id, body, utcnow(), directory))


@router.post(
    "/specialties",
    operation_id="adminCreateSpecialty",
    summary="Add a specialty (with its SNOMED CT code)",
    status_code=status.HTTP_201_CREATED,
    response_model=SpecialtyOut,
    responses=problems(400, 401, 403, 409, 413, 422, 429),
    dependencies=[audited("admin.specialty.create", purpose=ADMIN)],
)
def create_specialty(body: SpecialtyCreate, _: Admin, session: SessionDep, trail: TrailDep) -> SpecialtyOut:
    specialty = specialties.create(session, body)
    trail.resource = Resource(type="specialty", id=specialty.code)
    return SpecialtyOut.model_validate(specialty)

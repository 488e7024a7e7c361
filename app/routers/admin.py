"""Administration: verify, suspend and reactivate clinicians, set roles and specialties, add specialties.

Admins need a TOTP session. They never read case content and cannot edit their own roles.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from sqlmodel import Session

from app.audit.records import Purpose, Resource
from app.authz import policies
from app.deps import Admin, Db, TrailDep
from app.models.base import utcnow
from app.models.users import Role, User, UserStatus
from app.runtime.context import audited
from app.schemas.accounts import RolesUpdate, SuspendRequest, UserOut, UserPage
from app.schemas.common import problems
from app.schemas.specialties import SpecialtyCreate, SpecialtyOut
from app.services import accounts, admin, specialties

router = APIRouter(prefix="/v1/admin", tags=["admin"])
ADMIN = Purpose.SYSTEM_ADMINISTRATION


def _changed(session: Session, change: Callable[..., User], *args: Any) -> UserOut:
    """The view of a user after an admin's change to them."""
    return accounts.view(session, change(session, *args))


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
async def list_users(
    _: Admin,
    db: Db,
    status_: Annotated[UserStatus | None, Query(alias="status")] = None,
    role: Role | None = None,
    specialty: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> UserPage:
    return await db.run(
        _user_page, status=status_, role=role, specialty=specialty, limit=limit, cursor=cursor
    )


def _user_page(session: Session, **filters: Any) -> UserPage:
    page = admin.list_users(session, **filters)
    return UserPage(items=accounts.views(session, page.items), next_cursor=page.next_cursor)


@router.post(
    "/users/{user_id}/verify",
    operation_id="adminVerifyUser",
    summary="Mark a clinician's professional identifier as checked; a pending account becomes active",
    response_model=UserOut,
    responses=problems(401, 403, 404, 409, 422, 429),
    dependencies=[_user_action("admin.user.verify")],
)
async def verify_user(user_id: uuid.UUID, principal: Admin, db: Db) -> UserOut:
    return await db.run(_changed, admin.verify, user_id, principal.id, utcnow())


@router.post(
    "/users/{user_id}/suspend",
    operation_id="adminSuspendUser",
    summary="Suspend a user: every session ends at once and the account can no longer log in",
    response_model=UserOut,
    responses=problems(400, 401, 403, 404, 413, 422, 429),
    dependencies=[_user_action("admin.user.suspend")],
)
async def suspend_user(user_id: uuid.UUID, body: SuspendRequest, principal: Admin, db: Db) -> UserOut:
    policies.enforce(policies.may_change_roles_of(principal, user_id))
    return await db.run(_changed, admin.suspend, user_id, utcnow())


@router.post(
    "/users/{user_id}/reactivate",
    operation_id="adminReactivateUser",
    summary="Lift a suspension",
    response_model=UserOut,
    responses=problems(401, 403, 404, 422, 429),
    dependencies=[_user_action("admin.user.reactivate")],
)
async def reactivate_user(user_id: uuid.UUID, principal: Admin, db: Db) -> UserOut:
    return await db.run(_changed, admin.reactivate, user_id, utcnow())


@router.put(
    "/users/{user_id}/roles",
    operation_id="adminSetUserRoles",
    summary="Replace a user's roles and specialties (never one's own)",
    response_model=UserOut,
    responses=problems(400, 401, 403, 404, 413, 422, 429),
    dependencies=[_user_action("admin.user.roles")],
)
async def set_roles(user_id: uuid.UUID, body: RolesUpdate, principal: Admin, db: Db) -> UserOut:
    policies.enforce(policies.may_change_roles_of(principal, user_id))
    return await db.run(_changed, admin.set_roles, user_id, body, utcnow())


@router.post(
    "/specialties",
    operation_id="adminCreateSpecialty",
    summary="Add a specialty (with its SNOMED CT code)",
    status_code=status.HTTP_201_CREATED,
    response_model=SpecialtyOut,
    responses=problems(400, 401, 403, 409, 413, 422, 429),
    dependencies=[audited("admin.specialty.create", purpose=ADMIN)],
)
async def create_specialty(body: SpecialtyCreate, _: Admin, db: Db, trail: TrailDep) -> SpecialtyOut:
    specialty = await db.run(specialties.create, body)
    trail.resource = Resource(type="specialty", id=specialty.code)
    return SpecialtyOut.model_validate(specialty)

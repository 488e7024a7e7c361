"""The caller's own account."""

from __future__ import annotations

from fastapi import APIRouter

from app.audit.records import Resource
from app.deps import CurrentPrincipal, Db, TrailDep
from app.runtime.context import audited
from app.schemas.accounts import UserOut
from app.schemas.common import problems
from app.services import accounts

router = APIRouter(prefix="/v1/me", tags=["me"])


@router.get(
    "",
    operation_id="getMe",
    summary="The caller's account: status, roles, specialties, whether TOTP is enabled",
    response_model=UserOut,
    responses=problems(401),
    dependencies=[audited("user.read_self")],
)
async def get_me(principal: CurrentPrincipal, db: Db, trail: TrailDep) -> UserOut:
    trail.resource = Resource(type="user", id=str(principal.id))
    return await db.run(accounts.view, principal.user)

"""The directory of specialties."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import CurrentPrincipal, Db
from app.runtime.context import audited
from app.schemas.common import problems
from app.schemas.specialties import SpecialtyOut
from app.services import specialties

router = APIRouter(prefix="/v1/specialties", tags=["directory"])


@router.get(
    "",
    operation_id="listSpecialties",
    summary="Active specialties that cases can be addressed to",
    response_model=list[SpecialtyOut],
    responses=problems(401),
    dependencies=[audited("specialty.list")],
)
async def list_specialties(_: CurrentPrincipal, db: Db) -> list[SpecialtyOut]:
    return [SpecialtyOut.model_validate(row) for row in await db.run(specialties.list_active)]

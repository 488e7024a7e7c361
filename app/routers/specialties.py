"""The directory of specialties."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import Db
from app.runtime.context import audited
from app.schemas.common import problems
from app.schemas.specialties import SpecialtyOut
from app.services import specialties

router = APIRouter(prefix="/v1/specialties", tags=["directory"])


@router.get(
    "",
    operation_id="listSpecialties",
    summary="Active specialties that cases can be addressed to (public: the registration form lists them)",
    response_model=list[SpecialtyOut],
    responses=problems(429),
    dependencies=[audited("specialty.list")],
)
async def list_specialties(db: Db) -> list[SpecialtyOut]:
    return [SpecialtyOut.model_validate(row) for row in await db.run(specialties.list_active)]

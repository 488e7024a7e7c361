"""The directory of specialties and professions (public: the registration form lists them)."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import Db
from app.runtime.context import audited
from app.schemas.accounts import ProfessionOut
from app.schemas.common import problems
from app.schemas.professional_ids import PROFESSIONS
from app.schemas.specialties import SpecialtyOut
from app.services import specialties

router = APIRouter(prefix="/v1", tags=["directory"])


@router.get(
    "/specialties",
    operation_id="listSpecialties",
    summary="Active specialties that cases can be addressed to (public: the registration form lists them)",
    response_model=list[SpecialtyOut],
    responses=problems(429),
    dependencies=[audited("specialty.list")],
)
async def list_specialties(db: Db) -> list[SpecialtyOut]:
    return [SpecialtyOut.model_validate(row) for row in await db.run(specialties.list_active)]


@router.get(
    "/professions",
    operation_id="listProfessions",
    summary="Professions an account may register with, and the professional identifiers each one uses",
    response_model=list[ProfessionOut],
    responses=problems(429),
    dependencies=[audited("profession.list")],
)
async def list_professions() -> list[ProfessionOut]:
    return [
        ProfessionOut(
            code=info.code, name_fr=info.name_fr, name_en=info.name_en, id_kinds=list(info.id_kinds)
        )
        for info in PROFESSIONS.values()
    ]

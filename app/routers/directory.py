"""The recipient directory: whose devices a new case or message may be sealed for."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.deps import Clinician, Db
from app.runtime.context import audited
from app.schemas.accounts import ClinicianNames
from app.schemas.common import problems
from app.schemas.directory import SpecialtyRecipients, UserDevices
from app.services import devices

router = APIRouter(prefix="/v1", tags=["directory"])


@router.get(
    "/specialties/{code}/recipients",
    operation_id="listSpecialtyRecipients",
    summary="Active devices of the verified, active specialists of a specialty (a new case's audience), "
    "each with the proof of its directory entry",
    response_model=SpecialtyRecipients,
    responses=problems(401, 403, 404, 422),
    dependencies=[audited("directory.specialty_recipients", resource="specialty", id_param="code")],
)
async def specialty_recipients(
    code: Annotated[str, Path(max_length=40)], _: Clinician, db: Db
) -> SpecialtyRecipients:
    proved = await db.run(devices.specialty_recipients, code)
    return SpecialtyRecipients(specialty=code, checkpoint=proved.checkpoint, devices=proved.devices)


@router.get(
    "/users/{user_id}/devices",
    operation_id="listUserDevices",
    summary="Active devices of a verified, active clinician, with directory proofs (404 for anyone else)",
    response_model=UserDevices,
    responses=problems(401, 403, 404, 422),
    dependencies=[audited("directory.user_devices", resource="user", id_param="user_id")],
)
async def user_devices(user_id: uuid.UUID, _: Clinician, db: Db) -> UserDevices:
    proved = await db.run(devices.user_devices, user_id)
    return UserDevices(user_id=user_id, checkpoint=proved.checkpoint, devices=proved.devices)


@router.get(
    "/clinicians",
    operation_id="listClinicianNames",
    summary="Display names, roles and specialties of colleagues, by id (verified, active clinicians only)",
    response_model=ClinicianNames,
    responses=problems(401, 403, 422),
    dependencies=[audited("directory.clinician_names")],
)
async def clinician_names(
    ids: Annotated[list[uuid.UUID], Query(alias="id", min_length=1, max_length=100)], _: Clinician, db: Db
) -> ClinicianNames:
    return ClinicianNames(clinicians=await db.run(devices.clinician_names, ids))

"""The recipient directory: whose devices a new case or message may be sealed for."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path

from app.deps import Clinician, Db
from app.runtime.context import audited
from app.schemas.common import problems
from app.schemas.devices import SpecialtyRecipients, UserDevices
from app.services import devices

router = APIRouter(prefix="/v1", tags=["directory"])


@router.get(
    "/specialties/{code}/recipients",
    operation_id="listSpecialtyRecipients",
    summary="Active devices of the verified, active specialists of a specialty: a new case's audience",
    response_model=SpecialtyRecipients,
    responses=problems(401, 403, 404, 422),
    dependencies=[audited("directory.specialty_recipients", resource="specialty", id_param="code")],
)
async def specialty_recipients(
    code: Annotated[str, Path(max_length=40)], _: Clinician, db: Db
) -> SpecialtyRecipients:
    return SpecialtyRecipients(specialty=code, devices=await db.run(devices.specialty_recipients, code))


@router.get(
    "/users/{user_id}/devices",
    operation_id="listUserDevices",
    summary="Active devices of a verified, active clinician (404 for anyone else)",
    response_model=UserDevices,
    responses=problems(401, 403, 404, 422),
    dependencies=[audited("directory.user_devices", resource="user", id_param="user_id")],
)
async def user_devices(user_id: uuid.UUID, _: Clinician, db: Db) -> UserDevices:
    return UserDevices(user_id=user_id, devices=await db.run(devices.user_devices, user_id))

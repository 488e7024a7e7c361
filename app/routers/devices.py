"""The caller's devices: registration with proof of possession of both keys, listing, revocation."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from app.audit.records import Resource
from app.deps import ActivePrincipal, Db, RuntimeDep, TrailDep
from app.models.base import utcnow
from app.runtime.context import audited
from app.schemas.common import problems
from app.schemas.devices import ChallengeIn, ChallengeOut, DeviceCreate, DeviceOut
from app.services import devices

router = APIRouter(prefix="/v1/devices", tags=["devices"])


@router.post(
    "/challenge",
    operation_id="createDeviceChallenge",
    summary="Get a single-use challenge (5 minutes) and a secret sealed to the KEM key to register",
    status_code=status.HTTP_201_CREATED,
    response_model=ChallengeOut,
    responses=problems(400, 401, 403, 413, 422, 429),
    dependencies=[audited("device.challenge")],
)
async def create_challenge(
    body: ChallengeIn, principal: ActivePrincipal, db: Db, runtime: RuntimeDep
) -> ChallengeOut:
    sealer = runtime.authenticator.sealer
    challenge, kem_challenge = await db.run(devices.issue_challenge, principal.id, body, sealer, utcnow())
    return ChallengeOut(
        challenge_id=challenge.id,
        challenge=challenge.challenge,
        kem_challenge=kem_challenge,
        expires_at=challenge.expires_at,
    )


@router.post(
    "",
    operation_id="registerDevice",
    summary="Register a device's public keys, proving possession of its signing and KEM keys",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceOut,
    responses=problems(400, 401, 403, 409, 413, 422, 429),
    dependencies=[audited("device.register")],
)
async def register_device(
    body: DeviceCreate,
    principal: ActivePrincipal,
    db: Db,
    runtime: RuntimeDep,
    trail: TrailDep,
) -> DeviceOut:
    sealer, max_devices = runtime.authenticator.sealer, runtime.settings.max_devices_per_user
    device = await db.run(devices.register, principal.id, body, sealer, utcnow(), max_devices)
    trail.resource = Resource(type="device", id=str(device.id))
    return DeviceOut.model_validate(device)


@router.get(
    "",
    operation_id="listDevices",
    summary="The caller's devices, revoked ones included",
    response_model=list[DeviceOut],
    responses=problems(401, 403),
    dependencies=[audited("device.list")],
)
async def list_devices(principal: ActivePrincipal, db: Db) -> list[DeviceOut]:
    return [DeviceOut.model_validate(device) for device in await db.run(devices.list_own, principal.id)]


@router.delete(
    "/{device_id}",
    operation_id="revokeDevice",
    summary="Revoke a device: it receives no new envelopes, cannot author, and is served no envelope",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, 422, 429),
    dependencies=[audited("device.revoke", resource="device", id_param="device_id")],
)
async def revoke_device(device_id: uuid.UUID, principal: ActivePrincipal, db: Db) -> None:
    await db.run(devices.revoke, principal.id, device_id, utcnow())

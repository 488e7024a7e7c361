"""The caller's key backup: an opaque blob their client encrypted; the server cannot open it."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.deps import ActivePrincipal, Db, SettingsDep
from app.models.base import utcnow
from app.runtime.body_limits import LargeBody, large_body
from app.runtime.context import audited
from app.schemas.common import problems
from app.schemas.devices import KeyBackupIn, KeyBackupOut
from app.services import key_backups

router = APIRouter(prefix="/v1/me", tags=["me"])


@router.put(
    "/key-backup",
    operation_id="putKeyBackup",
    summary="Store or replace the caller's encrypted key backup",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(400, 401, 403, 409, 413, 422, 429),
    dependencies=[audited("key_backup.write", resource="key_backup"), large_body(LargeBody.KEY_BACKUP)],
)
async def put_key_backup(
    body: KeyBackupIn, principal: ActivePrincipal, db: Db, settings: SettingsDep
) -> None:
    await db.run(key_backups.put, principal.id, body.blob, utcnow(), settings.max_key_backup_bytes)


@router.get(
    "/key-backup",
    operation_id="getKeyBackup",
    summary="The caller's encrypted key backup",
    response_model=KeyBackupOut,
    responses=problems(401, 403, 404),
    dependencies=[audited("key_backup.read", resource="key_backup")],
)
async def get_key_backup(principal: ActivePrincipal, db: Db) -> KeyBackupOut:
    return KeyBackupOut.model_validate(await db.run(key_backups.get, principal.id))

"""The key backup: a user's device keys, encrypted by their own client and stored blind."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session

from app.errors import Conflict, NotFound, PayloadTooLarge, readable_size
from app.models.devices import KeyBackup
from app.services.inserts import flush_new


class KeyBackupRaced(Conflict):
    code = "key_backup_conflict"
    title = "Another request stored a key backup at the same moment: read it, then retry"


class KeyBackupNotFound(NotFound):
    code = "key_backup_not_found"
    title = "No key backup is stored"


def put(session: Session, user_id: uuid.UUID, blob: bytes, now: datetime, max_bytes: int) -> None:
    if len(blob) > max_bytes:
        raise PayloadTooLarge(f"a key backup holds at most {readable_size(max_bytes)}")
    backup = session.get(KeyBackup, user_id)
    if backup is None:
        session.add(KeyBackup(user_id=user_id, blob=blob, updated_at=now))
        flush_new(session, KeyBackupRaced())
    else:
        backup.blob, backup.updated_at = blob, now


def get(session: Session, user_id: uuid.UUID) -> KeyBackup:
    backup = session.get(KeyBackup, user_id)
    if backup is None:
        raise KeyBackupNotFound()
    return backup

"""Writing the device directory log: an entry is inserted and sequenced inside the transaction of the change
it records, so the change and its signed entry commit together or not at all.

Why not a background sequencer as for the audit log: directory changes are rare (a device registered, an
account suspended), and an answer can only prove an entry that has a position. Sequencing in the writing
transaction gives every device its position by the time anyone can see it, so no answer ever names a device
it cannot prove. The log's lock (a blocking advisory lock on PostgreSQL; SQLite's write lock, which every
write transaction holds) serializes writers, so positions follow commit order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlmodel import Session

from app.audit.log import LogTables
from app.audit.sequencer import sequence_within
from app.crypto.directory import DeviceKeysOnRecord, EntryAction, Registration, account_entry, device_entry
from app.crypto.signed_note import NoteSigner
from app.models.base import table_of
from app.models.devices import Device
from app.models.directory import DirectoryCheckpoint, DirectoryEntry, DirectoryLogState, DirectoryTreeNode

DIRECTORY_LOG = LogTables(
    records=table_of(DirectoryEntry),
    nodes=table_of(DirectoryTreeNode),
    state=table_of(DirectoryLogState),
    checkpoints=table_of(DirectoryCheckpoint),
    lock_key=0x636F6E6664697200,  # "confdir\0"
)
ENTRIES = table_of(DirectoryEntry)


def keys_on_record(device: Device) -> DeviceKeysOnRecord:
    return DeviceKeysOnRecord(
        device_id=str(device.id),
        user_id=str(device.user_id),
        suite=device.suite,
        signing_public_key=device.signing_public_key,
        kem_public_key=device.kem_public_key,
    )


@dataclass(frozen=True)
class DirectoryLog:
    """The directory log's writer: the services get it from the request (app.deps.DirectoryDep)."""

    signer: NoteSigner

    def device_registered(self, session: Session, device: Device, registration: Registration) -> None:
        entry = device_entry(
            EntryAction.DEVICE_REGISTER, keys_on_record(device), device.created_at, registration
        )
        self._append(
            session, entry, device.user_id, device.id, EntryAction.DEVICE_REGISTER, device.created_at
        )

    def device_revoked(self, session: Session, device: Device, now: datetime) -> None:
        entry = device_entry(EntryAction.DEVICE_REVOKE, keys_on_record(device), now)
        self._append(session, entry, device.user_id, device.id, EntryAction.DEVICE_REVOKE, now)

    def account_changed(
        self,
        session: Session,
        user_id: uuid.UUID,
        action: EntryAction,
        now: datetime,
        specialty: str | None = None,
    ) -> None:
        self._append(session, account_entry(action, str(user_id), now, specialty), user_id, None, action, now)

    def _append(
        self,
        session: Session,
        entry: bytes,
        user_id: uuid.UUID,
        device_id: uuid.UUID | None,
        action: EntryAction,
        now: datetime,
    ) -> None:
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            # Held until the request commits: the next writer numbers after this entry.
            connection.execute(select(func.pg_advisory_xact_lock(DIRECTORY_LOG.lock_key)))
        connection.execute(
            insert(ENTRIES).values(
                record=entry, entry_time=now, user_id=user_id, device_id=device_id, action=str(action)
            )
        )
        sequence_within(connection, self.signer, DIRECTORY_LOG)

"""Proved answers: the devices an answer names, each with its registration entry and an inclusion proof to
the directory log's latest checkpoint, read in a few batched lookups whatever the number of devices."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session

from app.audit import inspection
from app.audit.log import DbNodeReader
from app.crypto import merkle
from app.crypto.directory import EntryAction
from app.directory.log import DIRECTORY_LOG, ENTRIES
from app.models.devices import Device
from app.schemas.directory import DeviceProof, ProvedDevice

_IN_CHUNK = 500


@dataclass(frozen=True)
class ProvedSet:
    checkpoint: str
    tree_size: int
    proofs: dict[uuid.UUID, DeviceProof]

    def device(self, device: Device) -> ProvedDevice:
        return ProvedDevice(
            device_id=device.id,
            user_id=device.user_id,
            suite=device.suite,
            signing_public_key=device.signing_public_key,
            kem_public_key=device.kem_public_key,
            directory=self.proofs.get(device.id),
        )


def head(session: Session) -> inspection.Head:
    return inspection.head(session, DIRECTORY_LOG)


def prove(session: Session, devices: Sequence[Device]) -> ProvedSet:
    """Proofs of the devices' registration entries to the current checkpoint. An entry beyond it (written
    after the checkpoint was read, on PostgreSQL) is left unproved rather than proved to a later root."""
    current = head(session)
    size = current.tree_size
    positions: dict[uuid.UUID, tuple[int, bytes]] = {}
    ids = [device.id for device in devices]
    for offset in range(0, len(ids), _IN_CHUNK):
        rows = session.execute(
            select(ENTRIES.c.device_id, ENTRIES.c.position, ENTRIES.c.record).where(
                ENTRIES.c.device_id.in_(ids[offset : offset + _IN_CHUNK]),
                ENTRIES.c.action == EntryAction.DEVICE_REGISTER.value,
                ENTRIES.c.position < size,
            )
        )
        positions.update((device_id, (position, record)) for device_id, position, record in rows)
    hashes = merkle.inclusion_proofs(
        DbNodeReader(session, DIRECTORY_LOG), [position for position, _ in positions.values()], size
    )
    proofs = {
        device_id: DeviceProof(
            index=position, entry=record, inclusion=[node.hex() for node in hashes[position]]
        )
        for device_id, (position, record) in positions.items()
    }
    return ProvedSet(checkpoint=current.checkpoint.decode(), tree_size=size, proofs=proofs)

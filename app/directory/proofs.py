"""Proved answers: the devices an answer names, each with its registration entry and an inclusion proof to
the directory log's latest checkpoint, read in a few batched lookups whatever the number of devices."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, select
from sqlmodel import Session

from app.audit import inspection
from app.audit.log import STATE_ID, DbNodeReader
from app.crypto import merkle
from app.crypto.directory import EntryAction
from app.directory.log import DIRECTORY_LOG, ENTRIES
from app.models.devices import Device
from app.schemas.directory import DeviceProof, ProvedDevice

_IN_CHUNK = 500
# Inclusion proofs by (root, index, size): a proof never changes for a given tree, and the same devices are
# proved to the same checkpoint again and again between directory changes (which are rare).
_PROOF_CACHE: dict[tuple[bytes, int, int], list[bytes]] = {}
_PROOF_CACHE_LIMIT = 20_000
_STATE = DIRECTORY_LOG.state
_REGISTERED = ENTRIES.c.action == EntryAction.DEVICE_REGISTER.value
# Built once: every answer that names devices runs them (a new case's, a case read's participants). The log's
# state with the registrations of the first devices, in one statement (on PostgreSQL, one round trip), then
# those of any further chunk of devices, up to that state's tree size.
_STATE_WITH_REGISTRATIONS = (
    select(
        _STATE.c.tree_size,
        _STATE.c.root_hash,
        _STATE.c.checkpoint,
        ENTRIES.c.device_id,
        ENTRIES.c.position,
        ENTRIES.c.record,
    )
    .select_from(
        _STATE.outerjoin(
            ENTRIES,
            and_(
                ENTRIES.c.device_id.in_(bindparam("ids", expanding=True)),
                _REGISTERED,
                ENTRIES.c.position < _STATE.c.tree_size,
            ),
        )
    )
    .where(_STATE.c.id == STATE_ID)
)
_REGISTRATIONS = select(ENTRIES.c.device_id, ENTRIES.c.position, ENTRIES.c.record).where(
    ENTRIES.c.device_id.in_(bindparam("ids", expanding=True)),
    _REGISTERED,
    ENTRIES.c.position < bindparam("size"),
)


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


def _inclusion_proofs(session: Session, root: bytes, indices: list[int], size: int) -> dict[int, list[bytes]]:
    missing = [index for index in indices if (root, index, size) not in _PROOF_CACHE]
    if missing:
        if len(_PROOF_CACHE) + len(missing) > _PROOF_CACHE_LIMIT:
            _PROOF_CACHE.clear()
        read = merkle.inclusion_proofs(DbNodeReader(session, DIRECTORY_LOG), missing, size)
        _PROOF_CACHE.update(((root, index, size), proof) for index, proof in read.items())
    return {index: _PROOF_CACHE[(root, index, size)] for index in indices}


def prove(session: Session, devices: Sequence[Device]) -> ProvedSet:
    """Proofs of the devices' registration entries to the current checkpoint. An entry beyond it (written
    after the checkpoint was read, on PostgreSQL) is left unproved rather than proved to a later root."""
    ids = [device.id for device in devices]
    rows = session.execute(_STATE_WITH_REGISTRATIONS, {"ids": ids[:_IN_CHUNK]}).all()
    if not rows:
        raise inspection.LogNotReady()
    size, root, checkpoint = rows[0][:3]
    positions = {
        device_id: (position, record) for *_, device_id, position, record in rows if device_id is not None
    }
    for offset in range(_IN_CHUNK, len(ids), _IN_CHUNK):
        chunk = session.execute(_REGISTRATIONS, {"ids": ids[offset : offset + _IN_CHUNK], "size": size})
        positions.update((device_id, (position, record)) for device_id, position, record in chunk)
    hashes = _inclusion_proofs(session, root, [position for position, _ in positions.values()], size)
    proofs = {
        device_id: DeviceProof(
            index=position, entry=record, inclusion=[node.hex() for node in hashes[position]]
        )
        for device_id, (position, record) in positions.items()
    }
    return ProvedSet(checkpoint=checkpoint.decode(), tree_size=size, proofs=proofs)

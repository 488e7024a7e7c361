"""Export bundles written from the database: records stream from server-side cursors into the ZIP archive
(app.audit.bundle), with the proofs that tie them to a signed checkpoint, so memory stays flat at any size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, BinaryIO

from app.audit.bundle import ConsistencyProof, FilteredExport, RangeExport, write_bundle
from app.audit.log import DbNodeReader, Executor, records_by_position
from app.audit.query import EventFilter, matching_records
from app.audit.renderings import VIEW_MEMBERS, build_view
from app.crypto.merkle import (
    MemoryNodeStore,
    consistency_proof,
    inclusion_proof,
    inclusion_proof_coords,
    range_proof,
)

# Inclusion proofs of a filtered export are built per batch of records from one node lookup per level.
_PROOF_BATCH = 256


@dataclass(frozen=True)
class SignedHead:
    """The signed checkpoint an export is tied to."""

    origin: str
    tree_size: int
    note: bytes
    verifier_key: str


@dataclass(frozen=True)
class ExportSpec:
    start: int
    end: int
    event_filter: EventFilter | None
    formats: tuple[str, ...] = ()
    consistency_from: tuple[int, ...] = ()

    def describe(self) -> dict[str, Any]:
        """A filtered export's description in bundle.json: the filter and the position range searched."""
        assert self.event_filter is not None
        return {**self.event_filter.describe(), "start": self.start, "end": self.end}


def _inclusion_proofs(
    db: Executor, records: Iterable[tuple[int, bytes]], tree_size: int
) -> Iterator[tuple[int, list[bytes]]]:
    reader = DbNodeReader(db)
    positions = (position for position, _ in records)
    while batch := list(islice(positions, _PROOF_BATCH)):
        store = MemoryNodeStore()
        coords = [coord for position in batch for coord in inclusion_proof_coords(position, tree_size)]
        store.nodes = reader.get_nodes(coords)
        for position in batch:
            yield position, inclusion_proof(store, position, tree_size)


def write_export(db: Executor, out: BinaryIO, head: SignedHead, spec: ExportSpec) -> dict[str, Any]:
    """Stream the bundle to `out`; bundle.json's content is returned. Raises ValueError when the stored
    records do not fill the range they should (a record deleted from the database)."""
    reader = DbNodeReader(db)
    consistency = [
        ConsistencyProof(old_size, consistency_proof(reader, old_size, head.tree_size))
        for old_size in sorted(set(spec.consistency_from))
    ]

    def selected() -> Iterator[tuple[int, bytes]]:
        # A fresh cursor each time: the archive holds records, proofs and views in separate members.
        if spec.event_filter is None:
            return records_by_position(db, spec.start, spec.end)
        return matching_records(db, spec.event_filter, spec.start, spec.end)

    export: RangeExport | FilteredExport
    if spec.event_filter is None:
        export = RangeExport(spec.start, spec.end, range_proof(reader, spec.start, spec.end, head.tree_size))
    else:
        export = FilteredExport(spec.describe(), _inclusion_proofs(db, selected(), head.tree_size))
    views = {
        VIEW_MEMBERS[name]: build_view(VIEW_MEMBERS[name], selected(), head.origin)
        for name in VIEW_MEMBERS
        if name in spec.formats
    }
    return write_bundle(
        out,
        origin=head.origin,
        tree_size=head.tree_size,
        checkpoint_note=head.note,
        verifier_key=head.verifier_key,
        records=(record for _, record in selected()),
        export=export,
        consistency=consistency,
        views=views,
    )

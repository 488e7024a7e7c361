"""The audit log for compliance officers: checkpoints, proofs, tiles, event queries and export bundles.

Reads only: records are written by the recorder and sequenced by the sequencer. Every call here is itself
recorded by the route's audit declaration.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from sqlalchemy import select
from sqlmodel import Session

from app.audit import log
from app.audit import witnesses as witnesses_of_log
from app.audit.export import ExportSpec, SignedHead, write_export
from app.audit.log import AUDIT_LOG, RECORDS, DbNodeReader, LogTables
from app.audit.query import EventFilter
from app.crypto import merkle, tiles
from app.crypto.cosignature import WitnessKey
from app.crypto.signed_note import NoteSigner
from app.errors import AppError, InvalidInput, NotFound, ServiceUnavailable
from app.models.audit import AuditExport
from app.platform.pagination import InvalidCursor, Page, decode_cursor, page_of

CURSOR_KEYS = ("id",)
EXPORT_READY = "ready"
_HASH_CHUNK = 1 << 20


class LogNotReady(ServiceUnavailable):
    code = "audit_log_not_ready"
    title = "The audit log has no signed checkpoint yet; the sequencer has not run"


class BeyondTree(NotFound):
    code = "beyond_tree"
    title = "The log has not reached this size"


class InvalidProofRequest(InvalidInput):
    code = "invalid_proof_request"
    title = "The proof parameters are not valid"


class TileNotFound(NotFound):
    code = "tile_not_found"
    title = "No such tile"


class InvalidExportRequest(InvalidInput):
    code = "invalid_export_request"
    title = "The export parameters are not valid"


class ExportNotFound(NotFound):
    code = "export_not_found"
    title = "No such export"


class LogInconsistent(AppError):
    status = 500
    code = "audit_log_inconsistent"
    title = "The stored audit log does not match its signed checkpoint"


@dataclass(frozen=True)
class Head:
    tree_size: int
    checkpoint: bytes


@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    record: bytes
    hashes: list[bytes]
    checkpoint: bytes | None


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    hashes: list[bytes]
    checkpoint: bytes | None


@dataclass(frozen=True)
class StoredRecord:
    id: int
    position: int | None
    record: bytes


# The functions below serve any Merkle log (the audit log by default, the device directory log too).


def head(session: Session, tables: LogTables = AUDIT_LOG) -> Head:
    state = log.load_state(session, tables)
    if state is None:
        raise LogNotReady()
    return Head(tree_size=state.tree_size, checkpoint=state.checkpoint)


def _size_within(session: Session, size: int | None, tables: LogTables) -> tuple[int, bytes | None]:
    """A size up to the current one (default: the current one), and its checkpoint if one was signed."""
    current = head(session, tables)
    if size is None or size == current.tree_size:
        return current.tree_size, current.checkpoint
    if size > current.tree_size:
        raise BeyondTree(f"the log holds {current.tree_size} records")
    return size, log.checkpoint_note(session, size, tables)


def inclusion(
    session: Session, index: int, tree_size: int | None, tables: LogTables = AUDIT_LOG
) -> InclusionProof:
    size, note = _size_within(session, tree_size, tables)
    if index >= size:
        raise InvalidProofRequest(f"index {index} is not below the tree size {size}")
    records = tables.records
    record = session.execute(select(records.c.record).where(records.c.position == index)).scalar_one_or_none()
    if record is None:
        raise LogInconsistent(f"no record at position {index}")
    hashes = merkle.inclusion_proof(DbNodeReader(session, tables), index, size)
    return InclusionProof(index=index, tree_size=size, record=record, hashes=hashes, checkpoint=note)


def consistency(
    session: Session, first: int, second: int | None, tables: LogTables = AUDIT_LOG
) -> ConsistencyProof:
    size, note = _size_within(session, second, tables)
    if first > size:
        raise InvalidProofRequest(f"first {first} is larger than second {size}")
    hashes = merkle.consistency_proof(DbNodeReader(session, tables), first, size)
    return ConsistencyProof(first=first, second=size, hashes=hashes, checkpoint=note)


def tile(session: Session, path: str, tables: LogTables = AUDIT_LOG) -> bytes:
    """A C2SP tlog-tiles hash tile or entry bundle; TileNotFound for a bad path or one beyond the tree."""
    tree_size = head(session, tables).tree_size
    try:
        if path.startswith("tile/entries/"):
            index, width = tiles.parse_entry_bundle_path(path)
            level = 0
        else:
            level, index, width = tiles.parse_tile_path(path)
    except ValueError as error:
        raise TileNotFound() from error
    # Nodes at this level exist for [0, tree_size >> 8L); a tile is served once all its nodes exist.
    if index * tiles.TILE_WIDTH + width > tree_size >> (tiles.TILE_HEIGHT * level):
        raise TileNotFound(f"the log holds {tree_size} records")
    if path.startswith("tile/entries/"):
        first = index * tiles.TILE_WIDTH
        records = [record for _, record in log.records_by_position(session, first, first + width, tables)]
        if len(records) != width:
            raise LogInconsistent(f"records are missing at positions {first}..{first + width - 1}")
        return tiles.encode_entry_bundle(records)
    return tiles.read_tile(DbNodeReader(session, tables), level, index, width)


def list_events(
    session: Session, event_filter: EventFilter | None, limit: int, cursor: str | None
) -> Page[StoredRecord]:
    """Records in insertion (id) order, sequenced or not; keyset pagination on the id.

    On PostgreSQL a record can commit after a later page was read (ids are not in commit order): a complete
    account of a period is a range export, not a walk through these pages.
    """
    conditions = event_filter.conditions() if event_filter else []
    query = select(RECORDS.c.id, RECORDS.c.position, RECORDS.c.record).where(*conditions)
    if cursor is not None:
        after = decode_cursor(cursor, CURSOR_KEYS)["id"]
        # A larger id is no cursor of ours, and PostgreSQL's bigint would overflow on it.
        if not isinstance(after, int) or not 0 <= after < 2**63:
            raise InvalidCursor()
        query = query.where(RECORDS.c.id > after)
    rows = session.execute(query.order_by(RECORDS.c.id).limit(limit + 1)).all()
    records = [StoredRecord(id=row.id, position=row.position, record=row.record) for row in rows]
    return page_of(records, limit, lambda stored: {"id": stored.id})


@dataclass(frozen=True)
class ExportRequest:
    start: int | None
    end: int | None
    event_filter: EventFilter | None
    formats: tuple[str, ...]
    consistency_from: tuple[int, ...]
    witnessed: bool = False


def _spec(request: ExportRequest, tree_size: int) -> ExportSpec:
    start = request.start or 0
    end = tree_size if request.end is None else request.end
    if not start <= end <= tree_size:
        raise InvalidExportRequest(
            f"the range [{start}, {end}) is not within the log's {tree_size} sequenced records"
        )
    beyond = [size for size in request.consistency_from if size > tree_size]
    if beyond:
        raise InvalidExportRequest(f"consistency_from sizes {beyond} exceed the tree size {tree_size}")
    return ExportSpec(start, end, request.event_filter, request.formats, request.consistency_from)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def create_export(
    session: Session,
    request: ExportRequest,
    *,
    officer_id: uuid.UUID,
    signer: NoteSigner,
    witnesses: list[WitnessKey],
    exports_dir: Path,
    now: datetime,
) -> AuditExport:
    """Write a bundle against the latest signed checkpoint (or the latest every configured witness
    cosigned), with the witnesses' cosignatures of it, into exports_dir and register it."""
    current = head(session)
    size, note = current.tree_size, current.checkpoint
    if request.witnessed:
        size = witnesses_of_log.latest_witnessed_size(session, witnesses)
        note = witnesses_of_log.cosigned_note(session, size, witnesses)
    else:
        note = witnesses_of_log.with_cosignatures(session, note, size, witnesses)
    spec = _spec(request, size)
    signed = SignedHead(signer.name, size, note, signer.verifier().key_string)
    export_id = uuid.uuid4()
    exports_dir.mkdir(parents=True, exist_ok=True)
    path = exports_dir / f"{export_id}.zip"
    partial = path.with_suffix(".zip.part")
    try:
        with partial.open("wb") as out:
            manifest = write_export(session, out, signed, spec)
        partial.replace(path)
    except ValueError as error:
        raise LogInconsistent(str(error)) from error
    finally:
        partial.unlink(missing_ok=True)
    export = AuditExport(
        id=export_id,
        officer_id=officer_id,
        created_at=now,
        parameters=json.dumps(_parameters(request, spec), sort_keys=True),
        status=EXPORT_READY,
        tree_size=size,
        record_count=manifest["record_count"],
        file_path=path.name,
        file_size=path.stat().st_size,
        file_sha256=_sha256_of(path),
    )
    session.add(export)
    return export


def _parameters(request: ExportRequest, spec: ExportSpec) -> dict:
    return {
        "kind": "range" if spec.event_filter is None else "filtered",
        "start": spec.start,
        "end": spec.end,
        "filters": spec.event_filter.describe() if spec.event_filter else None,
        "formats": list(request.formats),
        "consistency_from": sorted(set(request.consistency_from)),
    }


def parameters_of(export: AuditExport) -> dict:
    return orjson.loads(export.parameters)


def export_file(
    session: Session, export_id: uuid.UUID, officer_id: uuid.UUID, exports_dir: Path
) -> tuple[AuditExport, Path]:
    """An export of this officer and its bundle file; another officer's is as absent as a missing one."""
    export = session.get(AuditExport, export_id)
    if export is None or export.officer_id != officer_id:
        raise ExportNotFound()
    # Stored relative to the exports folder, so the data folder can move.
    path = exports_dir / export.file_path
    if not path.is_file():
        raise ExportNotFound("the bundle file is no longer on the server")
    return export, path


def checkpoint_of(session: Session, export: AuditExport) -> bytes | None:
    return log.checkpoint_note(session, export.tree_size)

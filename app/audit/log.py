"""A Merkle log as the database holds it: tree nodes, the sequencer's state, signed checkpoints, records by
position; and `verify_log`, which recomputes the whole log from the stored records.

Two logs share this code, each with its own four tables (`LogTables`): the audit log and the device directory
log (app.directory). Every function takes the log's tables; the audit log's are the default.

Everything here reads with Core statements on a Connection or a Session (both `execute`), so the sequencer,
the services and the CLI share it. Records at positions below a signed size never change, so reads that span
several statements need no snapshot.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Row, Select, Table, func, select, text
from sqlalchemy.orm import Session

from app.crypto.merkle import CompactRange, NodeCoord, leaf_hash
from app.crypto.signed_note import NoteError, NoteVerifier, open_checkpoint
from app.models.audit import AuditCheckpoint, AuditLogState, AuditRecord, AuditTreeNode
from app.models.base import table_of


@dataclass(frozen=True)
class LogTables:
    """One Merkle log's storage. `records` has `id` (insertion order), `position` (NULL until sequenced) and
    `record` (the leaf's exact bytes); `nodes`, `state` and `checkpoints` are shaped like the audit log's."""

    records: Table
    nodes: Table
    state: Table
    checkpoints: Table
    # pg_try_advisory_xact_lock key of the log's sequencer: one sequencer at a time per log.
    lock_key: int


RECORDS = table_of(AuditRecord)
NODES = table_of(AuditTreeNode)
STATE = table_of(AuditLogState)
CHECKPOINTS = table_of(AuditCheckpoint)
# "confrere" in ASCII, a constant every deployment of this code shares.
AUDIT_LOG = LogTables(RECORDS, NODES, STATE, CHECKPOINTS, lock_key=0x636F6E6672657265)
STATE_ID = 1
# Bound parameters per IN list (SQLite): well under its limit, large enough for a whole tile.
_IN_CHUNK = 500
STREAM_ROWS = 1000


Executor = Connection | Session


# On PostgreSQL a whole batch of nodes is one statement with two array parameters: an IN list per level
# costs a round trip and a fresh query plan each, which dominated filtered exports.
def _pg_nodes(nodes: Table):
    return text(
        f'SELECT n.level, n."index", n.hash FROM {nodes.name} AS n '  # noqa: S608 (a table of ours)
        'JOIN unnest(CAST(:levels AS smallint[]), CAST(:indices AS bigint[])) AS wanted(level, "index") '
        'ON n.level = wanted.level AND n."index" = wanted."index"'
    )


class DbNodeReader:
    """A merkle.NodeReader over a log's tree nodes: one query per batch (PostgreSQL) or per tree level."""

    def __init__(self, db: Executor, tables: LogTables = AUDIT_LOG) -> None:
        self._db = db
        self._nodes = tables.nodes
        bind = db.get_bind() if isinstance(db, Session) else db
        self._postgres = bind.dialect.name == "postgresql"

    def get_nodes(self, coords: Sequence[NodeCoord]) -> dict[NodeCoord, bytes]:
        nodes = self._nodes
        if self._postgres:
            levels = [level for level, _ in coords]
            indices = [index for _, index in coords]
            rows = self._db.execute(_pg_nodes(nodes), {"levels": levels, "indices": indices})
            return {(level, index): node for level, index, node in rows}
        by_level: dict[int, list[int]] = defaultdict(list)
        for level, index in coords:
            by_level[level].append(index)
        found: dict[NodeCoord, bytes] = {}
        for level, indices in by_level.items():
            for offset in range(0, len(indices), _IN_CHUNK):
                chunk = indices[offset : offset + _IN_CHUNK]
                rows = self._db.execute(
                    select(nodes.c.index, nodes.c.hash).where(
                        nodes.c.level == level, nodes.c.index.in_(chunk)
                    )
                )
                found.update(((level, index), node) for index, node in rows)
        return found


@functools.cache
def _state_of(state: Table) -> Select:
    """Built once per log: every answer with directory proofs reads the directory log's state."""
    return select(state).where(state.c.id == STATE_ID)


def load_state(db: Executor, tables: LogTables = AUDIT_LOG) -> Row | None:
    return db.execute(_state_of(tables.state)).one_or_none()


def checkpoint_note(db: Executor, size: int, tables: LogTables = AUDIT_LOG) -> bytes | None:
    checkpoints = tables.checkpoints
    return db.execute(select(checkpoints.c.note).where(checkpoints.c.size == size)).scalar_one_or_none()


def records_by_position(
    db: Executor, start: int, end: int, tables: LogTables = AUDIT_LOG
) -> Iterator[tuple[int, bytes]]:
    """(position, record) for positions [start, end), streamed in position order."""
    records = tables.records
    rows = db.execute(
        select(records.c.position, records.c.record)
        .where(records.c.position >= start, records.c.position < end)
        .order_by(records.c.position)
        .execution_options(yield_per=STREAM_ROWS)
    )
    yield from rows


class LogVerificationError(ValueError):
    """The stored log does not match its signed checkpoint; the message says where it first differs."""


@dataclass(frozen=True)
class LogReport:
    origin: str
    tree_size: int
    root_hash: bytes
    checkpoints_checked: int
    pending: int


def _signed_checkpoints(
    db: Executor, verifier: NoteVerifier, up_to: int, checkpoints: Table
) -> Iterator[tuple[int, bytes]]:
    rows = db.execute(
        select(checkpoints.c.size, checkpoints.c.note)
        .where(checkpoints.c.size <= up_to)
        .order_by(checkpoints.c.size)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for size, note in rows:
        try:
            checkpoint = open_checkpoint(note, verifier)
        except NoteError as exc:
            raise LogVerificationError(f"stored checkpoint of size {size}: {exc}") from exc
        if checkpoint.size != size:
            raise LogVerificationError(f"stored checkpoint of size {size} says size {checkpoint.size}")
        yield size, checkpoint.root_hash


def verify_log(db: Executor, verifier: NoteVerifier, tables: LogTables = AUDIT_LOG) -> LogReport:
    """Recompute the tree from the stored records, in position order, and check it against the latest signed
    checkpoint and every stored one: an edited, deleted, reordered, added or missing record fails here."""
    records = tables.records
    state = load_state(db, tables)
    if state is None:
        raise LogVerificationError("the log has no signed checkpoint yet (the sequencer never ran)")
    try:
        latest = open_checkpoint(state.checkpoint, verifier)
    except NoteError as exc:
        raise LogVerificationError(f"latest checkpoint: {exc}") from exc
    earlier = _signed_checkpoints(db, verifier, latest.size, tables.checkpoints)
    upcoming = next(earlier, None)
    checked = 0
    compact = CompactRange()

    def check_checkpoints_reached() -> None:
        nonlocal upcoming, checked
        while upcoming is not None and upcoming[0] == compact.size:
            if compact.root() != upcoming[1]:
                raise LogVerificationError(
                    f"records 0..{compact.size - 1} do not give the root of the checkpoint signed at size "
                    f"{compact.size}"
                )
            checked += 1
            upcoming = next(earlier, None)

    sequenced = db.execute(
        select(records.c.position, records.c.record)
        .where(records.c.position.is_not(None))
        .order_by(records.c.position)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for position, record in sequenced:
        check_checkpoints_reached()
        if position != compact.size:
            raise LogVerificationError(
                f"position {compact.size} is missing or duplicated (found position {position} next)"
            )
        if position >= latest.size:
            raise LogVerificationError(
                f"record at position {position} lies beyond the signed tree size {latest.size}"
            )
        compact.append(leaf_hash(record))
    check_checkpoints_reached()
    if compact.size != latest.size:
        raise LogVerificationError(
            f"the log holds {compact.size} sequenced records, the signed checkpoint says {latest.size}"
        )
    if compact.root() != latest.root_hash:
        raise LogVerificationError(
            f"records 0..{latest.size - 1} do not give the root of the latest signed checkpoint"
        )
    if state.compact_range != compact.to_bytes() or state.tree_size != latest.size:
        raise LogVerificationError("the sequencer state does not match the recomputed tree")
    pending = db.execute(
        select(func.count()).select_from(records).where(records.c.position.is_(None))
    ).scalar_one()
    return LogReport(latest.origin, latest.size, latest.root_hash, checked, pending)

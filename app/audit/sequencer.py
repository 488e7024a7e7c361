"""The sequencer: gives committed audit records log positions, extends the Merkle tree, signs a checkpoint.

Writers only insert records (position NULL). A batch takes every record still without a position, in id order,
at the moment it runs, so positions follow sequencing order, not id order: on PostgreSQL a record whose
transaction commits late (a smaller id after larger ones) is simply picked by a later batch and gets a later
position; nothing here relies on ids being in commit order. Numbering, tree nodes, state and the signed
checkpoint are written in one transaction, so a crash leaves the whole batch or none of it.

One sequencer at a time: on PostgreSQL a transaction-scoped advisory lock (the others skip their turn); on
SQLite every transaction takes the write lock up front (BEGIN IMMEDIATE, see app.runtime.database), which
serializes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, insert, select, text, update

from app.audit.log import CHECKPOINTS, NODES, RECORDS, STATE, STATE_ID
from app.crypto.merkle import CompactRange, leaf_hash
from app.crypto.signed_note import Checkpoint, NoteSigner, sign_checkpoint
from app.models.base import utcnow
from app.platform.background import BackgroundLoop
from app.platform.positions import number_rows, unnumbered_in_order

DEFAULT_BATCH_SIZE = 5000
# pg_try_advisory_xact_lock key: "confrere" in ASCII, a constant every deployment of this code shares.
ADVISORY_LOCK_KEY = 0x636F6E6672657265


@dataclass(frozen=True)
class Batch:
    sequenced: int
    # The largest id numbered (0 if none): where the next batch of the same pass may start.
    last_id: int


def sequence_batch(
    engine: Engine, signer: NoteSigner, batch_size: int = DEFAULT_BATCH_SIZE, *, after_id: int = 0
) -> Batch | None:
    """Sequence up to batch_size pending records with an id above `after_id`; None if another sequencer
    holds the lock. The first run also creates the state and signs the empty tree, so a checkpoint always
    exists.

    A pass over a backlog passes the previous batch's `last_id`: the rows a batch numbered leave dead
    entries at the head of the pending index (position IS NULL, id) until PostgreSQL vacuums, and a batch
    that started from the head would walk all of them, making a large backlog quadratic. A record that
    commits late with a smaller id is not lost: the next pass starts from 0."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            locked = connection.execute(select(func.pg_try_advisory_xact_lock(ADVISORY_LOCK_KEY))).scalar()
            if not locked:
                return None
        state = connection.execute(
            select(STATE.c.compact_range).where(STATE.c.id == STATE_ID).with_for_update()
        ).one_or_none()
        pending = connection.execute(
            unnumbered_in_order(
                select(RECORDS.c.id, RECORDS.c.record).where(RECORDS.c.id > after_id), RECORDS
            ).limit(batch_size)
        ).all()
        if state is not None and not pending:
            return Batch(0, 0)
        compact = CompactRange.from_bytes(state.compact_range) if state is not None else CompactRange()
        first = compact.size
        nodes = []
        for row in pending:
            nodes.extend(compact.append(leaf_hash(row.record)))
        if pending:
            number_rows(connection, RECORDS, [row.id for row in pending], first)
            _store_nodes(connection, nodes)
        now = utcnow()
        root = compact.root()
        note = sign_checkpoint(Checkpoint(signer.name, compact.size, root), signer)
        values = {
            "tree_size": compact.size,
            "compact_range": compact.to_bytes(),
            "root_hash": root,
            "checkpoint": note,
            "updated_at": now,
        }
        if state is None:
            connection.execute(insert(STATE).values(id=STATE_ID, **values))
        else:
            connection.execute(update(STATE).where(STATE.c.id == STATE_ID).values(**values))
        connection.execute(insert(CHECKPOINTS).values(size=compact.size, note=note, created_at=now))
    return Batch(len(pending), pending[-1].id if pending else 0)


# The hashes (32 bytes each) travel as one bytea cut in SQL: an array of bytea is escaped element by element
# in Python.
_PG_NODES = text(
    'INSERT INTO audit_tree_nodes (level, "index", hash) '
    "SELECT v.level, v.index, substring(CAST(:hashes AS bytea) FROM CAST(v.n * 32 - 31 AS integer) FOR 32) "
    "FROM unnest(CAST(:levels AS smallint[]), CAST(:indices AS bigint[])) "
    "WITH ORDINALITY AS v(level, index, n)"
)


def _store_nodes(connection: Connection, nodes: list[tuple[int, int, bytes]]) -> None:
    # One statement, where an executemany sends one INSERT per node (as app.platform.positions).
    if connection.dialect.name == "postgresql":
        levels, indices, hashes = zip(*nodes, strict=True) if nodes else ((), (), ())
        connection.execute(
            _PG_NODES, {"levels": list(levels), "indices": list(indices), "hashes": b"".join(hashes)}
        )
    else:
        connection.execute(
            insert(NODES), [{"level": level, "index": index, "hash": node} for level, index, node in nodes]
        )


def sequence_pending(engine: Engine, signer: NoteSigner, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Sequence batches until none is full; the number sequenced (0 when another sequencer has the lock)."""
    total, after_id = 0, 0
    while True:
        batch = sequence_batch(engine, signer, batch_size, after_id=after_id)
        if batch is None:
            return total
        total += batch.sequenced
        if batch.sequenced != batch_size:
            return total
        after_id = batch.last_id


class BackgroundSequencer(BackgroundLoop):
    """Sequences right away while batches are full, else every `interval` seconds: a daemon thread of the
    API process, or the foreground of `confrere audit sequencer`."""

    name = "audit-sequencer"
    retry_seconds = 2.0
    stop_timeout = 30.0

    def __init__(self, engine: Engine, signer: NoteSigner, *, interval: float, batch_size: int) -> None:
        super().__init__()
        self._engine = engine
        self._signer = signer
        self._interval = interval
        self._batch_size = batch_size
        self._after_id = 0

    def run_pass(self) -> float:
        batch = sequence_batch(self._engine, self._signer, self._batch_size, after_id=self._after_id)
        if batch is not None and batch.sequenced == self._batch_size:
            self._after_id = batch.last_id  # the backlog continues above it
            return 0
        self._after_id = 0  # caught up (or another sequencer ran): the next pass rescans from the start
        return self._interval

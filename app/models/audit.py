"""Audit records (insert-only rows; the sequencer alone assigns log positions), the Merkle log the sequencer
builds over them, and compliance exports."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_records"
    __table_args__ = (
        # The sequencer scans unsequenced rows (position IS NULL) in insertion order.
        Index("ix_audit_records_position_id", "position", "id"),
        Index("ix_audit_records_actor_time", "actor_id", "event_time"),
        Index("ix_audit_records_case_time", "case_id", "event_time"),
    )

    # Insertion order only: never a log position (ids are not reclaimed nor in commit order).
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    position: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True, nullable=True))
    record: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    event_time: datetime = Field(sa_type=UTCDateTime, index=True)
    actor_id: uuid.UUID | None = Field(default=None)
    case_id: uuid.UUID | None = Field(default=None)
    action: str = Field(sa_type=String(60), index=True)
    outcome: str = Field(sa_type=String(20))


class MerkleTreeNode(SQLModel):
    """A complete aligned subtree of a log's Merkle tree: immutable once its leaves exist.

    Every node the compact range completes is stored, so proofs for any tree size and tlog tiles are
    read back in O(log n) lookups instead of rehashing records. (The columns of both logs' node tables.)
    """

    level: int = Field(sa_type=SmallInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    index: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: bytes = Field(sa_type=LargeBinary, nullable=False)


class MerkleLogState(SQLModel):
    """A sequencer's single row: where the log stands and what it last signed."""

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    tree_size: int = Field(sa_type=BigInteger, nullable=False)
    compact_range: bytes = Field(sa_type=LargeBinary, nullable=False)
    root_hash: bytes = Field(sa_type=LargeBinary, nullable=False)
    checkpoint: bytes = Field(sa_type=LargeBinary, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class MerkleCheckpoint(SQLModel):
    """Every checkpoint a sequencer signed, so any published size can be proven against later ones."""

    size: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    note: bytes = Field(sa_type=LargeBinary, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime)


class AuditTreeNode(MerkleTreeNode, table=True):
    __tablename__ = "audit_tree_nodes"


class AuditLogState(MerkleLogState, table=True):
    __tablename__ = "audit_log_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class AuditCheckpoint(MerkleCheckpoint, table=True):
    __tablename__ = "audit_checkpoints"


class AuditCosignature(SQLModel, table=True):
    """A witness's cosignature (C2SP tlog-cosignature) of a checkpoint, as the witness posted it."""

    __tablename__ = "audit_cosignatures"

    witness: str = Field(sa_column=Column(String(200), primary_key=True))
    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    signature_line: str = Field(sa_column=Column(Text, nullable=False))
    signed_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(sa_type=UTCDateTime)


class AuditExport(SQLModel, table=True):
    """An export bundle written to data_dir/exports; only the officer who asked for it may download it."""

    __tablename__ = "audit_exports"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    officer_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), index=True, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)
    parameters: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_type=String(20))
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    record_count: int = Field(sa_column=Column(BigInteger, nullable=False))
    file_path: str = Field(sa_type=String(500))
    file_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    file_sha256: str = Field(sa_type=String(64))

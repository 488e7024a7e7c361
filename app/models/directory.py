"""The device directory log (key transparency): entries, insert-only, and the Merkle log over them.

Shaped like the audit log's tables (app.audit.log.LogTables), so the same sequencer, proofs and tiles serve
it; only the entries differ: a public, canonical JSON statement about a device or an account's eligibility.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, Integer, LargeBinary, String
from sqlmodel import Field, SQLModel

from app.models.audit import MerkleCheckpoint, MerkleLogState, MerkleTreeNode
from app.models.base import UTCDateTime


class DirectoryEntry(SQLModel, table=True):
    __tablename__ = "directory_entries"
    __table_args__ = (
        Index("ix_directory_entries_position_id", "position", "id"),
        Index("ix_directory_entries_device_action", "device_id", "action"),
        Index("ix_directory_entries_user_position", "user_id", "position"),
    )

    # Insertion order only: never a log position.
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    position: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True, nullable=True))
    # The entry's exact bytes (canonical JSON, app.crypto.directory): the leaf a proof is about.
    record: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    entry_time: datetime = Field(sa_type=UTCDateTime)
    user_id: uuid.UUID = Field(nullable=False)
    device_id: uuid.UUID | None = Field(default=None)
    action: str = Field(sa_type=String(40))


class DirectoryTreeNode(MerkleTreeNode, table=True):
    __tablename__ = "directory_tree_nodes"


class DirectoryLogState(MerkleLogState, table=True):
    __tablename__ = "directory_log_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class DirectoryCheckpoint(MerkleCheckpoint, table=True):
    __tablename__ = "directory_checkpoints"

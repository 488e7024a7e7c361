"""Audit records: insert-only rows; the sequencer alone assigns log positions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String
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

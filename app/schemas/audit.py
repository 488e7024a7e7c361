"""Audit log queries, proofs and exports. Hashes are lowercase hex (as in export bundles); record bytes are
standard base64, since a leaf is exactly those bytes."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, StrictBool, model_validator

from app.audit.query import EventFilter
from app.audit.records import Outcome
from app.schemas.common import JsonInt, RequestModel, ResponseModel, UtcDateTime

HexHash = Field(pattern=r"^[0-9a-f]{64}$")
SIZE_EXAMPLE = 1042


class EventFilters(RequestModel):
    since: UtcDateTime | None = Field(default=None, description="Events at or after this time.")
    until: UtcDateTime | None = Field(default=None, description="Events strictly before this time.")
    actor: uuid.UUID | None = Field(default=None, description="The acting user's id.")
    case: uuid.UUID | None = Field(default=None, description="The case the event concerns.")
    action: str | None = Field(default=None, max_length=60, pattern=r"^[a-z0-9_.]+$", examples=["auth.login"])
    outcome: Outcome | None = None

    @model_validator(mode="after")
    def _check(self) -> EventFilters:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self

    def to_filter(self) -> EventFilter | None:
        """None when nothing is set: no filter at all, not a filter that matches everything."""
        values = self.model_dump(include=set(EventFilters.model_fields), exclude_none=True)
        if "outcome" in values:
            values["outcome"] = values["outcome"].value
        return EventFilter(**values) if values else None


class EventQuery(EventFilters):
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=512)


class AuditEventOut(ResponseModel):
    position: int | None = Field(
        description="Log position; null until the sequencer has numbered the record (within a second)."
    )
    record: dict[str, Any] = Field(
        description="The record, parsed (docs/audit-log.md lists the fields); its exact bytes are the leaf."
    )


class AuditEventPage(ResponseModel):
    items: list[AuditEventOut]
    next_cursor: str | None


class InclusionProofOut(ResponseModel):
    index: int = Field(description="Log position of the record.")
    tree_size: int
    record: str = Field(description="The record's exact bytes, base64: the leaf is SHA-256(0x00 || bytes).")
    hashes: list[str] = Field(description="RFC 9162 inclusion path, lowercase hex, leaf sibling first.")
    checkpoint: str | None = Field(
        description="The signed checkpoint of tree_size, when the sequencer published one at that size."
    )

    @classmethod
    def of(cls, proof: Any) -> InclusionProofOut:
        """From a services.audit.InclusionProof (of either log)."""
        return cls(
            index=proof.index,
            tree_size=proof.tree_size,
            record=base64.b64encode(proof.record).decode(),
            hashes=[node.hex() for node in proof.hashes],
            checkpoint=proof.checkpoint.decode() if proof.checkpoint else None,
        )


class ConsistencyProofOut(ResponseModel):
    first: int
    second: int
    hashes: list[str] = Field(description="RFC 9162 consistency proof, lowercase hex.")
    checkpoint: str | None = Field(description="The signed checkpoint of `second`, when one was published.")

    @classmethod
    def of(cls, proof: Any) -> ConsistencyProofOut:
        """From a services.audit.ConsistencyProof (of either log)."""
        return cls(
            first=proof.first,
            second=proof.second,
            hashes=[node.hex() for node in proof.hashes],
            checkpoint=proof.checkpoint.decode() if proof.checkpoint else None,
        )


class ExportCreate(RequestModel):
    start: JsonInt | None = Field(default=None, ge=0, description="First log position (default 0).")
    end: JsonInt | None = Field(
        default=None, ge=0, description="Position after the last (default: tree size)."
    )
    filters: EventFilters | None = Field(
        default=None, description="Without filters the export is a complete range, proven by a range proof."
    )
    formats: list[Literal["fhir", "csv"]] = Field(
        default_factory=list, max_length=2, description="Extra views: FHIR R4 AuditEvent NDJSON, CSV."
    )
    consistency_from: list[JsonInt] = Field(
        default_factory=list,
        max_length=32,
        description="Tree sizes of checkpoints kept from earlier exports: the bundle proves them prefixes.",
        examples=[[SIZE_EXAMPLE]],
    )
    witnessed: StrictBool = Field(
        default=False,
        description="Tie the bundle to the latest checkpoint cosigned by every configured witness (its "
        "cosignatures are in the bundle's checkpoint) rather than to the latest one.",
    )

    @model_validator(mode="after")
    def _check(self) -> ExportCreate:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError("start must not be after end")
        if any(size < 0 for size in self.consistency_from):
            raise ValueError("consistency_from sizes are counts")
        return self


class AuditExportOut(ResponseModel):
    id: uuid.UUID
    created_at: datetime
    status: Literal["ready"]
    kind: Literal["range", "filtered"]
    start: int
    end: int
    tree_size: int = Field(description="Size of the signed checkpoint the bundle is tied to.")
    record_count: int
    size_bytes: int
    sha256: str = HexHash
    checkpoint: str | None = Field(description="The bundle's signed checkpoint: keep it for later exports.")
    download: str = Field(description="Path of the bundle (application/zip), for its creator only.")


class CosignatureAccepted(ResponseModel):
    tree_size: int = Field(examples=[SIZE_EXAMPLE])
    witnesses: list[str] = Field(description="The witnesses whose cosignatures were stored.")

"""Cases and their sealed content: the clear routing metadata, the sealed objects, key envelopes, shares."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Index, LargeBinary, String
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow


class CaseStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    AWAITING_INFO = "awaiting_info"
    ANSWERED = "answered"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


# Statuses in which a specialist still owes an answer: the due date applies to them.
PENDING_STATUSES = frozenset({CaseStatus.OPEN, CaseStatus.CLAIMED, CaseStatus.AWAITING_INFO})
FINAL_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.WITHDRAWN})


class Priority(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"


class Transition(StrEnum):
    CLAIM = "claim"
    DECLINE = "decline"
    REQUEST_INFO = "request_info"
    PROVIDE_INFO = "provide_info"
    ANSWER = "answer"
    CLOSE = "close"
    WITHDRAW = "withdraw"


class ObjectKind(StrEnum):
    """What a sealed object of a case is: its sealed header's `kind` (docs/e2ee.md)."""

    CASE = "case"
    ATTACHMENT = "attachment"
    MESSAGE = "message"
    INFO_REQUEST = "info_request"
    INFO_RESPONSE = "info_response"
    REPORT = "report"


# The kinds of a case's thread (app/schemas/cases.py MessageKind).
MESSAGE_KINDS = frozenset(
    {ObjectKind.MESSAGE, ObjectKind.INFO_REQUEST, ObjectKind.INFO_RESPONSE, ObjectKind.REPORT}
)


class DeclineReason(StrEnum):
    OUTSIDE_EXPERTISE = "outside_expertise"
    UNAVAILABLE = "unavailable"
    INSUFFICIENT_INFORMATION = "insufficient_information"
    OTHER = "other"


class Case(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (
        # A caller's case list is the union of these walks, each cut at one page (services/case_lists.py).
        Index("ix_cases_requester_created", "requester_id", "created_at", "id"),
        Index("ix_cases_assignee_created", "assignee_id", "created_at", "id"),
        Index("ix_cases_named_created", "named_specialist_id", "created_at", "id"),
        # The specialty queue: open cases of one specialty, earliest due first.
        Index("ix_cases_queue", "specialty", "status", "due_at", "id"),
        # The deadlines job: pending cases past their due date, answered cases to auto-close.
        Index("ix_cases_status_due", "status", "due_at"),
    )

    # Chosen by the client (UUIDv4) before sealing, because the sealed header binds it.
    id: uuid.UUID = Field(primary_key=True)
    requester_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    specialty: str = Field(sa_column=Column(String(40), ForeignKey("specialties.code"), nullable=False))
    named_specialist_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("users.id"), nullable=True)
    )
    assignee_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("users.id"), nullable=True)
    )
    status: str = Field(default=CaseStatus.OPEN, sa_type=String(20))  # a CaseStatus
    priority: str = Field(sa_type=String(10))
    due_at: datetime = Field(sa_type=UTCDateTime)
    patient_consent_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # When the case reached a final status (closed or withdrawn).
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decline_reason: str | None = Field(default=None, sa_type=String(30))
    # When the current assignee claimed it (cleared by a decline) and when it was answered: admin statistics.
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the deadlines job found it overdue and notified its participants (once).
    overdue_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def is_overdue(self, now: datetime) -> bool:
        return self.status in PENDING_STATUSES and self.due_at < now


class CaseObject(SQLModel, table=True):
    """One sealed object of a case: the case content itself, a message of any kind, or an attachment.

    Everything here is what the server may see (docs/e2ee.md): the canonical header, the signed manifest,
    its signature, and the ciphertext (attachments keep theirs in the blob store, by SHA-256).
    """

    __tablename__ = "case_objects"
    __table_args__ = (Index("ix_case_objects_case_created", "case_id", "created_at", "id"),)

    id: uuid.UUID = Field(primary_key=True)
    case_id: uuid.UUID = Field(sa_column=Column(ForeignKey("cases.id"), nullable=False))
    kind: str = Field(sa_type=String(20))  # an ObjectKind
    author_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    author_device_id: uuid.UUID = Field(sa_column=Column(ForeignKey("devices.id"), nullable=False))
    header: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    manifest: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: bytes = Field(sa_column=Column(LargeBinary(64), nullable=False))
    ciphertext: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    ciphertext_sha256: str = Field(sa_type=String(64))
    ciphertext_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CaseShare(SQLModel, table=True):
    """A participant's signed re-share of a case's content keys to a colleague's devices (the evidence).

    `grants_access` is decided when sharing: a recipient who could not see the case otherwise becomes a
    participant; one who sees it only through the specialty queue does not, so that the case leaves their
    view like any queued case once a colleague claims it.
    """

    __tablename__ = "case_shares"
    __table_args__ = (Index("ix_case_shares_recipient_case", "recipient_id", "case_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(sa_column=Column(ForeignKey("cases.id"), index=True, nullable=False))
    recipient_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    sharer_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    sharer_device_id: uuid.UUID = Field(sa_column=Column(ForeignKey("devices.id"), nullable=False))
    statement: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: bytes = Field(sa_column=Column(LargeBinary(64), nullable=False))
    grants_access: bool
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Envelope(SQLModel, table=True):
    """An object's content key wrapped (HPKE) for one device; `share_id` names the re-share that added it."""

    __tablename__ = "envelopes"

    object_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("case_objects.id", ondelete="CASCADE"), primary_key=True)
    )
    device_id: uuid.UUID = Field(sa_column=Column(ForeignKey("devices.id"), primary_key=True))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    share_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("case_shares.id"), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

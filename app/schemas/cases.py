"""Cases, transitions, messages, re-shares and attachments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import UUID4, Field, model_validator

from app.models.cases import CaseStatus, DeclineReason, ObjectKind, Priority, Transition
from app.schemas.common import RequestModel, ResponseModel, UtcDateTime
from app.schemas.directory import Participants
from app.schemas.sealed import Base64, MiB, SealedIn, SealedOut, SealedParts, Signature, WrappedKey

# The values of app/models/cases.py MESSAGE_KINDS, spelled out for the contract (a test keeps them equal).
MessageKind = Literal["message", "info_request", "info_response", "report"]
Statement = Annotated[bytes, Base64(MiB)]

_NEXT_CURSOR = "Pass as `cursor` to get the next page; null on the last."
# The id of a new object, chosen by the client: a random UUID (version 4). Any other UUID is refused as
# malformed, and so is an id already taken by something the caller cannot see (app.errors.IdNotUsable).
NewId = Annotated[UUID4, Field(json_schema_extra={"format": "uuid"})]


class CaseCreate(RequestModel):
    id: NewId = Field(description="Chosen by the client (UUIDv4): the sealed header's case_id.")
    specialty: str = Field(max_length=40, examples=["dermatology"])
    named_specialist_id: uuid.UUID | None = Field(
        default=None, description="Offer the case to this specialist of the specialty only."
    )
    priority: Priority = Field(default=Priority.ROUTINE, description="Sets the due date.")
    patient_consent_at: UtcDateTime = Field(description="When the patient consented; not in the future.")
    sealed: SealedIn = Field(description="Header kind `case`, object_id = case_id = id.")


class CaseOut(ResponseModel):
    id: uuid.UUID
    requester_id: uuid.UUID
    specialty: str
    named_specialist_id: uuid.UUID | None
    assignee_id: uuid.UUID | None
    status: CaseStatus
    priority: Priority
    due_at: datetime
    overdue: bool = Field(description="Past its due date while a specialist still owes an answer.")
    patient_consent_at: datetime
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = Field(description="When the case was closed or withdrawn.")
    decline_reason: DeclineReason | None = Field(description="The reason of the last decline, if any.")
    claimed_at: datetime | None = Field(description="When the current assignee claimed it.")
    answered_at: datetime | None = Field(description="When it was answered.")


class AttachmentOut(ResponseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    author_id: uuid.UUID
    ciphertext_sha256: str
    ciphertext_size: int
    created_at: datetime


class CaseAttachment(AttachmentOut):
    sealed: SealedOut = Field(description="Without ciphertext: download it from the attachment route.")


class CaseDetail(CaseOut):
    sealed: SealedOut
    attachments: list[CaseAttachment]
    allowed_transitions: list[Transition] = Field(
        description="The transitions the caller may make now, as the server's policy decides them.",
        examples=[["decline", "request_info", "answer"]],
    )
    allowed_writes: list[ObjectKind] = Field(
        description="The kinds of object the caller may add now (never `case`): messages, attachments, "
        "requests for information, responses and the report, by their part in the case and its status.",
        examples=[["message", "attachment", "info_request", "report"]],
    )
    participants: Participants = Field(
        description="Who takes part, with their devices and directory proofs: seal every message for all of "
        "them (and, while the case waits in the specialty queue, for the specialty's recipients)."
    )


class CaseListItem(CaseOut):
    sealed: SealedOut | None = Field(
        default=None,
        description="With `sealed=true`: the sealed case object with the caller's envelopes, so that a "
        "client shows a summary decrypted on the device without one request per case.",
    )


class CasePage(ResponseModel):
    items: list[CaseListItem]
    next_cursor: str | None = Field(description=_NEXT_CURSOR)


class TransitionRequest(RequestModel):
    action: Transition
    reason: DeclineReason | None = Field(default=None, description="Required to decline; nothing else.")
    report_message_id: uuid.UUID | None = Field(
        default=None, description="Required to answer: a `report` message of the assignee on this case."
    )

    @model_validator(mode="after")
    def _check(self) -> TransitionRequest:
        if (self.reason is not None) != (self.action is Transition.DECLINE):
            raise ValueError("a reason is given with a decline, and only then")
        if (self.report_message_id is not None) != (self.action is Transition.ANSWER):
            raise ValueError("report_message_id is given with an answer, and only then")
        return self


class MessageCreate(RequestModel):
    id: NewId = Field(description="Chosen by the client (UUIDv4): the sealed header's object_id.")
    kind: MessageKind
    sealed: SealedIn = Field(description="Header kind equal to `kind`.")


class MessageOut(ResponseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    kind: MessageKind
    author_id: uuid.UUID
    created_at: datetime
    sealed: SealedOut


class MessagePage(ResponseModel):
    items: list[MessageOut]
    next_cursor: str | None = Field(description=_NEXT_CURSOR)


class ShareEnvelopeIn(RequestModel):
    object_id: uuid.UUID = Field(description="The case, one of its messages or one of its attachments.")
    device_id: uuid.UUID
    wrapped_key: WrappedKey


class ShareRequest(RequestModel):
    recipient_user_id: uuid.UUID
    sharer_device_id: uuid.UUID = Field(description="The caller's device that signed the statement.")
    statement: Statement = Field(description="Canonical JSON share statement (docs/e2ee.md section 12).")
    signature: Signature
    envelopes: list[ShareEnvelopeIn] = Field(min_length=1)


class ShareOut(ResponseModel):
    recipient_user_id: uuid.UUID
    envelope_count: int = Field(description="Envelopes added by this share.")
    already_held: int = Field(
        description="Envelopes of the request left as they were: the device already held one for the object."
    )


class AttachmentMeta(SealedParts):
    id: NewId = Field(description="Chosen by the client (UUIDv4): the sealed header's object_id.")

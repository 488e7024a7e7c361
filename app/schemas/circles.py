"""Peer circles in requests and answers. Bytes travel as base64 (app/schemas/sealed.py); what members
write is sealed (docs/e2ee.md section 20) and the server only checks it.

A pseudonymous post's real author is never in an answer: members see the pseudonym's id and name."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from app.authz.circle_rounds import Round
from app.models.circles import (
    CircleAccess,
    MemberRole,
    MembershipStatus,
    ReactionKind,
    ReportReason,
)
from app.models.users import Profession
from app.schemas.common import RequestModel, ResponseModel, UtcDateTime
from app.schemas.sealed import Base64, DirectoryDevice

CIPHERTEXT_MAX = 64 * 1024
# A rotation wraps for every member device: 5,000 devices (2,500 members with two devices each) at most.
MAX_WRAPS = 5_000
# HPKE wraps of a 32-byte key: 80 bytes (x25519) or 1168 (xwing).
WRAP_MAX = 1168
Wrap = Annotated[bytes, Base64(WRAP_MAX)]
# An epoch statement lists every wrapped device (about 140 bytes each).
STATEMENT_PER_WRAP = 160
# The body of an epoch upload at MAX_WRAPS xwing wraps: each wrap in base64 with its device id, and the
# statement's entry in base64.
EPOCH_UPLOAD_MAX_BYTES = MAX_WRAPS * (4 * WRAP_MAX // 3 + 48 + 4 * STATEMENT_PER_WRAP // 3) + 64 * 1024
Signature = Annotated[bytes, Base64(64)]
CanonicalJson = Annotated[bytes, Base64(4096)]
EpochStatementJson = Annotated[bytes, Base64(1024 + MAX_WRAPS * STATEMENT_PER_WRAP)]
_PAGE = "Pass as `cursor` to get the next page; null on the last."


class Audience(RequestModel):
    """Who may join an open circle: one profession, or the specialists of one specialty."""

    profession: Profession | None = Field(default=None, examples=["nurse"])
    specialty: str | None = Field(default=None, max_length=40, examples=[None])

    @model_validator(mode="after")
    def _one(self) -> Audience:
        if (self.profession is None) == (self.specialty is None):
            raise ValueError("an audience names a profession or a specialty")
        return self


class AudienceOut(ResponseModel):
    profession: Profession | None = None
    specialty: str | None = None


class CircleCreate(RequestModel):
    name: str = Field(min_length=1, max_length=120, examples=["Soins palliatifs à domicile"])
    description: str = Field(default="", max_length=1000, examples=["Entraide entre infirmier·ères libéraux"])
    access: CircleAccess = Field(examples=["open"])
    audience: Audience | None = Field(
        default=None, description="Open circles only; none: any verified professional may join."
    )

    @model_validator(mode="after")
    def _check(self) -> CircleCreate:
        if not self.name.strip():
            raise ValueError("a circle has a name")
        if self.access is CircleAccess.INVITATION and self.audience is not None:
            raise ValueError("an invitation circle has no audience")
        return self


class CircleOut(ResponseModel):
    id: uuid.UUID
    name: str
    description: str
    access: CircleAccess
    audience: AudienceOut | None
    current_epoch: int = Field(description="0 until the first epoch's key is posted.")
    rotation_required: bool = Field(
        description="Set by every membership change: posts wait for the next epoch (any member posts it)."
    )
    my_role: MemberRole | None = Field(description="Null for a circle the caller may join.")
    my_status: MembershipStatus | None = Field(description="`active`, `invited`, or null (may join).")
    member_count: int
    created_at: datetime


class CirclePage(ResponseModel):
    items: list[CircleOut]
    next_cursor: str | None = Field(description=_PAGE)


class MemberOut(ResponseModel):
    user_id: uuid.UUID
    display_name: str
    profession: Profession
    role: MemberRole
    joined_at: datetime | None


class MemberList(ResponseModel):
    members: list[MemberOut]


class MembershipOut(ResponseModel):
    circle_id: uuid.UUID
    user_id: uuid.UUID
    role: MemberRole
    status: MembershipStatus
    joined_epoch: int | None = Field(description="The first epoch the member receives by default.")


class InvitationCreate(RequestModel):
    user_id: uuid.UUID


class RoleUpdate(RequestModel):
    role: MemberRole = Field(examples=["moderator"])


class EpochUpload(RequestModel):
    statement: EpochStatementJson = Field(
        description="The epoch statement's canonical JSON (docs/e2ee.md 20)."
    )
    signature: Signature
    wraps: dict[uuid.UUID, Wrap] = Field(
        max_length=MAX_WRAPS, description="The epoch key wrapped for each device the statement lists."
    )


class EpochUploaded(ResponseModel):
    epoch: int
    kind: Literal["rotate", "grant"]
    wrap_count: int
    current_epoch: int


class HeldEpoch(ResponseModel):
    epoch: int
    kind: Literal["rotate", "grant"]
    statement: EpochStatementJson
    signature: Signature
    author_device: DirectoryDevice = Field(description="The signing device (even if revoked since).")
    wrap: Wrap = Field(description="This device's wrap of the epoch key.")


class EpochList(ResponseModel):
    device_id: uuid.UUID
    current_epoch: int
    rotation_required: bool
    epochs: list[HeldEpoch] = Field(description="The epochs this device holds a wrap for, oldest first.")


class PseudonymCreate(RequestModel):
    name: str = Field(min_length=1, max_length=60, examples=["Colibri"])
    public_key: Annotated[bytes, Base64(32)] = Field(
        description="The pseudonym's Ed25519 key on this device."
    )
    binding: CanonicalJson = Field(description="The binding's canonical JSON, naming the pseudonym's id.")
    binding_signature: Signature

    @model_validator(mode="after")
    def _named(self) -> PseudonymCreate:
        if not self.name.strip():
            raise ValueError("a pseudonym has a name")
        return self


class PseudonymKeyOut(ResponseModel):
    key_id: uuid.UUID
    public_key: Annotated[bytes, Base64(32)]


class PseudonymOut(ResponseModel):
    id: uuid.UUID
    name: str
    keys: list[PseudonymKeyOut]


class PseudonymCreated(ResponseModel):
    pseudonym_id: uuid.UUID
    name: str
    key_id: uuid.UUID = Field(description="The key's id: the `author` of posts signed with it.")


class PseudonymList(ResponseModel):
    pseudonyms: list[PseudonymOut]


class SessionWrite(RequestModel):
    session_id: uuid.UUID
    round: Round


class PostCreate(RequestModel):
    header: CanonicalJson
    manifest: CanonicalJson
    signature: Signature
    ciphertext: Annotated[bytes, Base64(CIPHERTEXT_MAX + 28)] = Field(
        description="nonce || AES-256-GCM ciphertext: at most 64 KiB of sealed text."
    )
    session: SessionWrite | None = Field(
        default=None, description="A reply written in a co-development session's current round."
    )


class MemberAuthor(ResponseModel):
    kind: Literal["member"]
    user_id: uuid.UUID
    display_name: str


class PseudonymAuthor(ResponseModel):
    kind: Literal["pseudonym"]
    pseudonym_id: uuid.UUID
    name: str


Author = Annotated[MemberAuthor | PseudonymAuthor, Field(discriminator="kind")]


class SealedPost(ResponseModel):
    author_device: DirectoryDevice | None = Field(
        description="The signing device of a device-authored post (even if revoked since); null for a "
        "pseudonymous post, whose key is listed by GET /v1/circles/{circle_id}/pseudonyms."
    )
    header: CanonicalJson
    manifest: CanonicalJson
    signature: Signature
    ciphertext: Annotated[bytes, Base64(CIPHERTEXT_MAX + 28)]


class Hidden(ResponseModel):
    reason: str
    at: datetime


class SessionSummary(ResponseModel):
    session_id: uuid.UUID
    round: Round
    deadline: datetime | None = None


class PostOut(ResponseModel):
    id: uuid.UUID
    circle_id: uuid.UUID
    epoch: int
    parent_id: uuid.UUID | None
    author: Author
    sealed: SealedPost | None = Field(description="Null for a hidden post, but for moderators.")
    hidden: Hidden | None
    reply_count: int
    reactions: dict[ReactionKind, int]
    my_reactions: list[ReactionKind]
    session: SessionSummary | None = Field(
        description="On a top-level post: the session opened on it; on a reply: the round it was written in."
    )
    created_at: datetime


class PostPage(ResponseModel):
    items: list[PostOut]
    next_cursor: str | None = Field(description=_PAGE)


class PostThread(ResponseModel):
    post: PostOut
    replies: list[PostOut]


class HideRequest(RequestModel):
    reason: str = Field(min_length=1, max_length=500, examples=["Identifiable patient details"])


class ReportCreate(RequestModel):
    reason: ReportReason
    note: str | None = Field(default=None, max_length=500)


class ReportOut(ResponseModel):
    id: uuid.UUID
    post_id: uuid.UUID
    reason: ReportReason
    note: str | None
    created_at: datetime


class ReportList(ResponseModel):
    reports: list[ReportOut]


class SessionOpen(RequestModel):
    post_id: uuid.UUID
    facilitator_id: uuid.UUID
    deadline: UtcDateTime


class RoundMove(RequestModel):
    round: Round


class RoundOut(ResponseModel):
    round: Round
    at: datetime


class Facilitator(ResponseModel):
    user_id: uuid.UUID
    display_name: str


class SessionOut(ResponseModel):
    id: uuid.UUID
    circle_id: uuid.UUID
    post_id: uuid.UUID
    presenter: Author
    facilitator: Facilitator
    round: Round
    deadline: datetime
    closed_at: datetime | None
    rounds: list[RoundOut]

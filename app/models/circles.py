"""Peer circles: groups of verified professionals, their epochs of keys, sealed posts, pseudonyms,
reactions, reports and co-development sessions (issue 19; formats in docs/e2ee.md section 20).

Names, descriptions, memberships and roles are clear metadata; what members write is sealed with the epoch's
key, which the server never holds (it stores the statements and the wraps, one per member device)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow


class CircleAccess(StrEnum):
    OPEN = "open"
    INVITATION = "invitation"


class AudienceKind(StrEnum):
    """Who may join an open circle: a profession, the specialists of a specialty, or (none) any verified
    professional."""

    PROFESSION = "profession"
    SPECIALTY = "specialty"


class MemberRole(StrEnum):
    MEMBER = "member"
    MODERATOR = "moderator"


class MembershipStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    LEFT = "left"
    REMOVED = "removed"


class EpochStatementKind(StrEnum):
    ROTATE = "rotate"
    GRANT = "grant"


class AuthorKind(StrEnum):
    DEVICE = "device"
    PSEUDONYM = "pseudonym"


class ReactionKind(StrEnum):
    HELPFUL = "helpful"
    ME_TOO = "me_too"


class ReportReason(StrEnum):
    PATIENT_IDENTIFIABLE = "patient_identifiable"
    DISRESPECTFUL = "disrespectful"
    OFF_TOPIC = "off_topic"
    MISINFORMATION = "misinformation"
    OTHER = "other"


class Circle(SQLModel, table=True):
    __tablename__ = "circles"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_type=String(120))
    description: str = Field(sa_type=String(1000))
    access: str = Field(sa_type=String(20), index=True)
    audience_kind: str | None = Field(default=None, sa_type=String(20))
    audience_code: str | None = Field(default=None, sa_type=String(40))
    # 0 until the first epoch is posted; rotation_required holds posts until the next one.
    current_epoch: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    rotation_required: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    created_by: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class CircleMember(SQLModel, table=True):
    """One person's place in a circle over time: invited, active, then left or removed (a rejoin reuses
    the row with a new joined_epoch)."""

    __tablename__ = "circle_members"

    circle_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circles.id", ondelete="CASCADE"), primary_key=True)
    )
    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), primary_key=True, index=True))
    role: str = Field(default=MemberRole.MEMBER, sa_type=String(20))
    status: str = Field(sa_type=String(20))
    invited_by: uuid.UUID | None = Field(default=None)
    joined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The first epoch whose key the member receives by default (older ones only from a moderator).
    joined_epoch: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CircleEpoch(SQLModel, table=True):
    """An epoch exists once its rotate statement is stored; its primary key makes concurrent rotations to
    the same number exclusive."""

    __tablename__ = "circle_epochs"

    circle_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circles.id", ondelete="CASCADE"), primary_key=True)
    )
    epoch: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    key_commitment: str = Field(sa_type=String(64))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CircleEpochStatement(SQLModel, table=True):
    """A signed rotate or grant statement, as uploaded."""

    __tablename__ = "circle_epoch_statements"
    __table_args__ = (Index("ix_circle_epoch_statements_epoch", "circle_id", "epoch"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    circle_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circles.id", ondelete="CASCADE"), nullable=False)
    )
    epoch: int = Field(sa_column=Column(Integer, nullable=False))
    kind: str = Field(sa_type=String(10))
    statement: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    author_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    author_device_id: uuid.UUID = Field(sa_column=Column(ForeignKey("devices.id"), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CircleEpochWrap(SQLModel, table=True):
    """One device's wrap of one epoch's key (at most one per device and epoch)."""

    __tablename__ = "circle_epoch_wraps"

    circle_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circles.id", ondelete="CASCADE"), primary_key=True)
    )
    epoch: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    device_id: uuid.UUID = Field(sa_column=Column(ForeignKey("devices.id"), primary_key=True, index=True))
    statement_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circle_epoch_statements.id", ondelete="CASCADE"), nullable=False)
    )
    wrap: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CirclePseudonym(SQLModel, table=True):
    __tablename__ = "circle_pseudonyms"
    __table_args__ = (
        UniqueConstraint("circle_id", "user_id", name="uq_circle_pseudonyms_member"),
        UniqueConstraint("circle_id", "name", name="uq_circle_pseudonyms_name"),
    )

    id: uuid.UUID = Field(primary_key=True)
    circle_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circles.id", ondelete="CASCADE"), nullable=False)
    )
    # Server-only: never in an answer or an event to members.
    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    name: str = Field(sa_type=String(60))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CirclePseudonymKey(SQLModel, table=True):
    """A pseudonym's public key on one device, with the device's signed binding (the evidence of who is
    behind the pseudonym; never served)."""

    __tablename__ = "circle_pseudonym_keys"
    __table_args__ = (UniqueConstraint("pseudonym_id", "device_id", name="uq_circle_pseudonym_keys_device"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    pseudonym_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circle_pseudonyms.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    device_id: uuid.UUID = Field(sa_column=Column(ForeignKey("devices.id"), nullable=False))
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    binding: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    binding_signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CirclePost(SQLModel, table=True):
    __tablename__ = "circle_posts"
    __table_args__ = (
        # A circle's top-level posts newest first, and a post's replies in order.
        Index("ix_circle_posts_feed", "circle_id", "parent_id", "created_at", "id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    circle_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circles.id", ondelete="CASCADE"), nullable=False)
    )
    epoch: int = Field(sa_column=Column(Integer, nullable=False))
    # NULL for a top-level post, else the top-level post replied to.
    parent_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("circle_posts.id")))
    session_id: uuid.UUID | None = Field(default=None)
    session_round: str | None = Field(default=None, sa_type=String(30))
    # The real author, server-only when author_kind is pseudonym (the audit log names them too).
    author_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    author_kind: str = Field(sa_type=String(20))
    author_device_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("devices.id")))
    pseudonym_key_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("circle_pseudonym_keys.id"))
    )
    header: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    manifest: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    hidden_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    hidden_by: uuid.UUID | None = Field(default=None)
    hidden_reason: str | None = Field(default=None, sa_type=String(500))


class CircleReaction(SQLModel, table=True):
    __tablename__ = "circle_reactions"

    post_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circle_posts.id", ondelete="CASCADE"), primary_key=True)
    )
    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), primary_key=True))
    kind: str = Field(sa_column=Column(String(20), primary_key=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CircleReport(SQLModel, table=True):
    __tablename__ = "circle_reports"
    __table_args__ = (Index("ix_circle_reports_circle", "circle_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    circle_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circles.id", ondelete="CASCADE"), nullable=False)
    )
    post_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circle_posts.id", ondelete="CASCADE"), nullable=False)
    )
    reporter_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    reason: str = Field(sa_type=String(30))
    note: str | None = Field(default=None, sa_type=String(500))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CircleSession(SQLModel, table=True):
    """A co-development session opened on a top-level post by its author (the presenter)."""

    __tablename__ = "circle_sessions"
    __table_args__ = (Index("ix_circle_sessions_open_deadline", "closed_at", "deadline"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    circle_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circles.id", ondelete="CASCADE"), nullable=False)
    )
    post_id: uuid.UUID = Field(sa_column=Column(ForeignKey("circle_posts.id"), nullable=False, unique=True))
    presenter_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    facilitator_id: uuid.UUID = Field(sa_column=Column(ForeignKey("users.id"), nullable=False))
    # The current round (app/authz/circle_rounds.py Round).
    round: str = Field(default="situation", sa_type=String(30))
    deadline: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CircleSessionRound(SQLModel, table=True):
    """The rounds' history: who moved the session to which round, when (NULL: the deadline worker)."""

    __tablename__ = "circle_session_rounds"

    session_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("circle_sessions.id", ondelete="CASCADE"), primary_key=True)
    )
    round: str = Field(sa_column=Column(String(30), primary_key=True))
    moved_by: uuid.UUID | None = Field(default=None)
    moved_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

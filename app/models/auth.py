"""Login sessions, refresh tokens and login throttling."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, ForeignKey, LargeBinary, String
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow


class AuthSession(SQLModel, table=True):
    """One login. Its refresh tokens form a family; revoking the session ends every token of it."""

    __tablename__ = "auth_sessions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False)
    )
    amr: str = Field(sa_type=String(40), description="Authentication methods, space separated: 'pwd otp'.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoke_reason: str | None = Field(default=None, sa_type=String(40))


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_tokens"

    token_hash: bytes = Field(sa_column=Column(LargeBinary(32), primary_key=True))
    session_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """Failed logins within a window: per client address (`ip:<address>`) and per e-mail and address
    (`login:<sha256>`, the lockout), whether or not the e-mail has an account."""

    __tablename__ = "login_throttles"

    key: str = Field(sa_type=String(80), primary_key=True)
    failures: int = Field(default=0)
    window_started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

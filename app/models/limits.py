"""Rate limit buckets shared by every API node (PostgreSQL only; app/platform/ratelimit.py)."""

from __future__ import annotations

from sqlalchemy import Double, String
from sqlmodel import Field, SQLModel


class RateLimitBucket(SQLModel, table=True):
    """One caller's budget for one limit, as the generic cell rate algorithm keeps it: a single time, when
    the bucket is full again (Unix seconds, the database's clock). A row past that time is a full bucket,
    the same as no row, and may be deleted at any time."""

    __tablename__ = "rate_limit_buckets"

    key: str = Field(sa_type=String(120), primary_key=True)
    full_at: float = Field(sa_type=Double)

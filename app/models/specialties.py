"""Medical specialties that cases are routed to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from app.models.base import UTCDateTime, utcnow


class Specialty(SQLModel, table=True):
    __tablename__ = "specialties"

    code: str = Field(sa_type=String(40), primary_key=True)
    name: str = Field(sa_type=String(120))
    snomed_code: str = Field(sa_type=String(18), unique=True)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

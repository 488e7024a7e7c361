"""Case statistics for admins: counts and durations from clear metadata only."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.schemas.common import ResponseModel


class Durations(ResponseModel):
    cases: int = Field(description="How many cases of the window the figures are computed over.")
    median_seconds: float | None = Field(description="Null when `cases` is 0.")
    p90_seconds: float | None = Field(description="90th percentile (linear interpolation between ranks).")


class SpecialtyStats(ResponseModel):
    specialty: str = Field(examples=["dermatology"])
    open_cases: int = Field(description="Waiting for a specialist (status `open`), now.")
    in_progress_cases: int = Field(description="Claimed or awaiting information, now.")
    overdue_cases: int = Field(description="Open, claimed or awaiting information past the due date, now.")
    time_to_claim: Durations = Field(description="Creation to (latest) claim, cases created in the window.")
    time_to_answer: Durations = Field(description="Creation to answer, cases created in the window.")


class CaseStats(ResponseModel):
    generated_at: datetime
    window_start: datetime = Field(description="Durations cover cases created since then.")
    specialties: list[SpecialtyStats]

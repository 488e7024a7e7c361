"""Per-specialty case statistics from clear metadata (status, due date, timestamps), never content.

Counts are SQL aggregates; the medians and 90th percentiles are computed here over the timestamps of the
cases created in the window, which bounds the query.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models.cases import PENDING_STATUSES, Case, CaseStatus
from app.models.specialties import Specialty
from app.schemas.stats import CaseStats, Durations, SpecialtyStats


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks of sorted values (NumPy's default method)."""
    rank = (len(ordered) - 1) * fraction
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def durations(seconds: list[float]) -> Durations:
    if not seconds:
        return Durations(cases=0, median_seconds=None, p90_seconds=None)
    ordered = sorted(seconds)
    return Durations(
        cases=len(ordered), median_seconds=percentile(ordered, 0.5), p90_seconds=percentile(ordered, 0.9)
    )


def case_stats(session: Session, since: datetime, now: datetime) -> CaseStats:
    pending = [status.value for status in PENDING_STATUSES]
    by_status: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for specialty, status, count in session.exec(
        select(Case.specialty, Case.status, func.count())
        .where(col(Case.status).in_(pending))
        .group_by(col(Case.specialty), col(Case.status))
    ).all():
        by_status[specialty][status] = count
    overdue = dict(
        session.exec(
            select(Case.specialty, func.count())
            .where(col(Case.status).in_(pending), col(Case.due_at) < now)
            .group_by(col(Case.specialty))
        ).all()
    )
    to_claim: defaultdict[str, list[float]] = defaultdict(list)
    to_answer: defaultdict[str, list[float]] = defaultdict(list)
    for specialty, created_at, claimed_at, answered_at in session.exec(
        select(Case.specialty, Case.created_at, Case.claimed_at, Case.answered_at).where(
            col(Case.created_at) >= since,
            (col(Case.claimed_at).is_not(None)) | (col(Case.answered_at).is_not(None)),
        )
    ).all():
        if claimed_at is not None:
            to_claim[specialty].append((claimed_at - created_at).total_seconds())
        if answered_at is not None:
            to_answer[specialty].append((answered_at - created_at).total_seconds())
    active = session.exec(select(Specialty.code).where(Specialty.active)).all()
    codes = sorted({*active, *by_status, *to_claim, *to_answer})
    return CaseStats(
        generated_at=now,
        window_start=since,
        specialties=[
            SpecialtyStats(
                specialty=code,
                open_cases=by_status[code][CaseStatus.OPEN.value],
                in_progress_cases=by_status[code][CaseStatus.CLAIMED.value]
                + by_status[code][CaseStatus.AWAITING_INFO.value],
                overdue_cases=overdue.get(code, 0),
                time_to_claim=durations(to_claim[code]),
                time_to_answer=durations(to_answer[code]),
            )
            for code in codes
        ],
    )

"""Statistics for admins: per specialty, open and overdue cases and how long claims and answers take."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from app.audit.records import Purpose
from app.deps import Admin, Db
from app.models.base import utcnow
from app.runtime.context import audited
from app.schemas.common import problems
from app.schemas.stats import CaseStats
from app.services import stats

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get(
    "/stats",
    operation_id="adminGetCaseStats",
    summary="Per specialty: open, in progress and overdue cases; median and p90 time to claim and answer",
    response_model=CaseStats,
    responses=problems(401, 403, 422),
    dependencies=[audited("admin.stats.read", purpose=Purpose.SYSTEM_ADMINISTRATION)],
)
async def case_stats(
    _: Admin,
    db: Db,
    days: Annotated[
        int, Query(ge=1, le=366, description="Durations cover cases created this many days back.")
    ] = 90,
) -> CaseStats:
    now = utcnow()
    return await db.run(stats.case_stats, now - timedelta(days=days), now)

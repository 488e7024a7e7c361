"""The periodic job: deadlines (app/notifications/deadlines.py), the purge of events past their retention and
of full rate limit buckets (app/platform/ratelimit.py).

It runs in a daemon thread of each API process (`jobs_in_process`), or from cron as `confrere jobs run-once`.
Several at once are harmless: every change is conditional, so a case is marked, escalated or closed once;
on PostgreSQL an advisory lock also lets only one of them work at a time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from app.config import Settings
from app.models.base import utcnow
from app.notifications import deadlines, feed
from app.notifications.deadlines import DeadlineReport
from app.platform.background import BackgroundLoop
from app.platform.ratelimit import forget_full_buckets
from app.runtime.database import transaction

# pg_try_advisory_xact_lock key: "cfjobs" in ASCII.
ADVISORY_LOCK_KEY = 0x6366_6A6F_6273


@dataclass(frozen=True)
class JobReport:
    deadlines: DeadlineReport
    purged_events: int
    forgotten_buckets: int = 0  # rate limit rows of full buckets (PostgreSQL)


def run_once(engine: Engine, settings: Settings, now: datetime | None = None) -> JobReport | None:
    """One pass in one transaction; None when another process is running it (PostgreSQL)."""
    now = now or utcnow()
    with transaction(engine) as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        if (
            postgres
            and not session.execute(select(func.pg_try_advisory_xact_lock(ADVISORY_LOCK_KEY))).scalar()
        ):
            return None
        report = deadlines.run(session, settings, now, run_id=uuid.uuid4().hex)
        purged = feed.purge(session, now - timedelta(hours=settings.events_retention_hours))
        forgotten = forget_full_buckets(session.connection(), now.timestamp()) if postgres else 0
    return JobReport(deadlines=report, purged_events=purged, forgotten_buckets=forgotten)


class BackgroundJobs(BackgroundLoop):
    """run_once every `jobs_interval_seconds`, the first time one interval after start."""

    name = "deadline-jobs"
    stop_timeout = 30.0

    def __init__(self, engine: Engine, settings: Settings) -> None:
        super().__init__()
        self._engine = engine
        self._settings = settings
        self.first_wait = self.retry_seconds = settings.jobs_interval_seconds

    def run_pass(self) -> float:
        run_once(self._engine, self._settings)
        return self._settings.jobs_interval_seconds

"""Filters over audit records, shared by the event query and filtered exports.

They match the indexed columns the recorder fills next to the record bytes (time, actor, case, action,
outcome); the record bytes stay the evidence.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select

from app.audit.log import RECORDS, STREAM_ROWS, Executor


@dataclass(frozen=True)
class EventFilter:
    since: datetime | None = None
    until: datetime | None = None
    actor: uuid.UUID | None = None
    case: uuid.UUID | None = None
    action: str | None = None
    outcome: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = []
        if self.since is not None:
            conditions.append(RECORDS.c.event_time >= self.since)
        if self.until is not None:
            conditions.append(RECORDS.c.event_time < self.until)
        if self.actor is not None:
            conditions.append(RECORDS.c.actor_id == self.actor)
        if self.case is not None:
            conditions.append(RECORDS.c.case_id == self.case)
        if self.action is not None:
            conditions.append(RECORDS.c.action == self.action)
        if self.outcome is not None:
            conditions.append(RECORDS.c.outcome == self.outcome)
        return conditions

    def describe(self) -> dict[str, Any]:
        """The filter as JSON values, for bundle.json: what the officer asked for."""
        described = {}
        for name, value in asdict(self).items():
            if isinstance(value, datetime):
                described[name] = value.isoformat()
            elif value is not None:
                described[name] = str(value)
        return described


def matching_records(
    db: Executor, event_filter: EventFilter, start: int, end: int
) -> Iterator[tuple[int, bytes]]:
    """(position, record) of the sequenced records in positions [start, end) that match, in position order."""
    rows = db.execute(
        select(RECORDS.c.position, RECORDS.c.record)
        .where(RECORDS.c.position >= start, RECORDS.c.position < end, *event_filter.conditions())
        .order_by(RECORDS.c.position)
        .execution_options(yield_per=STREAM_ROWS)
    )
    yield from rows

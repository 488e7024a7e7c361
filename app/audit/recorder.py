"""Writes audit records: in the caller's transaction for actions, in their own for failures.

Writers only insert; positions are assigned later by the sequencer, never here.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.audit.records import AuditTrail, Event, Outcome, encode
from app.models.audit import AuditRecord
from app.models.base import utcnow
from app.models.rows import insert_rows

# C2SP tlog-tiles entry bundles prefix each entry with a 2-byte length.
MAX_RECORD_BYTES = 65_535


def values(trail: AuditTrail, status: int) -> dict[str, Any]:
    """The columns of this request's record, for a bulk insert of many (app.runtime.database.WriteGate)."""
    assert trail.action is not None, "only declared actions are recorded"
    event = Event(trail=trail, outcome=Outcome.for_status(status), status=status, time=utcnow())
    record = encode(event)
    if len(record) > MAX_RECORD_BYTES:
        raise ValueError("audit record too large")
    return {
        "record": record,
        "event_time": event.time,
        "actor_id": trail.actor.user_id,
        "case_id": trail.resource.case_id if trail.resource else None,
        "action": trail.action,
        "outcome": event.outcome.value,
    }


def add(session: Session, trail: AuditTrail, status: int) -> None:
    """Inserts the record of this request in the session's transaction: it commits, or rolls back, with the
    action. A Core insert: the commit flushes no ORM object for it."""
    insert_rows(session, AuditRecord, [values(trail, status)])

"""Deadlines (DESIGN.md section 3): overdue cases, escalation of ignored named cases, auto-close of answered
ones. The jobs (app/notifications/jobs.py) call `run` with an explicit `now`, so tests control the clock.

Each change is a conditional UPDATE on the state it was decided on, as transitions are: a request that moves
the case meanwhile wins, and the job leaves that case alone. Each change is audited with the system as actor
(no user), and notifies whom it concerns, in the job's transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, update
from sqlmodel import Session, col, select

from app.audit import recorder
from app.audit.records import Actor, AuditTrail, Purpose, Resource
from app.authz import queries
from app.authz.circle_rounds import Round
from app.authz.visibility import in_queue, participant_ids, seat_holders
from app.config import Settings
from app.models.cases import PENDING_STATUSES, Case, CaseStatus
from app.models.circles import CircleSession, CircleSessionRound
from app.models.notifications import EventType
from app.notifications import circle_events, outbox

JOBS_CLIENT = "confrere-jobs"
SYSTEM_ROLE = "system"
OVERDUE, ESCALATE, AUTO_CLOSE = "case.overdue", "case.escalate", "case.auto_close"
SESSION_CLOSE = "circle.session.close"
JOB_ACTIONS = (OVERDUE, ESCALATE, AUTO_CLOSE, SESSION_CLOSE)
BATCH_SIZE = 500


@dataclass
class DeadlineReport:
    overdue: list[uuid.UUID] = field(default_factory=list)
    escalated: list[uuid.UUID] = field(default_factory=list)
    auto_closed: list[uuid.UUID] = field(default_factory=list)
    closed_sessions: list[uuid.UUID] = field(default_factory=list)


def run(session: Session, settings: Settings, now: datetime, run_id: str) -> DeadlineReport:
    """One pass of every deadline rule, up to BATCH_SIZE cases each; the next pass continues."""
    return DeadlineReport(
        overdue=mark_overdue(session, now, run_id),
        escalated=escalate(session, now, run_id),
        auto_closed=auto_close(session, settings, now, run_id),
        closed_sessions=close_sessions(session, now, run_id),
    )


def close_sessions(session: Session, now: datetime, run_id: str) -> list[uuid.UUID]:
    """Co-development sessions past their deadline are closed (circle.session.round to the members); a
    facilitator who closes one meanwhile wins, as with the case rules."""
    expired = session.exec(
        select(CircleSession)
        .where(col(CircleSession.closed_at).is_(None), col(CircleSession.deadline) <= now)
        .order_by(col(CircleSession.deadline))
        .limit(BATCH_SIZE)
    ).all()
    closed = []
    for row in expired:
        closing = (
            update(CircleSession)
            .where(col(CircleSession.id) == row.id, col(CircleSession.closed_at).is_(None))
            .values(round=Round.CLOSED.value, closed_at=now)
            .execution_options(synchronize_session=False)
        )
        if session.exec(closing).rowcount != 1:
            continue
        session.add(
            CircleSessionRound(session_id=row.id, round=Round.CLOSED.value, moved_by=None, moved_at=now)
        )
        circle_events.session_round(session, row.circle_id, row.id, None, now)
        _record(session, run_id, SESSION_CLOSE, Resource(type="circle_session", id=str(row.id)))
        closed.append(row.id)
    return closed


def mark_overdue(session: Session, now: datetime, run_id: str) -> list[uuid.UUID]:
    """case.overdue, once per case, to its requester, assignee and named specialist, and to the specialty's
    specialists while it waits unclaimed in their queue."""
    pending = [status.value for status in PENDING_STATUSES]
    marked = []
    due = (col(Case.status).in_(pending), col(Case.due_at) < now, col(Case.overdue_notified_at).is_(None))
    for case in _cases(session, *due):
        unchanged = [col(Case.status).in_(pending), col(Case.overdue_notified_at).is_(None)]
        if not queries.update_if_unchanged(session, case, unchanged, {"overdue_notified_at": now}):
            continue
        recipients = seat_holders(case)
        if in_queue(case):
            recipients |= outbox.queue_audience(session, case)
        shared = queries.shared_user_ids(session, case.id)
        outbox.emit(session, case, EventType.OVERDUE, recipients, now, shared=shared)
        _audit(session, run_id, OVERDUE, case)
        marked.append(case.id)
    return marked


def escalate(session: Session, now: datetime, run_id: str) -> list[uuid.UUID]:
    """An overdue case still waiting for its named specialist goes to the whole specialty queue:
    case.escalated to the specialty's specialists, and to the requester, whose client re-shares the case to
    them (it was sealed for the named specialist only)."""
    escalated = []
    for case in _cases(
        session,
        col(Case.status) == CaseStatus.OPEN,
        col(Case.named_specialist_id).is_not(None),
        col(Case.assignee_id).is_(None),
        col(Case.due_at) < now,
    ):
        unchanged = [
            col(Case.status) == CaseStatus.OPEN,
            col(Case.named_specialist_id) == case.named_specialist_id,
            col(Case.assignee_id).is_(None),
        ]
        offered_to_all = {"named_specialist_id": None, "updated_at": now}
        if not queries.update_if_unchanged(session, case, unchanged, offered_to_all):
            continue
        recipients = outbox.queue_audience(session, case) | {case.requester_id}
        shared = queries.shared_user_ids(session, case.id)
        outbox.emit(session, case, EventType.ESCALATED, recipients, now, shared=shared)
        _audit(session, run_id, ESCALATE, case)
        escalated.append(case.id)
    return escalated


def auto_close(session: Session, settings: Settings, now: datetime, run_id: str) -> list[uuid.UUID]:
    """Closes cases answered `auto_close_answered_after_hours` ago that their requester did not close."""
    if not settings.auto_close_answered_after_hours:
        return []
    cutoff = now - timedelta(hours=settings.auto_close_answered_after_hours)
    closed = []
    for case in _cases(session, col(Case.status) == CaseStatus.ANSWERED, col(Case.answered_at) <= cutoff):
        closing = {"status": CaseStatus.CLOSED.value, "closed_at": now, "updated_at": now}
        if not queries.update_if_unchanged(session, case, [col(Case.status) == CaseStatus.ANSWERED], closing):
            continue
        shared = queries.shared_user_ids(session, case.id)
        outbox.emit(session, case, EventType.CLOSED, participant_ids(case, shared), now, shared=shared)
        _audit(session, run_id, AUTO_CLOSE, case)
        closed.append(case.id)
    return closed


def _cases(session: Session, *conditions: ColumnElement[bool]) -> list[Case]:
    query = select(Case).where(*conditions).order_by(col(Case.due_at), col(Case.id)).limit(BATCH_SIZE)
    return list(session.exec(query).all())


def _audit(session: Session, run_id: str, action: str, case: Case) -> None:
    _record(session, run_id, action, Resource(type="case", id=str(case.id), case_id=case.id))


def _record(session: Session, run_id: str, action: str, resource: Resource) -> None:
    trail = AuditTrail(
        request_id=run_id,
        actor=Actor(roles=(SYSTEM_ROLE,), client=JOBS_CLIENT),
        action=action,
        purpose=Purpose.OPERATIONS,
        resource=resource,
    )
    recorder.add(session, trail, 200)

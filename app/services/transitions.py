"""Case transitions (DESIGN.md section 3): the policy decides, a conditional UPDATE applies.

The UPDATE is conditional on the state the decision was made on, so of two concurrent moves exactly one
applies: for two claims, one specialist wins and the other gets `already_claimed`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.authz import queries
from app.authz.cases import TRANSITIONS, lost_claim, may_transition
from app.authz.policies import enforce
from app.authz.principal import Principal
from app.authz.visibility import in_queue
from app.errors import AlreadyClaimed, CaseNotFound, IllegalTransition, InvalidInput
from app.models.cases import Case, CaseObject, ObjectKind, Transition
from app.notifications import outbox
from app.schemas.cases import TransitionRequest
from app.services.cases import load_visible


class ReportRequired(InvalidInput):
    code = "report_required"
    title = "Answering needs a report message of the assignee on this case"


def transition(
    session: Session, principal: Principal, case_id: uuid.UUID, request: TransitionRequest, now: datetime
) -> Case:
    try:
        case = load_visible(session, principal, case_id).case
    except CaseNotFound:
        seen = session.get(Case, case_id)  # already loaded: no second query
        if request.action is Transition.CLAIM and seen is not None and lost_claim(principal, seen):
            raise AlreadyClaimed() from None
        raise
    enforce(may_transition(principal, case, request.action))
    if request.action is Transition.ANSWER:
        _require_report(session, case, principal.id, request.report_message_id)
    was_queued = in_queue(case)
    _apply(session, case, request.action, _changes(case, principal.id, request, now))
    outbox.case_moved(session, case, request.action, principal.id, was_queued, now)
    return case


def _require_report(
    session: Session, case: Case, assignee_id: uuid.UUID, report_id: uuid.UUID | None
) -> None:
    found = session.exec(
        select(CaseObject.id).where(
            col(CaseObject.id) == report_id,
            col(CaseObject.case_id) == case.id,
            col(CaseObject.kind) == ObjectKind.REPORT,
            col(CaseObject.author_id) == assignee_id,
        )
    ).first()
    if found is None:
        raise ReportRequired()


def _changes(case: Case, actor_id: uuid.UUID, request: TransitionRequest, now: datetime) -> dict[str, Any]:
    changes: dict[str, Any] = {"status": TRANSITIONS[request.action].target.value, "updated_at": now}
    if request.action is Transition.CLAIM:
        changes |= {"assignee_id": actor_id, "claimed_at": now}
    elif request.action is Transition.DECLINE:
        # Back to the specialty queue: the decliner is neither its assignee nor its named specialist.
        changes |= {"assignee_id": None, "claimed_at": None, "decline_reason": request.reason}
        if case.named_specialist_id == actor_id:
            changes["named_specialist_id"] = None
    elif request.action is Transition.ANSWER:
        changes["answered_at"] = now
    elif request.action in (Transition.CLOSE, Transition.WITHDRAW):
        changes["closed_at"] = now
    return changes


def _apply(session: Session, case: Case, action: Transition, changes: dict[str, Any]) -> None:
    same_assignee = (
        col(Case.assignee_id).is_(None)
        if case.assignee_id is None
        else col(Case.assignee_id) == case.assignee_id
    )
    if not queries.update_if_unchanged(
        session, case, [col(Case.status) == case.status, same_assignee], changes
    ):
        # Say what won the race: a claim that lost to a withdrawal was not "already claimed".
        if action is Transition.CLAIM and case.assignee_id is not None:
            raise AlreadyClaimed()
        raise IllegalTransition("the case changed meanwhile: reload it")

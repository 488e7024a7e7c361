"""Case transitions (DESIGN.md section 3): the policy decides, a conditional UPDATE applies.

The UPDATE is conditional on the state the decision was made on, so of two concurrent moves exactly one
applies: for two claims, one specialist wins and the other gets `already_claimed`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from app.authz.cases import TRANSITIONS, in_queue, lost_claim, may_transition
from app.authz.principal import Principal
from app.errors import Conflict, Forbidden, InvalidInput
from app.models.cases import Case, CaseObject, Transition
from app.notifications import outbox
from app.schemas.cases import TransitionRequest
from app.services.cases import CaseNotFound, load_visible, update_if_unchanged


class IllegalTransition(Conflict):
    code = "illegal_transition"
    title = "The case's status does not allow this transition"


class TransitionNotAllowed(Forbidden):
    code = "transition_not_allowed"
    title = "Your part in this case does not let you make this transition"


class AlreadyClaimed(Conflict):
    code = "already_claimed"
    title = "Another specialist has claimed this case"


class ReportRequired(InvalidInput):
    code = "report_required"
    title = "Answering needs a report message of the assignee on this case"


_REFUSALS = {
    "already_claimed": AlreadyClaimed,
    "illegal_transition": IllegalTransition,
    "transition_not_allowed": TransitionNotAllowed,
}


def transition(
    session: Session, principal: Principal, case_id: uuid.UUID, request: TransitionRequest, now: datetime
) -> Case:
    try:
        case = load_visible(session, principal, case_id).case
    except CaseNotFound:
        case = session.get(Case, case_id)  # already loaded: no second query
        if request.action is Transition.CLAIM and case is not None and lost_claim(principal, case):
            raise AlreadyClaimed() from None
        raise
    decision = may_transition(principal, case, request.action)
    if not decision:
        raise _REFUSALS[decision.reason or ""]()
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
            CaseObject.id == report_id,
            CaseObject.case_id == case.id,
            CaseObject.kind == "report",
            CaseObject.author_id == assignee_id,
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
        Case.assignee_id.is_(None) if case.assignee_id is None else Case.assignee_id == case.assignee_id
    )
    if not update_if_unchanged(session, case, [Case.status == case.status, same_assignee], changes):
        # Say what won the race: a claim that lost to a withdrawal was not "already claimed".
        if action is Transition.CLAIM and case.assignee_id is not None:
            raise AlreadyClaimed()
        raise IllegalTransition("the case changed meanwhile: reload it")

"""Pure case policies: who sees a case (and may therefore hold its keys), who writes, shares and moves it.

A `Party` is the caller (a Principal) or another user loaded with their memberships (a Member): the same
rules decide whether the caller may read a case and whether a device of someone else may receive its keys,
so the server never lets an envelope reach a person it would refuse to show the case to. Who sees a case is
defined once, in app/authz/visibility.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Set
from dataclasses import dataclass

from app.authz.policies import ALLOW, Decision, deny
from app.authz.visibility import Party, grounds, is_clinician, is_participant, is_specialist_of
from app.errors import Refusal
from app.models.cases import FINAL_STATUSES, PENDING_STATUSES, Case, CaseStatus, ObjectKind, Transition
from app.models.users import CLINICAL_ROLES, Account, Role


@dataclass(frozen=True)
class Member:
    """Another user as policies see them: account state, roles and specialties."""

    user: Account
    roles: frozenset[Role]
    specialties: frozenset[str]

    @property
    def id(self) -> uuid.UUID:
        return self.user.id


def has_access(party: Party, case: Case, shared: Set[uuid.UUID]) -> Decision:
    """Who may see the case, and equally who may hold an envelope for its content (app/authz/visibility.py).

    `shared` holds the users a re-share made participants."""
    if not is_clinician(party):
        return deny(Refusal.NOT_A_CLINICIAN)
    return ALLOW if grounds(party, case, shared) else deny(Refusal.NOT_VISIBLE)


def may_act_as_clinician(party: Party) -> Decision:
    """Asking for opinions, listing one's cases, reading the directory. Specialists "may all a physician
    may", so either clinical role will do."""
    if not party.user.can_act:
        return deny(Refusal.ACCOUNT_NOT_ACTIVE)
    return ALLOW if party.roles & CLINICAL_ROLES else deny(Refusal.ROLE_REQUIRED)


def may_be_named(party: Party, specialty: str, requester_id: uuid.UUID) -> Decision:
    if party.id != requester_id and is_specialist_of(party, specialty):
        return ALLOW
    return deny(Refusal.INVALID_NAMED_SPECIALIST)


def may_be_shared_with(party: Party, case: Case) -> Decision:
    """A re-share reaches the requester, the named specialist, or a specialist of the case's specialty."""
    if not is_clinician(party):
        return deny(Refusal.RECIPIENT_NOT_ELIGIBLE)
    if party.id in (case.requester_id, case.named_specialist_id) or is_specialist_of(party, case.specialty):
        return ALLOW
    return deny(Refusal.RECIPIENT_NOT_ELIGIBLE)


def may_share(party: Party, case: Case, shared: Set[uuid.UUID]) -> Decision:
    """Participants re-share; a specialist who only sees the case in the queue does not."""
    return ALLOW if is_participant(party, case, shared) else deny(Refusal.SHARE_NOT_ALLOWED)


def _is_requester(party: Party, case: Case) -> bool:
    return party.id == case.requester_id


def _is_assignee(party: Party, case: Case) -> bool:
    return party.id == case.assignee_id


def _may_post_freely(party: Party, case: Case, shared: Set[uuid.UUID]) -> bool:
    return party.id in (case.requester_id, case.assignee_id) or party.id in shared


_WRITERS: dict[ObjectKind, Callable[[Party, Case, Set[uuid.UUID]], bool]] = {
    ObjectKind.ATTACHMENT: _may_post_freely,
    ObjectKind.MESSAGE: _may_post_freely,
    ObjectKind.INFO_REQUEST: lambda party, case, _: _is_assignee(party, case),
    ObjectKind.INFO_RESPONSE: lambda party, case, _: _is_requester(party, case),
    ObjectKind.REPORT: lambda party, case, _: _is_assignee(party, case),
}


def may_write(party: Party, case: Case, shared: Set[uuid.UUID], kind: ObjectKind) -> Decision:
    """Who may add a sealed object of `kind` to a case the caller can see."""
    if case.status in FINAL_STATUSES:
        return deny(Refusal.CASE_CLOSED)
    writer = _WRITERS.get(kind)  # a case's own object is written once, by creating the case
    return ALLOW if writer is not None and writer(party, case, shared) else deny(Refusal.WRITE_NOT_ALLOWED)


def allowed_writes(party: Party, case: Case, shared: Set[uuid.UUID]) -> list[ObjectKind]:
    """The kinds of object the party may add to the case now (the case answer carries them to clients)."""
    if case.status in FINAL_STATUSES:
        return []
    return [kind for kind, writer in _WRITERS.items() if writer(party, case, shared)]


@dataclass(frozen=True)
class Rule:
    sources: frozenset[CaseStatus]
    target: CaseStatus
    actor: Callable[[Party, Case], bool]


def _may_claim(party: Party, case: Case) -> bool:
    if _is_requester(party, case):
        return False
    if case.named_specialist_id is not None:
        return party.id == case.named_specialist_id
    return is_specialist_of(party, case.specialty)


def _may_decline(party: Party, case: Case) -> bool:
    # An open case is declined by the specialist it is offered to; a claimed one by its assignee.
    if case.status == CaseStatus.OPEN:
        return case.named_specialist_id is not None and party.id == case.named_specialist_id
    return _is_assignee(party, case)


TRANSITIONS: dict[Transition, Rule] = {
    Transition.CLAIM: Rule(frozenset({CaseStatus.OPEN}), CaseStatus.CLAIMED, _may_claim),
    Transition.DECLINE: Rule(frozenset({CaseStatus.OPEN, CaseStatus.CLAIMED}), CaseStatus.OPEN, _may_decline),
    Transition.REQUEST_INFO: Rule(frozenset({CaseStatus.CLAIMED}), CaseStatus.AWAITING_INFO, _is_assignee),
    Transition.PROVIDE_INFO: Rule(frozenset({CaseStatus.AWAITING_INFO}), CaseStatus.CLAIMED, _is_requester),
    Transition.ANSWER: Rule(frozenset({CaseStatus.CLAIMED}), CaseStatus.ANSWERED, _is_assignee),
    Transition.CLOSE: Rule(frozenset({CaseStatus.ANSWERED}), CaseStatus.CLOSED, _is_requester),
    Transition.WITHDRAW: Rule(PENDING_STATUSES, CaseStatus.WITHDRAWN, _is_requester),
}


def may_transition(party: Party, case: Case, action: Transition) -> Decision:
    """The state machine of DESIGN.md section 3, for a caller who can see the case."""
    rule = TRANSITIONS[action]
    if action is Transition.CLAIM and case.assignee_id is not None:
        return deny(Refusal.ALREADY_CLAIMED)
    if case.status not in rule.sources:
        return deny(Refusal.ILLEGAL_TRANSITION)
    return ALLOW if rule.actor(party, case) else deny(Refusal.TRANSITION_NOT_ALLOWED)


def allowed_transitions(party: Party, case: Case) -> list[Transition]:
    """The transitions the party may make now, in the order of the state machine (the case answer carries
    them to clients, which offer nothing else)."""
    return [action for action in TRANSITIONS if may_transition(party, case, action)]


def lost_claim(party: Party, case: Case) -> bool:
    """A specialist of the specialty claiming a case a colleague has just taken: it has left their view,
    but they saw it in the queue a moment ago, so they learn it was claimed rather than a bare 404."""
    return (
        case.assignee_id not in (None, party.id)
        and case.status in (CaseStatus.CLAIMED, CaseStatus.AWAITING_INFO)
        and is_specialist_of(party, case.specialty)
    )

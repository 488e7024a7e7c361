"""The pure case policies (app/authz), table by table: relation x status x action, with no database and no
HTTP. The tables below are the rules of DESIGN.md section 3 and docs/api.md sections 7 to 9 written out by
hand; tests/test_authz_matrix.py checks the same rules route by route through the API."""

from __future__ import annotations

import uuid
from typing import get_args

import pytest

from app.authz.cases import (
    Member,
    allowed_transitions,
    allowed_writes,
    has_access,
    may_share,
    may_transition,
    may_write,
)
from app.authz.notifications import may_be_notified
from app.crypto import e2ee
from app.errors import Refusal
from app.models.base import utcnow
from app.models.cases import MESSAGE_KINDS, Case, CaseStatus, ObjectKind, Priority, Transition
from app.models.users import Role, User, UserStatus
from app.schemas.cases import MessageKind

SPECIALTY = "dermatology"
T = Transition
K = ObjectKind
S = CaseStatus


def _member(
    *roles: Role, specialties: tuple[str, ...] = (), status: UserStatus = UserStatus.ACTIVE
) -> Member:
    user = User(
        id=uuid.uuid4(),
        email=f"{uuid.uuid4().hex}@example.org",
        password_hash="unused",
        display_name="someone",
        status=status,
        verified_at=utcnow() if status is not UserStatus.PENDING else None,
    )
    return Member(user=user, roles=frozenset(roles), specialties=frozenset(specialties))


# Everyone a case can meet. "named" is offered the case; "queue" is a specialist of its specialty with no part
# in it; "shared" is a physician a re-share made a participant.
PARTIES = {
    "requester": _member(Role.PHYSICIAN),
    "assignee": _member(Role.SPECIALIST, specialties=(SPECIALTY,)),
    "named": _member(Role.SPECIALIST, specialties=(SPECIALTY,)),
    "shared": _member(Role.PHYSICIAN),
    "queue": _member(Role.SPECIALIST, specialties=(SPECIALTY,)),
    "other_specialty": _member(Role.SPECIALIST, specialties=("cardiology",)),
    "stranger": _member(Role.PHYSICIAN),
    "officer": _member(Role.COMPLIANCE_OFFICER),
    "suspended_requester": _member(Role.PHYSICIAN, status=UserStatus.SUSPENDED),
}
RELATIONS = list(PARTIES)
# Specialists of the case's specialty: an open case waiting in the queue is theirs to see and claim.
SPECIALISTS = {"assignee", "named", "queue"}


def _case(
    status: CaseStatus, *, named: bool, requester: str = "requester"
) -> tuple[Case, frozenset[uuid.UUID]]:
    """A case in `status`: claimed by "assignee" once past open, offered to "named" when `named`."""
    now = utcnow()
    case = Case(
        id=uuid.uuid4(),
        requester_id=PARTIES[requester].id,
        specialty=SPECIALTY,
        named_specialist_id=PARTIES["named"].id if named else None,
        assignee_id=None if status is S.OPEN else PARTIES["assignee"].id,
        status=status,
        priority=Priority.ROUTINE,
        due_at=now,
        patient_consent_at=now,
    )
    return case, frozenset({PARTIES["shared"].id})


def _situations() -> list[tuple[str, CaseStatus, bool]]:
    return [(relation, status, named) for relation in RELATIONS for status in S for named in (False, True)]


def _seen_situations() -> list[tuple[str, CaseStatus, bool]]:
    """The situations in which the party sees the case: the only ones in which moves and writes arise."""
    return [situation for situation in _situations() if _sees(*situation)]


def _id(situation: tuple[str, CaseStatus, bool]) -> str:
    relation, status, named = situation
    return f"{relation}-{status.value}-{'named' if named else 'queued'}"


def _sees(relation: str, status: CaseStatus, named: bool) -> bool:
    if relation in ("requester", "shared") or (relation == "named" and named):
        return True
    if relation == "assignee" and status is not S.OPEN:
        return True
    # The specialty's specialists see an open case while it waits in their queue, offered to nobody.
    return relation in SPECIALISTS and status is S.OPEN and not named


def _transitions(relation: str, status: CaseStatus, named: bool) -> set[Transition]:
    """Who may make which move, for a party who sees the case."""
    table = {
        ("requester", S.OPEN): {T.WITHDRAW},
        ("requester", S.CLAIMED): {T.WITHDRAW},
        ("requester", S.AWAITING_INFO): {T.PROVIDE_INFO, T.WITHDRAW},
        ("requester", S.ANSWERED): {T.CLOSE},
        ("assignee", S.CLAIMED): {T.DECLINE, T.REQUEST_INFO, T.ANSWER},
    }
    if status is S.OPEN and relation in SPECIALISTS:
        # Offered to a named specialist, the case is theirs to claim or decline; otherwise any of the
        # specialty's specialists may claim it.
        if named:
            return {T.CLAIM, T.DECLINE} if relation == "named" else set()
        return {T.CLAIM}
    return table.get((relation, status), set())


def _writes(relation: str, status: CaseStatus) -> set[ObjectKind]:
    if status in (S.CLOSED, S.WITHDRAWN):
        return set()
    table = {
        "requester": {K.MESSAGE, K.ATTACHMENT, K.INFO_RESPONSE},
        "assignee": {K.MESSAGE, K.ATTACHMENT, K.INFO_REQUEST, K.REPORT},
        "shared": {K.MESSAGE, K.ATTACHMENT},
    }
    if relation == "assignee" and status is S.OPEN:
        return set()  # an open case has no assignee yet
    return table.get(relation, set())


@pytest.mark.parametrize("situation", _situations(), ids=_id)
def test_who_sees_a_case(situation) -> None:
    relation, status, named = situation
    case, shared = _case(status, named=named)
    decision = has_access(PARTIES[relation], case, shared)
    assert bool(decision) is _sees(relation, status, named)
    if not decision:
        expected = (
            Refusal.NOT_A_CLINICIAN if relation in ("officer", "suspended_requester") else Refusal.NOT_VISIBLE
        )
        assert decision.reason is expected


@pytest.mark.parametrize("situation", _seen_situations(), ids=_id)
def test_who_makes_which_move(situation) -> None:
    relation, status, named = situation
    case, _ = _case(status, named=named)
    assert set(allowed_transitions(PARTIES[relation], case)) == _transitions(relation, status, named)


@pytest.mark.parametrize("situation", _seen_situations(), ids=_id)
def test_who_writes_what(situation) -> None:
    relation, status, named = situation
    case, shared = _case(status, named=named)
    party = PARTIES[relation]
    assert set(allowed_writes(party, case, shared)) == _writes(relation, status)
    for kind in set(K) - {K.CASE} - _writes(relation, status):
        final = status in (S.CLOSED, S.WITHDRAWN)
        expected = Refusal.CASE_CLOSED if final else Refusal.WRITE_NOT_ALLOWED
        assert may_write(party, case, shared, kind).reason is expected


@pytest.mark.parametrize("situation", _situations(), ids=_id)
def test_who_reshares_and_who_hears_of_the_case(situation) -> None:
    relation, status, named = situation
    case, shared = _case(status, named=named)
    party = PARTIES[relation]
    participant = relation in ("requester", "shared") or (relation == "named" and named)
    participant |= relation == "assignee" and status is not S.OPEN
    assert bool(may_share(party, case, shared)) is participant
    # Events carry only ids: the specialty's specialists hear of every case of it, even out of their queue.
    hears = participant or relation in ("queue", "named", "assignee")
    assert bool(may_be_notified(party, case, shared)) is hears


# A move refused names why: the status (409), the caller's part (403), or a colleague's claim (409).
REFUSED_MOVES = [
    ("requester", S.OPEN, False, T.CLOSE, Refusal.ILLEGAL_TRANSITION),
    ("requester", S.OPEN, False, T.CLAIM, Refusal.TRANSITION_NOT_ALLOWED),
    ("queue", S.OPEN, False, T.DECLINE, Refusal.TRANSITION_NOT_ALLOWED),
    ("queue", S.OPEN, True, T.CLAIM, Refusal.TRANSITION_NOT_ALLOWED),
    ("queue", S.CLAIMED, False, T.CLAIM, Refusal.ALREADY_CLAIMED),
    ("assignee", S.CLAIMED, False, T.CLOSE, Refusal.ILLEGAL_TRANSITION),
    ("assignee", S.AWAITING_INFO, False, T.PROVIDE_INFO, Refusal.TRANSITION_NOT_ALLOWED),
    ("requester", S.ANSWERED, False, T.WITHDRAW, Refusal.ILLEGAL_TRANSITION),
    ("requester", S.CLOSED, False, T.CLOSE, Refusal.ILLEGAL_TRANSITION),
]


@pytest.mark.parametrize(("relation", "status", "named", "action", "reason"), REFUSED_MOVES)
def test_a_refused_move_says_why(relation, status, named, action, reason) -> None:
    case, _ = _case(status, named=named)
    assert may_transition(PARTIES[relation], case, action).reason is reason


def test_a_specialist_never_claims_their_own_request() -> None:
    case, _ = _case(S.OPEN, named=False, requester="queue")
    assert may_transition(PARTIES["queue"], case, T.CLAIM).reason is Refusal.TRANSITION_NOT_ALLOWED


def test_object_kinds_are_the_formats_kinds() -> None:
    assert set(ObjectKind) == e2ee.OBJECT_KINDS
    assert MESSAGE_KINDS == e2ee.MESSAGE_KINDS == set(get_args(MessageKind))

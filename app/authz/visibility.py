"""Who may see a case, and so may hold its keys: one definition, read in Python and in SQL.

A verified, active clinician (an account that `can_act`, holding one of VIEWER_ROLES) sees a case on any of
its grounds: holding one of its SEATS, a re-share that made them a participant (SHARED), or, as a specialist
of its specialty (QUEUE_ROLE), while it waits QUEUED. The Python predicates below decide for one party and
one case (the policies of app/authz/cases.py, the checks on every envelope's recipient); app/authz/queries.py
builds from the same tables the SQL that selects cases for a user (lists) and users for a case (event
audiences, the recipient directory). tests/test_visibility.py checks on the database that both agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Set
from enum import StrEnum
from typing import Protocol

from app.models.cases import Case, CaseStatus
from app.models.users import CLINICAL_ROLES, Role


class Ground(StrEnum):
    """A way of seeing a case."""

    REQUESTER = "requester"
    ASSIGNEE = "assignee"
    NAMED_SPECIALIST = "named_specialist"
    SHARED = "shared"
    QUEUE = "queue"


# The grounds that are a column of the case naming the user.
SEATS: dict[Ground, str] = {
    Ground.REQUESTER: "requester_id",
    Ground.ASSIGNEE: "assignee_id",
    Ground.NAMED_SPECIALIST: "named_specialist_id",
}
# A case waits in its specialty's queue while these columns hold these values: open, offered to no named
# specialist, claimed by nobody.
QUEUED: dict[str, CaseStatus | None] = {
    "status": CaseStatus.OPEN,
    "named_specialist_id": None,
    "assignee_id": None,
}
# Nobody else sees a case on any ground: compliance officers and admins as such never do.
VIEWER_ROLES = CLINICAL_ROLES
# The role whose holders see their specialties' queues.
QUEUE_ROLE = Role.SPECIALIST


class Standing(Protocol):
    """What policies read of an account: the caller's User, or another user's Account."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def profession(self) -> str: ...

    @property
    def can_act(self) -> bool: ...


class Party(Protocol):
    """The caller (a Principal) or another user loaded with their memberships (a Member)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def user(self) -> Standing: ...

    @property
    def roles(self) -> frozenset[Role]: ...

    @property
    def specialties(self) -> frozenset[str]: ...


def is_clinician(party: Party) -> bool:
    return party.user.can_act and bool(party.roles & VIEWER_ROLES)


def is_specialist_of(party: Party, specialty: str) -> bool:
    return party.user.can_act and QUEUE_ROLE in party.roles and specialty in party.specialties


def in_queue(case: Case) -> bool:
    return all(getattr(case, column) == value for column, value in QUEUED.items())


def seat_holders(case: Case) -> set[uuid.UUID]:
    return {user_id for column in SEATS.values() if (user_id := getattr(case, column)) is not None}


def participant_ids(case: Case, shared: Set[uuid.UUID]) -> set[uuid.UUID]:
    """Those who take part in the case: its seat holders and the users a re-share made participants."""
    return seat_holders(case) | set(shared)


def is_participant(party: Party, case: Case, shared: Set[uuid.UUID]) -> bool:
    return party.id in participant_ids(case, shared)


def grounds(party: Party, case: Case, shared: Set[uuid.UUID]) -> frozenset[Ground]:
    """The grounds on which the party would see the case, were they a clinician (app/authz/cases.py
    has_access: who sees the case, and equally who may hold an envelope for its content)."""
    found = {ground for ground, column in SEATS.items() if getattr(case, column) == party.id}
    if party.id in shared:
        found.add(Ground.SHARED)
    if in_queue(case) and is_specialist_of(party, case.specialty):
        found.add(Ground.QUEUE)
    return frozenset(found)

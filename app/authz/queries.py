"""Scoped queries: the SQL side of the case policies, built from the definition of who sees a case
(app/authz/visibility.py), the loaders that give the Python side its parties, and the conditional update
that applies a decision only while the case is still as the policy saw it (requests and the deadlines job
alike)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, CompoundSelect, Select, and_, bindparam, literal, or_, union_all, update
from sqlalchemy import select as select_rows
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app.authz.cases import Member
from app.authz.visibility import QUEUE_ROLE, QUEUED, SEATS
from app.models.cases import Case, CaseShare
from app.models.users import ACCOUNT_COLUMNS, Account, Role, User, UserRole, UserSpecialty, UserStatus

# A select of users (rows or ids), narrowed and returned as the same kind of select.
SelectT = TypeVar("SelectT", bound=Select[Any])


def acting_users() -> ColumnElement[bool]:
    """SQL twin of `account_can_act` (User.can_act, Account.can_act): verified and active."""
    return and_(col(User.verified_at).is_not(None), col(User.status) == UserStatus.ACTIVE)


def memberships(of_users: Callable[[Any], ColumnElement[bool]]) -> CompoundSelect:
    """Roles and specialties as rows (kind, user_id, value), of the users `of_users(user_id column)`
    selects: filtered in each branch, so no database has to push the filter down into the union."""
    return union_all(
        select(literal("role").label("kind"), UserRole.user_id, col(UserRole.role).label("value")).where(
            of_users(UserRole.user_id)
        ),
        select(literal("specialty"), UserSpecialty.user_id, UserSpecialty.specialty_code).where(
            of_users(UserSpecialty.user_id)
        ),
    )


_MEMBERSHIPS = memberships(lambda user_id: user_id.in_(bindparam("user_ids", expanding=True)))


def roles_and_specialties(
    session: Session, user_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, set[Role]], dict[uuid.UUID, set[str]]]:
    """Both memberships for a batch of users in one query, whatever the batch size (every request loads
    its caller's)."""
    roles: dict[uuid.UUID, set[Role]] = defaultdict(set)
    specialties: dict[uuid.UUID, set[str]] = defaultdict(set)
    if not user_ids:
        return roles, specialties
    for kind, user_id, value in session.execute(_MEMBERSHIPS, {"user_ids": list(user_ids)}).all():
        if kind == "role":
            roles[user_id].add(Role(value))
        else:
            specialties[user_id].add(value)
    return roles, specialties


def _members_of(selected: Callable[[Any], ColumnElement[bool]]) -> Select[Any]:
    """The users `selected(user id column)` picks, as Account columns then (kind, value): a row per role or
    specialty they hold (one with NULLs for a user with neither). The memberships are filtered by the same
    condition in each branch of their union, so no database scans them all."""
    held = memberships(selected).subquery()
    return (
        select_rows(*ACCOUNT_COLUMNS, held.c.kind, held.c.value)
        .outerjoin(held, held.c.user_id == User.id)
        .where(selected(col(User.id)))
    )


def _listed(user_id: Any) -> ColumnElement[bool]:
    return user_id.in_(bindparam("user_ids", expanding=True))


def _listed_or_specialists(user_id: Any) -> ColumnElement[bool]:
    # Not correlated with the outer rows: a query of its own.
    specialists = specialists_of(select(User.id), bindparam("specialty")).correlate(None)
    return or_(_listed(user_id), user_id.in_(specialists))


def load_members(
    session: Session, user_ids: Iterable[uuid.UUID], *, with_specialists_of: str | None = None
) -> dict[uuid.UUID, Member]:
    """Users with their roles and specialties, in one query whatever their number (statements built once:
    every case action runs this); none for no user. With `with_specialists_of`, the specialty's
    specialists too (the SQL twin of `is_specialist_of`): a new case's event audience, loaded with its
    recipients for one policy check of both."""
    params = {"user_ids": list(set(user_ids))}
    if with_specialists_of is not None:
        rows = session.execute(_MEMBERS_OR_SPECIALISTS, params | {"specialty": with_specialists_of}).all()
    elif params["user_ids"]:
        rows = session.execute(_MEMBERS, params).all()
    else:
        return {}
    accounts: dict[uuid.UUID, Account] = {}
    roles: dict[uuid.UUID, set[Role]] = defaultdict(set)
    specialties: dict[uuid.UUID, set[str]] = defaultdict(set)
    for *account, kind, value in rows:
        user = accounts.setdefault(account[0], Account(*account))
        if kind == "role":
            roles[user.id].add(Role(value))
        elif kind == "specialty":
            specialties[user.id].add(value)
    return {
        user_id: Member(
            user=user, roles=frozenset(roles[user_id]), specialties=frozenset(specialties[user_id])
        )
        for user_id, user in accounts.items()
    }


# Built once, like the other statements of a case read (app/services/cases.py).
_SHARED_USERS = (
    select(CaseShare.recipient_id)
    .where(col(CaseShare.case_id) == bindparam("case_id"), CaseShare.grants_access)
    .distinct()
)


def shared_user_ids(session: Session, case_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """Users a re-share made participants of the case."""
    return frozenset(session.exec(_SHARED_USERS, params={"case_id": case_id}).all())


def _case_column(name: str) -> ColumnElement:
    return getattr(Case, name)


def queued() -> ColumnElement[bool]:
    """SQL twin of `in_queue`."""
    return and_(
        *(
            _case_column(name).is_(None) if value is None else _case_column(name) == value
            for name, value in QUEUED.items()
        )
    )


def specialists_of(query: SelectT, specialty: object) -> SelectT:
    """`query`, which selects from users, narrowed to the SQL twin of `is_specialist_of`: the users whose
    queue holds the specialty's waiting cases."""
    return (
        query.join(UserRole, col(UserRole.user_id) == User.id)
        .join(UserSpecialty, col(UserSpecialty.user_id) == User.id)
        .where(
            acting_users(),
            col(UserRole.role) == QUEUE_ROLE.value,
            col(UserSpecialty.specialty_code) == specialty,
        )
    )


_MEMBERS = _members_of(_listed)
_MEMBERS_OR_SPECIALISTS = _members_of(_listed_or_specialists)


def participant_selects(user_id: uuid.UUID) -> list[SelectOfScalar[Case]]:
    """The cases a user takes part in, one select per way of taking part (each seat, then re-shares),
    each served by its own index."""
    shared = select(CaseShare.case_id).where(
        col(CaseShare.recipient_id) == user_id, col(CaseShare.grants_access)
    )
    return [
        *(select(Case).where(_case_column(column) == user_id) for column in SEATS.values()),
        select(Case).where(col(Case.id).in_(shared)),
    ]


def queue_selects(user_id: uuid.UUID, specialties: Iterable[str]) -> list[SelectOfScalar[Case]]:
    """Queued cases of these specialties (one select per specialty, for the queue index), except the
    caller's own requests, which they may not claim."""
    return [
        select(Case).where(col(Case.specialty) == specialty, queued(), col(Case.requester_id) != user_id)
        for specialty in sorted(specialties)
    ]


def update_if_unchanged(
    session: Session, case: Case, unchanged: Iterable[ColumnElement[bool]], changes: dict[str, Any]
) -> bool:
    """Applies `changes` to the case only while `unchanged` still holds, in one conditional UPDATE, so that
    of two requests moving a case at once only the first does; whether it applied. The case is refreshed
    either way: as changed, or as the request that got there first left it."""
    result = session.exec(
        update(Case)
        .where(col(Case.id) == case.id, *unchanged)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    session.refresh(case)
    return result.rowcount == 1

"""Scoped queries: the SQL side of the case policies (app/authz/cases.py), for lists and batch checks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import ColumnElement, Select, and_, bindparam
from sqlmodel import Session, col, select

from app.authz.cases import Member
from app.models.cases import Case, CaseShare, CaseStatus
from app.models.users import User, UserStatus
from app.services import accounts


def acting_users() -> ColumnElement[bool]:
    """SQL twin of `User.can_act`: verified and active."""
    return and_(col(User.verified_at).is_not(None), col(User.status) == UserStatus.ACTIVE)


_USERS = select(User).where(col(User.id).in_(bindparam("user_ids", expanding=True)))


def load_members(session: Session, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Member]:
    """Users with their roles and specialties, in two queries whatever their number (statements built
    once: every case action runs this)."""
    users = session.exec(_USERS, params={"user_ids": list(set(user_ids))}).all()
    roles, specialties = accounts.roles_and_specialties(session, [user.id for user in users])
    return {
        user.id: Member(
            user=user, roles=frozenset(roles[user.id]), specialties=frozenset(specialties[user.id])
        )
        for user in users
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


def participant_selects(user_id: uuid.UUID) -> list[Select]:
    """The cases a user takes part in, one select per way of taking part, each served by its own index."""
    shared = select(CaseShare.case_id).where(col(CaseShare.recipient_id) == user_id, CaseShare.grants_access)
    return [
        select(Case).where(col(Case.requester_id) == user_id),
        select(Case).where(col(Case.assignee_id) == user_id),
        select(Case).where(col(Case.named_specialist_id) == user_id),
        select(Case).where(col(Case.id).in_(shared)),
    ]


def queue_selects(user_id: uuid.UUID, specialties: Iterable[str]) -> list[Select]:
    """Open cases waiting in these specialties' queues (one select per specialty, for the queue index),
    except the caller's own requests, which they may not claim."""
    return [
        select(Case).where(
            col(Case.specialty) == specialty,
            col(Case.status) == CaseStatus.OPEN,
            col(Case.named_specialist_id).is_(None),
            col(Case.assignee_id).is_(None),
            col(Case.requester_id) != user_id,
        )
        for specialty in sorted(specialties)
    ]

"""Circles: creation, the caller's list and open circles to join, one circle's detail, and the loader every
circle service starts with (the circle and the caller's membership, checked by app/authz/circles.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from app.authz import circles as policies
from app.authz.policies import Decision, enforce
from app.authz.principal import Principal
from app.authz.visibility import Party
from app.errors import CircleNotFound
from app.models.circles import (
    AudienceKind,
    Circle,
    CircleAccess,
    CircleMember,
    MemberRole,
    MembershipStatus,
)
from app.models.specialties import Specialty
from app.platform.keyset import Keyset
from app.platform.pagination import Page
from app.schemas.circles import AudienceOut, CircleCreate, CircleOut
from app.services.devices import SpecialtyNotFound

NEWEST_FIRST = Keyset(Circle.created_at, Circle.id, descending=True)
Rule = Callable[[Circle, CircleMember | None], Decision]


@dataclass(frozen=True)
class Place:
    """A circle as the caller stands in it."""

    circle: Circle
    membership: CircleMember | None


def membership_of(session: Session, circle_id: uuid.UUID, user_id: uuid.UUID) -> CircleMember | None:
    return session.get(CircleMember, (circle_id, user_id))


def members_only(circle: Circle, membership: CircleMember | None) -> Decision:
    return policies.may_read(membership)


def moderators_only(circle: Circle, membership: CircleMember | None) -> Decision:
    return policies.may_moderate(membership)


def visible_to(party: Party) -> Rule:
    """Members, invited people and an open circle's audience (the detail, joining)."""
    return lambda circle, membership: policies.may_see(party, circle, membership)


def load(
    session: Session,
    party: Party,
    circle_id: uuid.UUID,
    rule: Rule = members_only,
    *,
    for_update: bool = False,
) -> Place:
    """The circle and the caller's membership, refused by `rule` (a circle the caller may not see answers
    circle_not_found, like a missing one). `for_update` locks the circle row (PostgreSQL) so that
    membership changes and rotations of one circle happen one at a time."""
    query = select(Circle).where(col(Circle.id) == circle_id)
    circle = session.exec(query.with_for_update() if for_update else query).first()
    if circle is None:
        raise CircleNotFound()
    membership = membership_of(session, circle_id, party.id)
    enforce(rule(circle, membership))
    return Place(circle, membership)


def active_members(session: Session, circle_id: uuid.UUID) -> list[CircleMember]:
    query = select(CircleMember).where(
        col(CircleMember.circle_id) == circle_id, col(CircleMember.status) == MembershipStatus.ACTIVE
    )
    return list(session.exec(query.order_by(col(CircleMember.joined_at), col(CircleMember.user_id))).all())


def create(session: Session, principal: Principal, request: CircleCreate, now: datetime) -> CircleOut:
    """The creator is the first moderator; the circle waits for its first epoch (rotation_required)."""
    audience = request.audience
    if audience is not None and audience.specialty is not None:
        active = select(Specialty.code).where(col(Specialty.code) == audience.specialty, Specialty.active)
        if session.exec(active).first() is None:
            raise SpecialtyNotFound()
    circle = Circle(
        name=request.name.strip(),
        description=request.description.strip(),
        access=request.access.value,
        audience_kind=None
        if audience is None
        else (AudienceKind.PROFESSION if audience.profession else AudienceKind.SPECIALTY).value,
        audience_code=None if audience is None else (audience.profession or audience.specialty),
        created_by=principal.id,
        created_at=now,
    )
    session.add(circle)
    session.flush()
    membership = CircleMember(
        circle_id=circle.id,
        user_id=principal.id,
        role=MemberRole.MODERATOR.value,
        status=MembershipStatus.ACTIVE.value,
        joined_at=now,
        joined_epoch=1,
    )
    session.add(membership)
    session.flush()
    return views(session, [circle], {circle.id: membership})[0]


def _member_counts(session: Session, circle_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    query = (
        select(CircleMember.circle_id, func.count())
        .where(
            col(CircleMember.circle_id).in_(circle_ids), col(CircleMember.status) == MembershipStatus.ACTIVE
        )
        .group_by(col(CircleMember.circle_id))
    )
    return {circle_id: count for circle_id, count in session.exec(query).all()}


def views(
    session: Session, circles: list[Circle], memberships: Mapping[uuid.UUID, CircleMember | None]
) -> list[CircleOut]:
    counts = _member_counts(session, [circle.id for circle in circles])
    answers = []
    for circle in circles:
        membership = memberships.get(circle.id)
        standing = membership if membership is not None and membership.status in _STANDING else None
        answers.append(
            CircleOut(
                id=circle.id,
                name=circle.name,
                description=circle.description,
                access=CircleAccess(circle.access),
                audience=None
                if circle.audience_kind is None
                else AudienceOut(**{circle.audience_kind: circle.audience_code}),
                current_epoch=circle.current_epoch,
                rotation_required=circle.rotation_required,
                my_role=MemberRole(standing.role)
                if standing is not None and standing.status == MembershipStatus.ACTIVE
                else None,
                my_status=MembershipStatus(standing.status) if standing is not None else None,
                member_count=counts.get(circle.id, 0),
                created_at=circle.created_at,
            )
        )
    return answers


_STANDING = frozenset({MembershipStatus.ACTIVE, MembershipStatus.INVITED})


def read(session: Session, principal: Principal, circle_id: uuid.UUID) -> CircleOut:
    place = load(session, principal, circle_id, visible_to(principal))
    return views(session, [place.circle], {place.circle.id: place.membership})[0]


def _audience_filter(principal: Principal):
    """SQL twin of `in_audience` for the caller: the open circles it may join."""
    return (col(Circle.access) == CircleAccess.OPEN) & or_(
        col(Circle.audience_kind).is_(None),
        (col(Circle.audience_kind) == AudienceKind.PROFESSION)
        & (col(Circle.audience_code) == principal.user.profession),
        (col(Circle.audience_kind) == AudienceKind.SPECIALTY)
        & col(Circle.audience_code).in_(sorted(principal.specialties)),
    )


def list_circles(
    session: Session, principal: Principal, *, joinable: bool, limit: int, cursor: str | None
) -> Page[CircleOut]:
    """The circles the caller is a member of or invited to; with `joinable`, the open circles of its
    audience it is not a member of."""
    standing = select(CircleMember.circle_id).where(
        col(CircleMember.user_id) == principal.id, col(CircleMember.status).in_(_STANDING)
    )
    where = (
        _audience_filter(principal) & col(Circle.id).not_in(standing)
        if joinable
        else col(Circle.id).in_(standing)
    )
    query = select(Circle).where(where)
    if cursor is not None:
        query = query.where(NEWEST_FIRST.after(cursor))
    rows = list(session.exec(query.order_by(*NEWEST_FIRST.order_by()).limit(limit + 1)).all())
    page = NEWEST_FIRST.page(rows, limit)
    memberships = {
        row.circle_id: row
        for row in session.exec(
            select(CircleMember).where(
                col(CircleMember.user_id) == principal.id,
                col(CircleMember.circle_id).in_([circle.id for circle in page.items]),
            )
        ).all()
    }
    return Page(items=views(session, page.items, memberships), next_cursor=page.next_cursor)

"""Circle membership: join, leave, invitations, removal, roles, the member list and the recipient
directory of a circle. Every change of who is in the circle (and every revoked device or suspended account
of a member) sets `rotation_required`: no post until a member posts the next epoch's key for the new set of
devices (app/services/circle_epochs.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session, col, select

from app.authz import circles as policies
from app.authz import queries
from app.authz.policies import enforce
from app.authz.principal import Principal
from app.errors import NotFound
from app.models.circles import CircleMember, MemberRole, MembershipStatus
from app.models.devices import Device
from app.models.users import User
from app.notifications import circle_events
from app.schemas.circles import MemberList, MemberOut, MembershipOut
from app.schemas.directory import ProvedDevices
from app.services import devices
from app.services.circle_rotation import require_rotation
from app.services.circles import Place, active_members, load, members_only, moderators_only, visible_to


class MemberNotFound(NotFound):
    code = "member_not_found"
    title = "No such member of this circle"


def _view(membership: CircleMember) -> MembershipOut:
    return MembershipOut(
        circle_id=membership.circle_id,
        user_id=membership.user_id,
        role=MemberRole(membership.role),
        status=MembershipStatus(membership.status),
        joined_epoch=membership.joined_epoch,
    )


def _activate(session: Session, place: Place, user_id: uuid.UUID, now: datetime) -> CircleMember:
    membership = place.membership or CircleMember(circle_id=place.circle.id, user_id=user_id, status="")
    membership.status = MembershipStatus.ACTIVE.value
    membership.role = MemberRole.MEMBER.value
    membership.joined_at, membership.ended_at = now, None
    # The member reads from the epoch that includes them on: the next one.
    membership.joined_epoch = place.circle.current_epoch + 1
    session.add(membership)
    session.flush()
    return membership


def join(session: Session, principal: Principal, circle_id: uuid.UUID, now: datetime) -> MembershipOut:
    place = load(session, principal, circle_id, visible_to(principal), for_update=True)
    enforce(policies.may_join(principal, place.circle, place.membership))
    membership = _activate(session, place, principal.id, now)
    require_rotation(session, [circle_id], now)
    circle_events.member_changed(session, circle_id, principal.id, joined=True, now=now)
    return _view(membership)


def _other_counts(session: Session, circle_id: uuid.UUID, user_id: uuid.UUID) -> tuple[int, int]:
    others = [member for member in active_members(session, circle_id) if member.user_id != user_id]
    return len(others), sum(1 for member in others if member.role == MemberRole.MODERATOR)


def _end(session: Session, membership: CircleMember, status: MembershipStatus, now: datetime) -> None:
    membership.status, membership.ended_at = status.value, now
    session.add(membership)
    require_rotation(session, [membership.circle_id], now)
    circle_events.member_changed(session, membership.circle_id, membership.user_id, joined=False, now=now)


def leave(session: Session, principal: Principal, circle_id: uuid.UUID, now: datetime) -> MembershipOut:
    place = load(session, principal, circle_id, for_update=True)
    enforce(policies.may_leave(place.membership, *_other_counts(session, circle_id, principal.id)))
    assert place.membership is not None
    _end(session, place.membership, MembershipStatus.LEFT, now)
    return _view(place.membership)


def invite(
    session: Session, principal: Principal, circle_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> MembershipOut:
    place = load(session, principal, circle_id, moderators_only, for_update=True)
    invitee = queries.load_members(session, [user_id]).get(user_id)
    existing = session.get(CircleMember, (circle_id, user_id))
    if invitee is None or not policies.may_use_circles(invitee):
        raise MemberNotFound("no verified, active professional has this id")
    enforce(policies.may_be_invited(invitee, existing))
    membership = existing or CircleMember(circle_id=place.circle.id, user_id=user_id, status="")
    membership.status, membership.role = MembershipStatus.INVITED.value, MemberRole.MEMBER.value
    membership.invited_by, membership.ended_at = principal.id, None
    session.add(membership)
    session.flush()
    return _view(membership)


def _target(session: Session, circle_id: uuid.UUID, user_id: uuid.UUID) -> CircleMember:
    membership = session.get(CircleMember, (circle_id, user_id))
    if not policies.is_member(membership) or membership is None:
        raise MemberNotFound()
    return membership


def remove(
    session: Session, principal: Principal, circle_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> MembershipOut:
    """A moderator removes a member (themselves: leaving, with its rule)."""
    load(session, principal, circle_id, moderators_only, for_update=True)
    if user_id == principal.id:
        return leave(session, principal, circle_id, now)
    membership = _target(session, circle_id, user_id)
    _end(session, membership, MembershipStatus.REMOVED, now)
    return _view(membership)


def set_role(
    session: Session, principal: Principal, circle_id: uuid.UUID, user_id: uuid.UUID, role: MemberRole
) -> MembershipOut:
    load(session, principal, circle_id, moderators_only, for_update=True)
    membership = _target(session, circle_id, user_id)
    if role is MemberRole.MEMBER and membership.role == MemberRole.MODERATOR:
        others = _other_counts(session, circle_id, user_id)
        enforce(policies.may_leave(membership, *others))
    membership.role = role.value
    session.add(membership)
    return _view(membership)


def members(session: Session, principal: Principal, circle_id: uuid.UUID) -> MemberList:
    """Who is in the circle, by name and profession (never a pseudonym)."""
    load(session, principal, circle_id, members_only)
    rows = active_members(session, circle_id)
    users = {
        user.id: user
        for user in session.exec(select(User).where(col(User.id).in_([row.user_id for row in rows]))).all()
    }
    return MemberList(
        members=[
            MemberOut(
                user_id=row.user_id,
                display_name=users[row.user_id].display_name,
                profession=users[row.user_id].profession,
                role=MemberRole(row.role),
                joined_at=row.joined_at,
            )
            for row in rows
        ]
    )


def recipient_devices(session: Session, circle_id: uuid.UUID) -> list[Device]:
    """The devices a rotation wraps for: every active device of every member whose account may act (a
    suspended member's devices are left out; the suspension itself requires a rotation)."""
    user_ids = [member.user_id for member in active_members(session, circle_id)]
    acting = queries.load_members(session, user_ids)
    return devices.active_devices(session, [user_id for user_id in user_ids if acting[user_id].user.can_act])


def recipients(session: Session, principal: Principal, circle_id: uuid.UUID) -> ProvedDevices:
    """The devices a rotation wraps for, with the proofs of their directory entries."""
    load(session, principal, circle_id, members_only)
    return devices.proved(session, recipient_devices(session, circle_id))

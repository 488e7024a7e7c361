"""Pure circle policies: who takes part in circles, who sees, joins, moderates and leaves a circle.

A circle the caller may not see (not a member, not invited, outside an open circle's audience) answers
exactly like a missing one. A `Party` is the caller or another user loaded with their roles
(app/authz/visibility.py)."""

from __future__ import annotations

from app.authz.policies import ALLOW, Decision, deny
from app.authz.visibility import Party
from app.errors import Refusal
from app.models.circles import AudienceKind, Circle, CircleAccess, CircleMember, MemberRole, MembershipStatus
from app.models.users import CLINICAL_ROLES, Profession


def may_use_circles(party: Party) -> Decision:
    """Every verified, active professional: a physician through a clinical role (an admin or officer
    account holds none), any other profession by its verified account."""
    if not party.user.can_act:
        return deny(Refusal.ACCOUNT_NOT_ACTIVE)
    if party.user.profession != Profession.PHYSICIAN or party.roles & CLINICAL_ROLES:
        return ALLOW
    return deny(Refusal.ROLE_REQUIRED)


def in_audience(party: Party, circle: Circle) -> bool:
    """Whether an open circle's audience includes the party (invitation circles have none)."""
    if circle.access != CircleAccess.OPEN:
        return False
    if circle.audience_kind == AudienceKind.PROFESSION:
        return party.user.profession == circle.audience_code
    if circle.audience_kind == AudienceKind.SPECIALTY:
        return circle.audience_code in party.specialties
    return True


def is_member(membership: CircleMember | None) -> bool:
    return membership is not None and membership.status == MembershipStatus.ACTIVE


def is_moderator(membership: CircleMember | None) -> bool:
    return is_member(membership) and membership is not None and membership.role == MemberRole.MODERATOR


def may_see(party: Party, circle: Circle, membership: CircleMember | None) -> Decision:
    """Members see a circle; so do those who may join it (invited, or in an open circle's audience)."""
    if is_member(membership) or may_join(party, circle, membership):
        return ALLOW
    return deny(Refusal.CIRCLE_NOT_VISIBLE)


def may_read(membership: CircleMember | None) -> Decision:
    """Members only read and write a circle's content and member list; anyone else is answered as if the
    circle did not exist (even one who may join it: it joins first)."""
    return ALLOW if is_member(membership) else deny(Refusal.CIRCLE_NOT_VISIBLE)


def may_moderate(membership: CircleMember | None) -> Decision:
    if not is_member(membership):
        return deny(Refusal.CIRCLE_NOT_VISIBLE)
    return ALLOW if is_moderator(membership) else deny(Refusal.MODERATOR_REQUIRED)


def may_join(party: Party, circle: Circle, membership: CircleMember | None) -> Decision:
    if is_member(membership):
        return deny(Refusal.ALREADY_MEMBER)
    invited = membership is not None and membership.status == MembershipStatus.INVITED
    if invited or (may_use_circles(party) and in_audience(party, circle)):
        return ALLOW
    return deny(Refusal.CIRCLE_NOT_VISIBLE)


def may_leave(membership: CircleMember | None, other_members: int, other_moderators: int) -> Decision:
    if not is_member(membership):
        return deny(Refusal.CIRCLE_NOT_VISIBLE)
    if is_moderator(membership) and other_members > 0 and other_moderators == 0:
        return deny(Refusal.LAST_MODERATOR)
    return ALLOW


def may_be_invited(party: Party, membership: CircleMember | None) -> Decision:
    """A verified, active professional who is not a member already."""
    if is_member(membership):
        return deny(Refusal.ALREADY_MEMBER)
    return may_use_circles(party)

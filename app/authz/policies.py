"""Pure authorization policies: (principal, action, resource) -> allowed or the reason why not.

No database and no HTTP here: dependencies and services call these and turn a refusal into an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.authz.principal import Principal
from app.errors import Forbidden, Refusal, refused
from app.models.users import MFA_ROLES, Role


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Refusal | None = None

    def __post_init__(self) -> None:
        if not self.allowed and self.reason is None:
            raise ValueError("a refusal names its reason")

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)


def deny(reason: Refusal) -> Decision:
    return Decision(False, reason)


def enforce(decision: Decision) -> None:
    """Raises the typed error of a refusal (the one mapping: app/errors.py REFUSALS)."""
    if not decision:
        raise refused(decision.reason) if decision.reason is not None else Forbidden()


def may_act(principal: Principal) -> Decision:
    """Only verified, active users act on cases or use any role's powers."""
    return ALLOW if principal.user.can_act else deny(Refusal.ACCOUNT_NOT_ACTIVE)


def may_use_role(principal: Principal, role: Role) -> Decision:
    if not (decision := may_act(principal)):
        return decision
    if role not in principal.roles:
        return deny(Refusal.ROLE_REQUIRED)
    if role in MFA_ROLES and not principal.used_totp:
        return deny(Refusal.MFA_REQUIRED)
    return ALLOW


def may_change_roles_of(principal: Principal, target_user_id) -> Decision:
    """Separation of duties: an admin never edits their own roles (no self-granted clinical access)."""
    return deny(Refusal.SELF_ROLE_CHANGE) if principal.id == target_user_id else ALLOW

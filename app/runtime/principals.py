"""Who is calling: the access token checked before the transaction, the principal loaded in it, and the
role requirements routes declare. Refusals come from the pure policies (app/authz)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from app.audit.records import AuditTrail
from app.authz import cases as case_policies
from app.authz import circles as circle_policies
from app.authz import policies
from app.authz.principal import Principal
from app.errors import AppError, InvalidToken, Unauthenticated, UnknownDevice
from app.models.users import Role
from app.runtime.context import before_transaction, trail_of
from app.runtime.state import runtime_of
from app.runtime.unit_of_work import DB, RequestDb
from app.services.auth import AccessClaims, session_user

bearer_scheme = HTTPBearer(
    auto_error=False, description="Access token from POST /v1/auth/token (ES256 JWT, short-lived)."
)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _load_principal(session: Session, trail: AuditTrail, claims: AccessClaims) -> Principal:
    found = session_user(session, claims.session_id, claims.user_id, trail.claimed_device)
    if found is None:
        raise InvalidToken("the session of this token has ended")
    trail.actor.user_id = found.user.id
    trail.actor.roles = tuple(sorted(found.roles))
    # A record names a device only when it is one of the caller's active devices: another user's, a revoked
    # or an unknown one is refused (and the refusal recorded without it), never attributed.
    if trail.claimed_device is not None and found.device_id is None:
        raise UnknownDevice()
    trail.actor.device_id = found.device_id
    return Principal(
        user=found.user,
        roles=found.roles,
        specialties=found.specialties,
        session_id=claims.session_id,
        amr=claims.amr,
    )


@before_transaction
async def token_claims(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> AccessClaims | AppError:
    """The access token's claims, checked before the transaction opens. A request without a valid token
    counts against its address's write limit here: its refusal is an audit record, a write, so a flood of
    them would otherwise cost one write each; past the limit they get a 429 that writes no record (on
    PostgreSQL the shared bucket's one-row UPSERT, app.platform.ratelimit, is all it costs). The
    refusal itself is returned, to be raised in the transaction (current_principal), where it is recorded."""
    runtime = runtime_of(request)
    try:
        if credentials is None:
            raise Unauthenticated()
        return runtime.authenticator.verify_access_token(credentials.credentials)
    except AppError as refusal:
        await runtime.rate_limits.writes.take(f"ip:{trail_of(request).actor.ip or 'unknown'}")
        return refusal


async def current_principal(
    request: Request,
    claims: Annotated[AccessClaims | AppError, Depends(token_claims)],
    db: Annotated[RequestDb, DB],
) -> Principal:
    if isinstance(claims, AppError):
        raise claims
    principal = await db.run_keeping_transaction(_load_principal, trail_of(request), claims)
    # Here rather than per route, so that no write route can be added without a limit.
    if request.method in WRITE_METHODS:
        await runtime_of(request).rate_limits.writes.take(f"user:{principal.id}")
    return principal


@before_transaction
async def address_write_limit(request: Request) -> None:
    """The write limit of public routes (register, login, refresh), which know no user yet: per address."""
    await runtime_of(request).rate_limits.writes.take(f"ip:{trail_of(request).actor.ip or 'unknown'}")


_Caller = Annotated[Principal, Depends(current_principal)]


async def active_principal(principal: _Caller) -> Principal:
    policies.enforce(policies.may_act(principal))
    return principal


async def clinician(principal: _Caller) -> Principal:
    policies.enforce(case_policies.may_act_as_clinician(principal))
    return principal


async def professional(principal: _Caller) -> Principal:
    policies.enforce(circle_policies.may_use_circles(principal))
    return principal


def role_required(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def dependency(principal: _Caller) -> Principal:
        policies.enforce(policies.may_use_role(principal, role))
        return principal

    dependency.__name__ = f"require_{role.value}"
    return dependency


require_physician = role_required(Role.PHYSICIAN)
require_specialist = role_required(Role.SPECIALIST)
require_compliance_officer = role_required(Role.COMPLIANCE_OFFICER)
require_admin = role_required(Role.ADMIN)


async def officer_within_export_quota(
    request: Request, officer: Annotated[Principal, Depends(require_compliance_officer)]
) -> Principal:
    await runtime_of(request).rate_limits.audit_exports.take(f"user:{officer.id}")
    return officer

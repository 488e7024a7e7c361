"""Dependencies, as Annotated aliases: the request's transaction, its audit trail, and who is calling.

The transaction of a request is opened and committed here and nowhere else. Its audit record is added
to it before commit, and the commit happens before the response leaves (dependency scope "function"),
so a read is on record before its data is sent. On an error the transaction rolls back and the denial
is recorded, with any durable write the error carries, in a short transaction of its own.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from app.audit import recorder
from app.audit.records import AuditTrail, Purpose, Resource
from app.authz import cases as case_policies
from app.authz import policies
from app.authz.principal import Principal
from app.blobstore import BlobStore
from app.config import Settings
from app.crypto.passwords import PasswordHasher
from app.db import new_session, transaction
from app.errors import (
    AccountNotActive,
    AppError,
    DurableWrite,
    Forbidden,
    InvalidToken,
    MfaRequired,
    RoleRequired,
    SelfChangeRefused,
    Unauthenticated,
)
from app.models.users import Role, User
from app.services import accounts
from app.services.auth import Authenticator, active_session

logger = logging.getLogger(__name__)


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator


def _hasher(request: Request) -> PasswordHasher:
    return request.app.state.authenticator.hasher


def _blobs(request: Request) -> BlobStore:
    return request.app.state.blobs


SettingsDep = Annotated[Settings, Depends(_settings)]
AuthenticatorDep = Annotated[Authenticator, Depends(_authenticator)]
HasherDep = Annotated[PasswordHasher, Depends(_hasher)]
BlobStoreDep = Annotated[BlobStore, Depends(_blobs)]


def _trail(request: Request) -> AuditTrail:
    return request.state.audit_trail


TrailDep = Annotated[AuditTrail, Depends(_trail)]


def _record_failure(engine: Engine, trail: AuditTrail, status: int, writes: list[DurableWrite]) -> None:
    if trail.action is None and not writes:
        return
    try:
        with transaction(engine) as session:
            for write in writes:
                write(session)
            if trail.action is not None:
                recorder.add(session, trail, status)
    except Exception:
        # The caller still gets its error response; losing this record is logged loudly.
        logger.exception("could not record a failed request", extra={"request_id": trail.request_id})


def _unit_of_work(request: Request, trail: TrailDep) -> Iterator[Session]:
    engine: Engine = request.app.state.engine
    session = new_session(engine)
    status: int | None = None
    writes: list[DurableWrite] = []
    try:
        yield session
        if trail.action is not None:
            route = request.scope.get("route")
            recorder.add(session, trail, getattr(route, "status_code", None) or 200)
        session.commit()
    except AppError as error:
        status, writes = error.status, error.durable_writes
        raise
    except RequestValidationError:
        status, writes = 422, []
        raise
    except Exception:
        status, writes = 500, []
        raise
    finally:
        if status is not None:
            session.rollback()
        session.close()
        if status is not None:
            _record_failure(engine, trail, status, writes)


SessionDep = Annotated[Session, Depends(_unit_of_work, scope="function")]

bearer_scheme = HTTPBearer(
    auto_error=False, description="Access token from POST /v1/auth/token (ES256 JWT, short-lived)."
)


def _principal(
    session: SessionDep,
    trail: TrailDep,
    authenticator: AuthenticatorDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    if credentials is None:
        raise Unauthenticated()
    claims = authenticator.verify_access_token(credentials.credentials)
    user = session.get(User, claims.user_id)
    if user is None or active_session(session, claims.session_id, claims.user_id) is None:
        raise InvalidToken("the session of this token has ended")
    roles, specialties = accounts.roles_and_specialties(session, [user.id])
    trail.actor.user_id = user.id
    trail.actor.roles = tuple(sorted(roles[user.id]))
    return Principal(
        user=user,
        roles=frozenset(roles[user.id]),
        specialties=frozenset(specialties[user.id]),
        session_id=claims.session_id,
        amr=claims.amr,
    )


CurrentPrincipal = Annotated[Principal, Depends(_principal)]

_REFUSALS: dict[str, type[Forbidden]] = {
    "account_not_active": AccountNotActive,
    "role_required": RoleRequired,
    "mfa_required": MfaRequired,
    "self_role_change": SelfChangeRefused,
}


def refuse(decision: policies.Decision) -> None:
    if not decision:
        raise _REFUSALS.get(decision.reason or "", Forbidden)()


def _active(principal: CurrentPrincipal) -> Principal:
    refuse(policies.may_act(principal))
    return principal


ActivePrincipal = Annotated[Principal, Depends(_active)]


def _clinician(principal: CurrentPrincipal) -> Principal:
    refuse(case_policies.may_act_as_clinician(principal))
    return principal


# A verified, active physician or specialist (acting as such; other roles alone do not count).
Clinician = Annotated[Principal, Depends(_clinician)]


def _role(role: Role) -> Callable[[Principal], Principal]:
    def dependency(principal: CurrentPrincipal) -> Principal:
        refuse(policies.may_use_role(principal, role))
        return principal

    dependency.__name__ = f"require_{role.value}"
    return dependency


Physician = Annotated[Principal, Depends(_role(Role.PHYSICIAN))]
Specialist = Annotated[Principal, Depends(_role(Role.SPECIALIST))]
ComplianceOfficer = Annotated[Principal, Depends(_role(Role.COMPLIANCE_OFFICER))]
Admin = Annotated[Principal, Depends(_role(Role.ADMIN))]


def _path_uuid(request: Request, name: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.path_params[name]) if name else None
    except (KeyError, ValueError):  # a malformed id is refused by validation; the record keeps none
        return None


def audited(
    action: str,
    *,
    resource: str | None = None,
    id_param: str | None = None,
    case_param: str | None = None,
    purpose: Purpose = Purpose.TREATMENT,
):
    """Declares the audit action of a route; the resource id (and the case it belongs to, so that the
    record can be found by case) are taken from the path when named."""

    def declare(request: Request, trail: TrailDep) -> None:
        trail.action, trail.purpose = action, purpose
        if resource is not None:
            trail.resource = Resource(
                type=resource,
                id=request.path_params.get(id_param) if id_param else None,
                case_id=_path_uuid(request, case_param),
            )

    declare.audit_action = action  # type: ignore[attr-defined]
    return Depends(declare)


def unaudited(reason: str):
    """Declares, visibly, that a route records nothing (health probes, public keys)."""

    def declare() -> None:
        return None

    declare.audit_action = None  # type: ignore[attr-defined]
    declare.unaudited_reason = reason  # type: ignore[attr-defined]
    return Depends(declare)

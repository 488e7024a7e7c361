"""Dependencies, as Annotated aliases: the request's transaction, its audit trail, and who is calling.

The transaction of a request is opened and committed here and nowhere else. Its audit record is added
to it before commit, and the commit happens before the response leaves (dependency scope "function"),
so a read is on record before its data is sent. On an error the transaction rolls back and the denial
is recorded, with any durable write the error carries, in a short transaction of its own.

A GET only reads (on SQLite in a read-only transaction that takes no write lock and in which any write
fails: app.db.create_read_engine), and its record is then committed in a group with those of other requests
(app.db.WriteGate), still before the response leaves: a read commits nothing of its own. Every other request
is one transaction with its record. On SQLite, which has one writer, such a request waits for its turn on
the event loop before its transaction starts.

Dependencies that only read the app's state are `async def`: FastAPI runs a plain `def` dependency on a
worker thread, and each such hop costs a thread handoff per request.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.audit import recorder
from app.audit.records import AuditTrail, Purpose, Resource, recorded_code, recorded_id
from app.authz import cases as case_policies
from app.authz import policies
from app.authz.principal import Principal
from app.blobstore import BlobStore
from app.config import Settings
from app.crypto.passwords import PasswordHasher
from app.db import WriteGate, new_session, transaction
from app.errors import (
    AccountNotActive,
    AppError,
    DurableWrite,
    Forbidden,
    InvalidInput,
    InvalidToken,
    MfaRequired,
    RoleRequired,
    SelfChangeRefused,
    Unauthenticated,
    UnknownDevice,
)
from app.models.users import Role
from app.ratelimit import RateLimits
from app.schemas.common import storable_text
from app.services.auth import AccessClaims, Authenticator, session_user

logger = logging.getLogger(__name__)


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator


async def _hasher(request: Request) -> PasswordHasher:
    return request.app.state.authenticator.hasher


async def _blobs(request: Request) -> BlobStore:
    return request.app.state.blobs


async def _rate_limits(request: Request) -> RateLimits:
    return request.app.state.rate_limits


SettingsDep = Annotated[Settings, Depends(_settings)]
AuthenticatorDep = Annotated[Authenticator, Depends(_authenticator)]
HasherDep = Annotated[PasswordHasher, Depends(_hasher)]
BlobStoreDep = Annotated[BlobStore, Depends(_blobs)]
RateLimitsDep = Annotated[RateLimits, Depends(_rate_limits)]


async def _trail(request: Request) -> AuditTrail:
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


async def storable_url(request: Request) -> None:
    """Applied to every route: path and query values are text the database must be able to store."""
    values = [request.url.path, *(part for item in request.query_params.multi_items() for part in item)]
    try:
        for value in values:
            storable_text(value)
    except ValueError as error:
        raise InvalidInput(f"the URL is not valid: {error}") from None


READ_METHODS = frozenset({"GET", "HEAD"})
READING = "reading"
INLINE_READS = "inline_reads"


def _commit(session: Session, trail: AuditTrail, status: int) -> None:
    try:
        if trail.action is not None:
            recorder.add(session, trail, status)
        session.commit()
    finally:
        session.close()


def _abandon(session: Session, engine: Engine, trail: AuditTrail, status: int, writes: list[DurableWrite]):
    session.rollback()
    session.close()
    _record_failure(engine, trail, status, writes)


async def _unit_of_work(request: Request, trail: TrailDep) -> AsyncIterator[Session]:
    state = request.app.state
    engine: Engine = state.engine
    gate: WriteGate = state.write_gate
    reading = request.method in READ_METHODS
    exclusive = gate.exclusive and not reading
    if exclusive:
        await gate.acquire()
    session = new_session(state.read_engine if reading else engine)
    # A SQLite read is in-process and waits for no lock (WAL): on a worker thread it would cost more in
    # thread handoffs than its queries take, so the caller's lookups run right here (_principal).
    session.info[READING] = reading
    session.info[INLINE_READS] = reading and gate.exclusive
    status: int | None = None
    writes: list[DurableWrite] = []
    try:
        yield session
        route_status = getattr(request.scope.get("route"), "status_code", None) or 200
        if not reading:
            await run_in_threadpool(_commit, session, trail, route_status)
        else:
            await _end_read(session)
            if trail.action is not None:
                await gate.insert(recorder.values(trail, route_status))
    except AppError as error:
        status, writes = error.status, error.durable_writes
        raise
    except RequestValidationError:
        status, writes = 422, []
        raise
    except Exception:
        status, writes = 500, []
        raise
    except BaseException:
        # Cancelled (shutdown): nothing to answer or record, but the transaction ends here rather than when
        # the session is collected, which on SQLite would hold the write lock until then.
        session.close()
        raise
    finally:
        try:
            if status is not None:
                if not reading:
                    await run_in_threadpool(_abandon, session, engine, trail, status, writes)
                else:
                    await _end_read(session)
                    await _record_read_failure(gate, engine, trail, status, writes)
        finally:
            if exclusive:
                gate.release()


async def _end_read(session: Session) -> None:
    if session.info[INLINE_READS] or not session.in_transaction():
        session.close()  # a SQLite read transaction, or none left: ending it waits for nothing
    else:
        await run_in_threadpool(session.close)  # a round trip to the server


async def _record_read_failure(
    gate: WriteGate, engine: Engine, trail: AuditTrail, status: int, writes: list[DurableWrite]
) -> None:
    if gate.exclusive:  # SQLite's one writer: see WriteGate
        async with gate:
            await run_in_threadpool(_record_failure, engine, trail, status, writes)
    else:
        await run_in_threadpool(_record_failure, engine, trail, status, writes)


SessionDep = Annotated[Session, Depends(_unit_of_work, scope="function")]

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


async def _token_claims(
    trail: TrailDep,
    authenticator: AuthenticatorDep,
    limits: RateLimitsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> AccessClaims | AppError:
    """The access token's claims, checked before the transaction opens. A request without a valid token
    counts against its address's write limit here: its refusal is an audit record, a write, so a flood of
    them would otherwise cost one write each; past the limit they get a 429 that touches no database. The
    refusal itself is returned, to be raised in the transaction (_principal), where it is recorded."""
    try:
        if credentials is None:
            raise Unauthenticated()
        return authenticator.verify_access_token(credentials.credentials)
    except AppError as refusal:
        limits.writes.check(f"ip:{trail.actor.ip or 'unknown'}")
        return refusal


TokenClaims = Annotated[AccessClaims | AppError, Depends(_token_claims)]


async def _principal(
    request: Request,
    claims: TokenClaims,
    session: SessionDep,
    trail: TrailDep,
    limits: RateLimitsDep,
) -> Principal:
    if isinstance(claims, AppError):
        raise claims
    if session.info.get(INLINE_READS):
        principal = _load_principal(session, trail, claims)
    else:
        principal = await run_in_threadpool(_load_principal, session, trail, claims)
    # Here rather than per route, so that no write route can be added without a limit.
    if request.method in WRITE_METHODS:
        limits.writes.check(f"user:{principal.id}")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]

T = TypeVar("T")


async def run_db(session: Session, work: Callable[..., T], *args: object) -> T:
    """`work(*args)`, the database part of an `async def` route, where it costs least: on a SQLite read
    session right here (see _unit_of_work), anywhere else on a worker thread. The hottest reads are async
    routes for this: FastAPI runs a `def` route, then the validation of its response, each on a worker
    thread, and on a busy machine each handoff costs more than the queries."""
    if session.info.get(INLINE_READS):
        return work(*args)
    if session.info.get(READING):
        return await run_in_threadpool(_then_end, session, work, *args)
    return await run_in_threadpool(work, *args)


def _then_end(session: Session, work: Callable[..., T], *args: object) -> T:
    # A read's transaction ends on the thread that ran its queries (PostgreSQL: a round trip) rather than
    # on one more worker thread later (_end_read); its objects stay loaded.
    try:
        return work(*args)
    finally:
        session.close()


async def _address_write_limit(trail: TrailDep, limits: RateLimitsDep) -> None:
    limits.writes.check(f"ip:{trail.actor.ip or 'unknown'}")


# The write limit of public routes (register, login, refresh), which know no user yet: per client address.
AddressWriteLimit = Depends(_address_write_limit)

_REFUSALS: dict[str, type[Forbidden]] = {
    "account_not_active": AccountNotActive,
    "role_required": RoleRequired,
    "mfa_required": MfaRequired,
    "self_role_change": SelfChangeRefused,
}


def refuse(decision: policies.Decision) -> None:
    if not decision:
        raise _REFUSALS.get(decision.reason or "", Forbidden)()


async def _active(principal: CurrentPrincipal) -> Principal:
    refuse(policies.may_act(principal))
    return principal


ActivePrincipal = Annotated[Principal, Depends(_active)]


async def _clinician(principal: CurrentPrincipal) -> Principal:
    refuse(case_policies.may_act_as_clinician(principal))
    return principal


# A verified, active physician or specialist (acting as such; other roles alone do not count).
Clinician = Annotated[Principal, Depends(_clinician)]


def _role(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def dependency(principal: CurrentPrincipal) -> Principal:
        refuse(policies.may_use_role(principal, role))
        return principal

    dependency.__name__ = f"require_{role.value}"
    return dependency


Physician = Annotated[Principal, Depends(_role(Role.PHYSICIAN))]
Specialist = Annotated[Principal, Depends(_role(Role.SPECIALIST))]
ComplianceOfficer = Annotated[Principal, Depends(_role(Role.COMPLIANCE_OFFICER))]
Admin = Annotated[Principal, Depends(_role(Role.ADMIN))]


async def _export_quota(officer: ComplianceOfficer, limits: RateLimitsDep) -> Principal:
    limits.audit_exports.check(f"user:{officer.id}")
    return officer


# A compliance officer within their export quota: each bundle reads and proves a range of the whole log.
ExportingOfficer = Annotated[Principal, Depends(_export_quota)]


def _path_uuid(request: Request, name: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.path_params[name]) if name else None
    except (KeyError, ValueError):  # a malformed id is refused by validation; the record keeps none
        return None


# How a path parameter may enter a record (app.audit.records); any other is an id, recorded as a UUID.
_RECORDED_SHAPES = {"code": recorded_code}


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

    async def declare(request: Request, trail: TrailDep) -> None:
        trail.action, trail.purpose = action, purpose
        if resource is not None:
            sent = request.path_params.get(id_param) if id_param else None
            trail.resource = Resource(
                type=resource,
                id=None if sent is None else _RECORDED_SHAPES.get(id_param, recorded_id)(sent),
                case_id=_path_uuid(request, case_param),
            )

    declare.audit_action = action  # type: ignore[attr-defined]
    return Depends(declare)


def unaudited(reason: str):
    """Declares, visibly, that a route records nothing (health probes, public keys)."""

    async def declare() -> None:
        return None

    declare.audit_action = None  # type: ignore[attr-defined]
    declare.unaudited_reason = reason  # type: ignore[attr-defined]
    return Depends(declare)

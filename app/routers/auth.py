"""Registration, login, token refresh, logout and TOTP enrolment."""

from __future__ import annotations

import os
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Response, status
from sqlmodel import Session

from app.audit.records import Resource
from app.deps import AddressWriteLimit, CurrentPrincipal, Db, RuntimeDep, TrailDep
from app.models.base import utcnow
from app.models.users import User
from app.runtime.context import audited, before_transaction, unaudited
from app.runtime.state import Runtime
from app.schemas.accounts import RegisterRequest, UserOut
from app.schemas.auth import LoginRequest, RefreshRequest, TokenResponse, TotpConfirmRequest, TotpEnrolment
from app.schemas.common import problems
from app.services import accounts
from app.services.auth import Authenticator, PasswordCheck, revoke_session

router = APIRouter(prefix="/v1/auth", tags=["auth"])
jwks_router = APIRouter(tags=["auth"])

# Argon2id hashes at once: one core stays free for the event loop and everything else, and memory stays
# bounded (19 MiB a hash). More logins queue on the event loop, not on worker threads.
HASHING = anyio.CapacityLimiter(max(1, (os.cpu_count() or 2) - 1))


def _check_password(runtime: Runtime, ip: str, body: LoginRequest) -> PasswordCheck:
    with runtime.read_session() as session:
        return runtime.authenticator.check_password(session, ip, body.email, body.password, utcnow())


@before_transaction
async def _checked_password(body: LoginRequest, runtime: RuntimeDep, trail: TrailDep) -> PasswordCheck:
    """The password hashed on a worker thread before the request's transaction opens, so that the hash
    never holds SQLite's write lock, within HASHING."""
    ip = trail.actor.ip or "unknown"
    return await anyio.to_thread.run_sync(_check_password, runtime, ip, body, limiter=HASHING)


CheckedPassword = Annotated[PasswordCheck, Depends(_checked_password)]


@before_transaction
async def _hashed_password(body: RegisterRequest, runtime: RuntimeDep) -> str:
    """The new password's hash, computed like a login's check before the transaction opens."""
    return await anyio.to_thread.run_sync(runtime.authenticator.hasher.hash, body.password, limiter=HASHING)


HashedPassword = Annotated[str, Depends(_hashed_password)]


@router.post(
    "/register",
    operation_id="register",
    summary="Register as a clinician (pending until an admin verifies the professional id)",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=problems(400, 413, 422, 429),
    dependencies=[audited("auth.register", resource="user"), AddressWriteLimit],
)
async def register(password_hash: HashedPassword, body: RegisterRequest, db: Db, trail: TrailDep) -> UserOut:
    registration = await db.run(accounts.register, body, password_hash)
    trail.resource = Resource(type="user", id=str(registration.account_id))
    return registration.shown


@router.post(
    "/token",
    operation_id="login",
    summary="Log in with password (and TOTP once enrolled); returns an access and a refresh token",
    response_model=TokenResponse,
    responses=problems(400, 401, 403, 413, 422, 429),
    dependencies=[audited("auth.login"), AddressWriteLimit],
)
async def login(
    checked: CheckedPassword,
    body: LoginRequest,
    db: Db,
    runtime: RuntimeDep,
    trail: TrailDep,
) -> Any:
    return await db.run(
        runtime.authenticator.login,
        trail,
        email=body.email,
        password=body.password,
        totp_code=body.totp_code,
        now=utcnow(),
        checked=checked,
    )


@router.post(
    "/refresh",
    operation_id="refreshToken",
    summary="Exchange a refresh token for new tokens (single use: a retry within seconds gets the same "
    "successor, any later reuse revokes the session)",
    response_model=TokenResponse,
    responses=problems(400, 401, 403, 413, 422, 429),
    dependencies=[audited("auth.refresh"), AddressWriteLimit],
)
async def refresh(body: RefreshRequest, db: Db, runtime: RuntimeDep, trail: TrailDep) -> Any:
    return await db.run(runtime.authenticator.refresh, trail, body.refresh_token, utcnow())


@router.post(
    "/logout",
    operation_id="logout",
    summary="End this session: its refresh tokens and access tokens stop working at once",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 429),
    dependencies=[audited("auth.logout")],
)
async def logout(principal: CurrentPrincipal, db: Db) -> Response:
    await db.run(revoke_session(principal.session_id, utcnow(), "logout"))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/mfa/totp",
    operation_id="startTotpEnrolment",
    summary="Start TOTP enrolment: returns the secret to load into an authenticator app",
    response_model=TotpEnrolment,
    responses=problems(401, 409, 429),
    dependencies=[audited("auth.mfa.enrol")],
)
async def start_totp(principal: CurrentPrincipal, db: Db, runtime: RuntimeDep) -> Any:
    return await db.run(_start_totp, runtime.authenticator, principal.user)


@router.post(
    "/mfa/totp/confirm",
    operation_id="confirmTotpEnrolment",
    summary="Confirm TOTP enrolment with a current code; later logins then require a code",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(400, 401, 409, 413, 422, 429),
    dependencies=[audited("auth.mfa.confirm")],
)
async def confirm_totp(
    body: TotpConfirmRequest, principal: CurrentPrincipal, db: Db, runtime: RuntimeDep
) -> Response:
    await db.run(_confirm_totp, runtime.authenticator, principal.user, body.code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@jwks_router.get(
    "/.well-known/jwks.json",
    operation_id="getJwks",
    summary="Public keys that verify access tokens (JWKS)",
    responses=problems(422),
    dependencies=[unaudited("public keys")],
)
async def jwks(runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.authenticator.tokens.jwks


# The caller's account row is changed in the request's transaction (flushed at its commit).
def _start_totp(_: Session, authenticator: Authenticator, user: User) -> TotpEnrolment:
    return authenticator.start_totp(user)


def _confirm_totp(_: Session, authenticator: Authenticator, user: User, code: str) -> None:
    authenticator.confirm_totp(user, code, utcnow())

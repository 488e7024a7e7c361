"""Registration, login, token refresh, logout and TOTP enrolment."""

from __future__ import annotations

import os
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy import Engine

from app.audit.records import Resource
from app.db import new_session
from app.deps import (
    AddressWriteLimit,
    AuthenticatorDep,
    CurrentPrincipal,
    HasherDep,
    SessionDep,
    TrailDep,
    audited,
    unaudited,
)
from app.models.base import utcnow
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


def _check_password(
    read_engine: Engine, authenticator: Authenticator, ip: str, body: LoginRequest
) -> PasswordCheck:
    with new_session(read_engine) as session:
        return authenticator.check_password(session, ip, body.email, body.password, utcnow())


async def _checked_password(
    request: Request, body: LoginRequest, authenticator: AuthenticatorDep, trail: TrailDep
) -> PasswordCheck:
    """The password hashed on a worker thread before the request's transaction opens (a parameter ahead of
    the session), so that the hash never holds SQLite's write lock (app.deps), within HASHING."""
    ip = trail.actor.ip or "unknown"
    return await anyio.to_thread.run_sync(
        _check_password, request.app.state.read_engine, authenticator, ip, body, limiter=HASHING
    )


CheckedPassword = Annotated[PasswordCheck, Depends(_checked_password)]


async def _hashed_password(body: RegisterRequest, hasher: HasherDep) -> str:
    """The new password's hash, computed like a login's check before the transaction opens."""
    return await anyio.to_thread.run_sync(hasher.hash, body.password, limiter=HASHING)


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
def register(
    password_hash: HashedPassword, body: RegisterRequest, session: SessionDep, trail: TrailDep
) -> UserOut:
    registration = accounts.register(session, body, password_hash)
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
def login(
    checked: CheckedPassword,
    body: LoginRequest,
    session: SessionDep,
    authenticator: AuthenticatorDep,
    trail: TrailDep,
) -> Any:
    return authenticator.login(
        session,
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
def refresh(
    body: RefreshRequest, session: SessionDep, authenticator: AuthenticatorDep, trail: TrailDep
) -> Any:
    return authenticator.refresh(session, trail, body.refresh_token, utcnow())


@router.post(
    "/logout",
    operation_id="logout",
    summary="End this session: its refresh tokens and access tokens stop working at once",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 429),
    dependencies=[audited("auth.logout")],
)
def logout(principal: CurrentPrincipal, session: SessionDep) -> Response:
    revoke_session(principal.session_id, utcnow(), "logout")(session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/mfa/totp",
    operation_id="startTotpEnrolment",
    summary="Start TOTP enrolment: returns the secret to load into an authenticator app",
    response_model=TotpEnrolment,
    responses=problems(401, 409, 429),
    dependencies=[audited("auth.mfa.enrol")],
)
def start_totp(principal: CurrentPrincipal, authenticator: AuthenticatorDep) -> Any:
    return authenticator.start_totp(principal.user)


@router.post(
    "/mfa/totp/confirm",
    operation_id="confirmTotpEnrolment",
    summary="Confirm TOTP enrolment with a current code; later logins then require a code",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(400, 401, 409, 413, 422, 429),
    dependencies=[audited("auth.mfa.confirm")],
)
def confirm_totp(
    body: TotpConfirmRequest, principal: CurrentPrincipal, authenticator: AuthenticatorDep
) -> Response:
    authenticator.confirm_totp(principal.user, body.code, utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@jwks_router.get(
    "/.well-known/jwks.json",
    operation_id="getJwks",
    summary="Public keys that verify access tokens (JWKS)",
    dependencies=[unaudited("public keys")],
)
def jwks(request: Request) -> dict[str, Any]:
    return request.app.state.authenticator.tokens.jwks

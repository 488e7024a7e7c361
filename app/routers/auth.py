"""Registration, login, token refresh, logout and TOTP enrolment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from app.audit.records import Resource
from app.deps import (
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
from app.services.auth import revoke_session

router = APIRouter(prefix="/v1/auth", tags=["auth"])
jwks_router = APIRouter(tags=["auth"])


@router.post(
    "/register",
    operation_id="register",
    summary="Register as a clinician (pending until an admin verifies the professional id)",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=problems(409, 422, 429),
    dependencies=[audited("auth.register", resource="user")],
)
def register(body: RegisterRequest, session: SessionDep, hasher: HasherDep, trail: TrailDep) -> UserOut:
    user = accounts.register(session, body, hasher)
    trail.resource = Resource(type="user", id=str(user.id))
    return accounts.view(session, user)


@router.post(
    "/token",
    operation_id="login",
    summary="Log in with password (and TOTP once enrolled); returns an access and a refresh token",
    response_model=TokenResponse,
    responses=problems(401, 403, 422, 429),
    dependencies=[audited("auth.login")],
)
def login(body: LoginRequest, session: SessionDep, authenticator: AuthenticatorDep, trail: TrailDep) -> Any:
    return authenticator.login(
        session, trail, email=body.email, password=body.password, totp_code=body.totp_code, now=utcnow()
    )


@router.post(
    "/refresh",
    operation_id="refreshToken",
    summary="Exchange a refresh token for new tokens (the old one is spent; reuse revokes the session)",
    response_model=TokenResponse,
    responses=problems(401, 403, 422),
    dependencies=[audited("auth.refresh")],
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
    responses=problems(401),
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
    responses=problems(401, 409),
    dependencies=[audited("auth.mfa.enrol")],
)
def start_totp(principal: CurrentPrincipal, authenticator: AuthenticatorDep) -> Any:
    return authenticator.start_totp(principal.user)


@router.post(
    "/mfa/totp/confirm",
    operation_id="confirmTotpEnrolment",
    summary="Confirm TOTP enrolment with a current code; later logins then require a code",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 409, 422),
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

"""Login, refresh, logout and TOTP: the rules; tokens and hashes come from app.crypto."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, delete, update
from sqlmodel import Session, col, select

from app.audit.records import AuditTrail
from app.authz.queries import memberships
from app.config import Settings
from app.crypto import totp
from app.crypto.passwords import PasswordHasher
from app.crypto.sealing import SecretSealer
from app.crypto.tokens import TokenError, TokenExpired, TokenKeySet
from app.errors import (
    AccountLocked,
    AccountNotActive,
    Conflict,
    InvalidCredentials,
    InvalidInput,
    InvalidRefreshToken,
    InvalidToken,
    InvalidTotp,
    RefreshTokenReused,
    TooManyRequests,
    TotpRequired,
)
from app.models.auth import AuthSession, LoginThrottle, RefreshToken
from app.models.base import utcnow
from app.models.devices import Device
from app.models.users import Role, User, UserStatus
from app.schemas.auth import TokenResponse, TotpEnrolment
from app.services.accounts import find_by_email, normalize_email

TOTP_ISSUER = "Confrere"


class TotpAlreadyEnabled(Conflict):
    code = "totp_already_enabled"
    title = "TOTP is already enabled for this account"


class TotpNotStarted(Conflict):
    code = "totp_not_started"
    title = "Start TOTP enrolment first"


class TotpCodeRejected(InvalidInput):
    # Not `invalid_totp`: that code is the login's 401, and a code names one status.
    code = "totp_code_mismatch"
    title = "The TOTP code does not match"


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def totp_context(user_id: uuid.UUID) -> bytes:
    return b"totp:" + user_id.bytes


def _lockout_key(email: str, ip: str) -> str:
    """The lockout counts failures per (e-mail, address), whether or not the e-mail has an account: its
    answers tell nothing about which e-mails exist, and a stranger can lock an account only for their own
    address, never its owner out (docs/reliability.md)."""
    digest = hashlib.sha256(f"{normalize_email(email)}\n{ip}".encode()).hexdigest()
    return f"login:{digest}"


@dataclass(frozen=True)
class PasswordCheck:
    """A login's password checked ahead of its write transaction (Authenticator.check_password): Argon2id
    takes tens of milliseconds, and on SQLite a write transaction holds the database's only write lock.
    The outcome counts only for the stored hash it was checked against; any other hash is checked again."""

    stored_hash: str | None = None
    matched: bool = False
    burned: bool = False  # no such account: the decoy hash was spent already

    def verify(self, hasher: PasswordHasher, password: str, stored_hash: str) -> bool:
        if self.stored_hash is not None and stored_hash == self.stored_hash:
            return self.matched
        return hasher.verify(password, stored_hash)


NOT_CHECKED = PasswordCheck()


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    amr: frozenset[str]


class Authenticator:
    def __init__(self, settings: Settings, tokens: TokenKeySet, sealer: SecretSealer, hasher: PasswordHasher):
        self.settings = settings
        self.tokens = tokens
        self.sealer = sealer
        self.hasher = hasher

    # -- login ---------------------------------------------------------------------------------

    def check_password(
        self, session: Session, ip: str, email: str, password: str, now: datetime
    ) -> PasswordCheck:
        """The Argon2id work of a login, done before its write transaction (in a read-only one): nothing is
        decided here, `login` decides. Throttled addresses and locked accounts cost no hash, as in `login`."""
        try:
            self._check_address_throttle(session, ip, now)
            self._check_lockout(session, _lockout_key(email, ip), now)
        except TooManyRequests:
            return NOT_CHECKED
        user = find_by_email(session, email)
        if user is None:
            self.hasher.burn(password)
            return PasswordCheck(burned=True)
        return PasswordCheck(user.password_hash, self.hasher.verify(password, user.password_hash))

    def login(
        self,
        session: Session,
        trail: AuditTrail,
        *,
        email: str,
        password: str,
        totp_code: str | None,
        now: datetime,
        checked: PasswordCheck = NOT_CHECKED,
    ) -> TokenResponse:
        ip = trail.actor.ip or "unknown"
        self._check_address_throttle(session, ip, now)
        lockout = _lockout_key(email, ip)
        user = find_by_email(session, email)
        if user is not None:
            trail.actor.user_id = user.id
        try:
            self._check_lockout(session, lockout, now)
        except AccountLocked as locked:
            raise locked.after_rollback(self._note_failure(None, ip, now)) from None
        if user is None:
            if not checked.burned:
                self.hasher.burn(password)
            raise InvalidCredentials().after_rollback(self._note_failure(lockout, ip, now))
        if not checked.verify(self.hasher, password, user.password_hash):
            raise InvalidCredentials().after_rollback(self._note_failure(lockout, ip, now))
        if user.status == UserStatus.SUSPENDED:
            raise AccountNotActive("the account is suspended")
        amr = {"pwd"}
        if user.totp_enabled:
            if totp_code is None:
                raise TotpRequired()
            step = self._totp_step(user, totp_code, now)
            if step is None:
                raise InvalidTotp().after_rollback(self._note_failure(lockout, ip, now))
            user.totp_last_step = step
            amr.add("otp")
        session.exec(delete(LoginThrottle).where(col(LoginThrottle.key) == lockout))
        auth_session = AuthSession(user_id=user.id, amr=" ".join(sorted(amr)), created_at=now)
        session.add(auth_session)
        session.flush()
        return self._issue(session, user, auth_session, now)

    def _check_address_throttle(self, session: Session, ip: str, now: datetime) -> None:
        throttle = session.get(LoginThrottle, f"ip:{ip}")
        if throttle is None:
            return
        window_end = throttle.window_started_at + timedelta(seconds=self.settings.login_ip_window_seconds)
        if window_end > now and throttle.failures >= self.settings.login_ip_max_failures:
            raise TooManyRequests(
                "too many failed logins from this address",
                retry_after=int((window_end - now).total_seconds()) + 1,
            )

    def _check_lockout(self, session: Session, key: str, now: datetime) -> None:
        lockout = session.get(LoginThrottle, key)
        if lockout is None or lockout.failures < self.settings.login_max_failures:
            return
        locked_until = lockout.window_started_at + timedelta(seconds=self.settings.login_lockout_seconds)
        if locked_until > now:
            raise AccountLocked(retry_after=int((locked_until - now).total_seconds()) + 1)

    def _note_failure(self, lockout_key: str | None, ip: str, now: datetime):
        settings = self.settings

        def count(session: Session, key: str, window: timedelta) -> LoginThrottle:
            throttle = session.get(LoginThrottle, key)
            if throttle is None:
                throttle = LoginThrottle(key=key, failures=1, window_started_at=now)
                session.add(throttle)
            elif throttle.window_started_at + window <= now:
                throttle.failures, throttle.window_started_at = 1, now
            else:
                throttle.failures += 1
            return throttle

        def write(session: Session) -> None:
            count(session, f"ip:{ip}", timedelta(seconds=settings.login_ip_window_seconds))
            if lockout_key is not None:
                lockout = count(session, lockout_key, timedelta(seconds=settings.login_lockout_seconds))
                if lockout.failures == settings.login_max_failures:
                    lockout.window_started_at = now  # the lock lasts its full time from the last failure

        return write

    # -- tokens --------------------------------------------------------------------------------

    def _issue(
        self,
        session: Session,
        user: User,
        auth_session: AuthSession,
        now: datetime,
        refresh: str | None = None,
    ) -> TokenResponse:
        """A new access token and refresh token `refresh` (random at login, derived when rotating)."""
        refresh = refresh or secrets.token_urlsafe(32)
        refresh_ttl = self.settings.refresh_token_ttl_seconds
        expires_at = now + timedelta(seconds=refresh_ttl)
        session.add(
            RefreshToken(
                token_hash=_token_hash(refresh),
                session_id=auth_session.id,
                created_at=now,
                expires_at=expires_at,
            )
        )
        return self._tokens(user, auth_session, refresh, expires_at, now)

    def _tokens(
        self, user: User, auth_session: AuthSession, refresh: str, refresh_expires_at: datetime, now: datetime
    ) -> TokenResponse:
        issued_at = int(now.timestamp())
        access_ttl = self.settings.access_token_ttl_seconds
        access = self.tokens.issue(
            {
                "iss": self.settings.public_url,
                "aud": self.settings.token_audience,
                "sub": str(user.id),
                "sid": str(auth_session.id),
                "amr": auth_session.amr.split(),
                "iat": issued_at,
                "exp": issued_at + access_ttl,
                "jti": secrets.token_urlsafe(12),
            }
        )
        return TokenResponse(
            access_token=access,
            expires_in=access_ttl,
            refresh_token=refresh,
            refresh_expires_in=max(0, int((refresh_expires_at - now).total_seconds())),
        )

    def verify_access_token(self, token: str) -> AccessClaims:
        try:
            claims = self.tokens.verify(
                token, audience=self.settings.token_audience, issuer=self.settings.public_url
            )
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                amr=frozenset(claims.get("amr", ())),
            )
        except TokenExpired as error:
            raise InvalidToken("the access token has expired: refresh it or log in again") from error
        except (TokenError, KeyError, ValueError, TypeError) as error:
            raise InvalidToken() from error

    def refresh(
        self, session: Session, trail: AuditTrail, refresh_token: str, now: datetime
    ) -> TokenResponse:
        row = session.get(RefreshToken, _token_hash(refresh_token))
        if row is None or row.expires_at <= now:
            raise InvalidRefreshToken()
        auth_session = session.get(AuthSession, row.session_id)
        if auth_session is None or auth_session.revoked_at is not None:
            raise InvalidRefreshToken()
        trail.actor.user_id = auth_session.user_id
        user = session.get(User, auth_session.user_id)
        if user is None or user.status == UserStatus.SUSPENDED:
            raise AccountNotActive().after_rollback(revoke_session(auth_session.id, now, "suspended"))
        successor = self._successor(refresh_token)
        # The conditional update is the rotation: of two concurrent uses exactly one wins.
        spent = session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.token_hash) == row.token_hash, col(RefreshToken.used_at).is_(None))
            .values(used_at=now)
        )
        if spent.rowcount == 1:
            return self._issue(session, user, auth_session, now, refresh=successor)
        return self._reissue(session, user, auth_session, row, successor, now)

    def _successor(self, refresh_token: str) -> str:
        """The token that rotating `refresh_token` issues: derived, not random, so that a retry can be
        answered with the same successor without the server keeping any refresh token in the clear."""
        digest = self.sealer.derive(refresh_token.encode(), b"refresh-successor")
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _reissue(
        self,
        session: Session,
        user: User,
        auth_session: AuthSession,
        spent: RefreshToken,
        successor: str,
        now: datetime,
    ) -> TokenResponse:
        """A spent token presented again. Within the grace window after its rotation, and while its
        successor is still unused, it is an honest retry (the answer was lost, or two requests raced):
        it gets the same successor again, so the family stays one chain. Anything else is a replay of a
        stolen token, and the whole session is revoked (docs/reliability.md)."""
        session.refresh(spent)  # another transaction spent it: read when (PostgreSQL: now committed)
        issued = session.get(RefreshToken, _token_hash(successor), populate_existing=True)
        grace = timedelta(seconds=self.settings.refresh_reuse_grace_seconds)
        retry = spent.used_at is not None and now - spent.used_at <= grace
        if retry and issued is not None and issued.used_at is None:
            return self._tokens(user, auth_session, successor, issued.expires_at, now)
        raise RefreshTokenReused().after_rollback(revoke_session(auth_session.id, now, "refresh_reuse"))

    # -- TOTP ----------------------------------------------------------------------------------

    def _totp_step(self, user: User, code: str, now: datetime) -> int | None:
        assert user.totp_secret_sealed is not None
        secret = self.sealer.open(user.totp_secret_sealed, totp_context(user.id))
        return totp.matching_step(secret, code, now.timestamp(), user.totp_last_step)

    def start_totp(self, user: User) -> TotpEnrolment:
        if user.totp_enabled:
            raise TotpAlreadyEnabled()
        secret = totp.new_secret()
        user.totp_secret_sealed = self.sealer.seal(secret, totp_context(user.id))
        user.totp_last_step = None
        return TotpEnrolment(
            secret=totp.base32(secret), otpauth_uri=totp.provisioning_uri(secret, user.email, TOTP_ISSUER)
        )

    def confirm_totp(self, user: User, code: str, now: datetime) -> None:
        if user.totp_enabled:
            raise TotpAlreadyEnabled()
        if user.totp_secret_sealed is None:
            raise TotpNotStarted()
        step = self._totp_step(user, code, now)
        if step is None:
            raise TotpCodeRejected()
        user.totp_last_step = step
        user.totp_confirmed_at = now


def revoke_session(session_id: uuid.UUID, now: datetime, reason: str):
    def write(session: Session) -> None:
        auth_session = session.get(AuthSession, session_id)
        if auth_session is not None and auth_session.revoked_at is None:
            auth_session.revoked_at, auth_session.revoke_reason = now, reason

    return write


def revoke_all_sessions(session: Session, user_id: uuid.UUID, reason: str) -> None:
    session.exec(
        update(AuthSession)
        .where(col(AuthSession.user_id) == user_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoke_reason=reason)
    )


_MEMBERSHIPS = memberships(lambda user_id: user_id == bindparam("user_id")).subquery()
# Built once: every authenticated request runs it, and building a statement costs as much as running it.
_SESSION_USER = (
    select(User, _MEMBERSHIPS.c.kind, _MEMBERSHIPS.c.value, Device.id)
    .join(AuthSession, col(AuthSession.user_id) == User.id)
    .outerjoin(_MEMBERSHIPS, _MEMBERSHIPS.c.user_id == User.id)
    .outerjoin(
        Device,
        and_(
            col(Device.id) == bindparam("device_id"),
            col(Device.user_id) == User.id,
            col(Device.revoked_at).is_(None),
        ),
    )
    .where(
        col(User.id) == bindparam("user_id"),
        col(AuthSession.id) == bindparam("session_id"),
        col(AuthSession.revoked_at).is_(None),
    )
)


@dataclass(frozen=True)
class SessionUser:
    user: User
    roles: frozenset[Role]
    specialties: frozenset[str]
    device_id: uuid.UUID | None  # the claimed device, when it is an active device of this user


def session_user(
    session: Session, session_id: uuid.UUID, user_id: uuid.UUID, device_id: uuid.UUID | None = None
) -> SessionUser | None:
    """The user of a session that is still active, with their roles and specialties, and the device the
    request claims if it is one of theirs, in one query (every authenticated request asks)."""
    params = {"user_id": user_id, "session_id": session_id, "device_id": device_id}
    rows = session.exec(_SESSION_USER, params=params).all()
    if not rows:
        return None
    roles = frozenset(Role(value) for _, kind, value, _ in rows if kind == "role")
    specialties = frozenset(value for _, kind, value, _ in rows if kind == "specialty")
    return SessionUser(user=rows[0][0], roles=roles, specialties=specialties, device_id=rows[0][3])

"""Typed errors. Each carries a stable `code` and an HTTP status and is rendered as RFC 9457 problem+json."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar, Self

# A write that must outlive the failed request's rollback (a failed-login counter, a revocation).
# It runs, with the denial's audit record, in a short transaction of its own.
DurableWrite = Callable[[Any], None]


class AppError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra
        self.durable_writes: list[DurableWrite] = []

    def after_rollback(self, *writes: DurableWrite) -> Self:
        self.durable_writes.extend(writes)
        return self


class InvalidInput(AppError):
    status = 422
    code = "invalid_input"
    title = "The request is not valid"


class IdNotUsable(InvalidInput):
    """A new object's id that is already taken by something the caller may not see. It is answered exactly
    as a malformed id (a UUID of another version) is answered by request validation, so that creating an
    object tells nothing about objects the caller cannot see (docs/api.md)."""

    def __init__(self, location: tuple[str, ...]) -> None:
        super().__init__()
        self.errors = [{"loc": list(location), "msg": "UUID version 4 expected", "type": "uuid_version"}]


class Unauthenticated(AppError):
    status = 401
    code = "unauthenticated"
    title = "Authentication is required"

    def __init__(self, detail: str | None = None, **extra: Any):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class InvalidToken(Unauthenticated):
    code = "invalid_token"
    title = "The access token is not valid"


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    title = "Email or password is wrong"


class TotpRequired(Unauthenticated):
    code = "totp_required"
    title = "A TOTP code is required for this account"


class InvalidTotp(Unauthenticated):
    code = "invalid_totp"
    title = "The TOTP code is wrong or was already used"


class InvalidRefreshToken(Unauthenticated):
    code = "invalid_refresh_token"
    title = "The refresh token is not valid"


class RefreshTokenReused(Unauthenticated):
    code = "refresh_token_reused"
    title = "The refresh token was already used; its session is revoked"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class AccountNotActive(Forbidden):
    code = "account_not_active"
    title = "The account is pending verification or suspended"


class MfaRequired(Forbidden):
    code = "mfa_required"
    title = "This action requires a session opened with TOTP"


class UnknownDevice(Forbidden):
    code = "unknown_device"
    title = "X-Confrere-Device names no active device of this account"


class RoleRequired(Forbidden):
    code = "role_required"
    title = "Your roles do not allow this action"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


def readable_size(size: int) -> str:
    """1048576 -> "1 MiB": limits as a person reads them."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.4g} {unit}"
    return f"{size} bytes"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extra: Any):
        super().__init__(detail, **extra)
        self.headers["Retry-After"] = str(max(1, retry_after))


class AccountLocked(TooManyRequests):
    code = "account_locked"
    title = "Too many failed logins: the account is temporarily locked"


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
    title = "The service is not ready"


class SelfChangeRefused(Forbidden):
    code = "self_change_refused"
    title = "An admin cannot change their own roles or status"


class CaseNotFound(NotFound):
    code = "case_not_found"
    title = "No such case"


class CaseClosed(Conflict):
    code = "case_closed"
    title = "The case is closed or withdrawn"


class WriteNotAllowed(Forbidden):
    code = "write_not_allowed"
    title = "Your part in this case does not let you add this"


class ShareNotAllowed(Forbidden):
    code = "share_not_allowed"
    title = "Only a participant of the case may re-share it"


class RecipientNotEligible(InvalidInput):
    code = "recipient_not_eligible"
    title = "An envelope targets a device that may not receive this case's keys"


class InvalidNamedSpecialist(InvalidInput):
    code = "invalid_named_specialist"
    title = "The named specialist is not a verified, active specialist of this specialty"


class IllegalTransition(Conflict):
    code = "illegal_transition"
    title = "The case's status does not allow this transition"


class TransitionNotAllowed(Forbidden):
    code = "transition_not_allowed"
    title = "Your part in this case does not let you make this transition"


class AlreadyClaimed(Conflict):
    code = "already_claimed"
    title = "Another specialist has claimed this case"


class CircleNotFound(NotFound):
    code = "circle_not_found"
    title = "No such circle"


class ModeratorRequired(Forbidden):
    code = "moderator_required"
    title = "Only a moderator of the circle may do this"


class AlreadyMember(Conflict):
    code = "already_member"
    title = "Already a member of this circle"


class LastModerator(Conflict):
    code = "last_moderator"
    title = "The last moderator cannot leave while other members remain: promote one first"


class Refusal(StrEnum):
    """Why a policy (app/authz) says no."""

    ACCOUNT_NOT_ACTIVE = "account_not_active"
    ROLE_REQUIRED = "role_required"
    MFA_REQUIRED = "mfa_required"
    SELF_ROLE_CHANGE = "self_role_change"
    NOT_A_CLINICIAN = "not_a_clinician"
    NOT_VISIBLE = "not_visible"
    INVALID_NAMED_SPECIALIST = "invalid_named_specialist"
    RECIPIENT_NOT_ELIGIBLE = "recipient_not_eligible"
    SHARE_NOT_ALLOWED = "share_not_allowed"
    CASE_CLOSED = "case_closed"
    WRITE_NOT_ALLOWED = "write_not_allowed"
    ALREADY_CLAIMED = "already_claimed"
    ILLEGAL_TRANSITION = "illegal_transition"
    TRANSITION_NOT_ALLOWED = "transition_not_allowed"
    CIRCLE_NOT_VISIBLE = "circle_not_visible"
    MODERATOR_REQUIRED = "moderator_required"
    ALREADY_MEMBER = "already_member"
    LAST_MODERATOR = "last_moderator"


# The one mapping of refusals to problem types. A case the caller may not see answers exactly like a missing
# one, whether they are no clinician or just not part of it.
REFUSALS: dict[Refusal, type[AppError]] = {
    Refusal.ACCOUNT_NOT_ACTIVE: AccountNotActive,
    Refusal.ROLE_REQUIRED: RoleRequired,
    Refusal.MFA_REQUIRED: MfaRequired,
    Refusal.SELF_ROLE_CHANGE: SelfChangeRefused,
    Refusal.NOT_A_CLINICIAN: CaseNotFound,
    Refusal.NOT_VISIBLE: CaseNotFound,
    Refusal.INVALID_NAMED_SPECIALIST: InvalidNamedSpecialist,
    Refusal.RECIPIENT_NOT_ELIGIBLE: RecipientNotEligible,
    Refusal.SHARE_NOT_ALLOWED: ShareNotAllowed,
    Refusal.CASE_CLOSED: CaseClosed,
    Refusal.WRITE_NOT_ALLOWED: WriteNotAllowed,
    Refusal.ALREADY_CLAIMED: AlreadyClaimed,
    Refusal.ILLEGAL_TRANSITION: IllegalTransition,
    Refusal.TRANSITION_NOT_ALLOWED: TransitionNotAllowed,
    # A circle the caller may not see answers exactly like a missing one.
    Refusal.CIRCLE_NOT_VISIBLE: CircleNotFound,
    Refusal.MODERATOR_REQUIRED: ModeratorRequired,
    Refusal.ALREADY_MEMBER: AlreadyMember,
    Refusal.LAST_MODERATOR: LastModerator,
}


def refused(reason: Refusal) -> AppError:
    """The typed error that answers a refusal."""
    return REFUSALS[reason]()

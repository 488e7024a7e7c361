"""The development demo's accounts (`confrere demo-accounts`, run by `confrere demo`): a physician, a
dermatologist and a compliance officer with TOTP, created once and then found again, with how to log in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.crypto import totp
from app.crypto.passwords import PasswordHasher
from app.crypto.sealing import SecretSealer
from app.models.users import Role, User
from app.services.accounts import find_by_email, provision
from app.services.auth import TOTP_ISSUER, totp_context

DEMO_PASSWORD = "confrere demo password"  # noqa: S105 (development-only demo accounts)
DEMO_SPECIALTY = "dermatology"


@dataclass(frozen=True)
class DemoAccount:
    key: str
    email: str
    roles: frozenset[Role]
    specialties: frozenset[str] = frozenset()

    @property
    def needs_totp(self) -> bool:
        return Role.COMPLIANCE_OFFICER in self.roles


DEMO_ACCOUNTS = (
    DemoAccount("physician", "demo.physician@confrere.local", frozenset({Role.PHYSICIAN})),
    DemoAccount(
        "specialist",
        "demo.dermatologist@confrere.local",
        frozenset({Role.SPECIALIST}),
        frozenset({DEMO_SPECIALTY}),
    ),
    DemoAccount("officer", "demo.compliance@confrere.local", frozenset({Role.COMPLIANCE_OFFICER})),
)


def _totp_secret(user: User, sealer: SecretSealer, now: datetime) -> bytes:
    """The account's confirmed TOTP secret; enrolled here the first time."""
    if user.totp_enabled and user.totp_secret_sealed is not None:
        return sealer.open(user.totp_secret_sealed, totp_context(user.id))
    secret = totp.new_secret()
    user.totp_secret_sealed = sealer.seal(secret, totp_context(user.id))
    user.totp_confirmed_at = now
    user.totp_last_step = None
    return secret


def provision_demo_accounts(
    session: Session, hasher: PasswordHasher, sealer: SecretSealer, now: datetime
) -> list[dict[str, str | None]]:
    """Each demo account (created when missing) with its credentials: e-mail, password, TOTP secret and
    otpauth URI (for an authenticator app), for the demo and for whoever logs in as it in a browser."""
    described = []
    for account in DEMO_ACCOUNTS:
        user = find_by_email(session, account.email) or provision(
            session,
            hasher,
            email=account.email,
            password=DEMO_PASSWORD,
            display_name=account.email.split("@")[0],
            roles=set(account.roles),
            specialties=set(account.specialties),
            now=now,
        )
        secret = _totp_secret(user, sealer, now) if account.needs_totp else None
        described.append(
            {
                "key": account.key,
                "user_id": str(user.id),
                "email": account.email,
                "password": DEMO_PASSWORD,
                "roles": ",".join(sorted(role.value for role in account.roles)),
                "totp_secret": totp.base32(secret) if secret else None,
                "otpauth_uri": totp.provisioning_uri(secret, account.email, TOTP_ISSUER) if secret else None,
            }
        )
    return described

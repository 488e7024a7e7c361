"""The server's own keys, kept in files outside the database (never a user's key: those stay on devices).

keys_dir/token-<UTC timestamp>.pem  ES256 token signing keys; the newest signs, all verify (rotation)
keys_dir/secret.key                 seals server-side secrets, unless CONFRERE_SECRET_KEY is set
keys_dir/audit-log.key              signs the audit log's checkpoints (a C2SP note signer key string, named
                                    after settings.audit_log_origin); outside the database, so whoever can
                                    rewrite the database still cannot sign a rewritten log
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.config import Settings
from app.crypto.sealing import SecretSealer
from app.crypto.signed_note import NoteSigner
from app.crypto.tokens import TokenKeySet, TokenSigningKey

TOKEN_KEY_GLOB = "token-*.pem"  # noqa: S105 (file names)
SECRET_FILE = "secret.key"  # noqa: S105
AUDIT_LOG_KEY_FILE = "audit-log.key"


class KeyringError(RuntimeError):
    """A key file exists but cannot serve this configuration; the server refuses to start."""


@dataclass(frozen=True)
class ServerKeys:
    tokens: TokenKeySet
    sealer: SecretSealer
    audit_log: NoteSigner


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def rotate_token_key(settings: Settings) -> str:
    """Adds a new signing key; it signs from the next start on while older keys keep verifying."""
    key = TokenSigningKey.generate()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    _write_private(settings.resolved_keys_dir / f"token-{stamp}.pem", key.to_pem())
    return key.kid


def _may_generate(settings: Settings, what: Path | str) -> None:
    # Nodes that each made their own keys would not accept each other's tokens, and would sign one log
    # with two keys: on several nodes the keys are made once and shared.
    if not settings.generate_keys:
        raise KeyringError(
            f"{what} is missing and CONFRERE_GENERATE_KEYS is false: create the server keys once with "
            "`confrere init-keys` and give every node the same keys directory"
        )


def _token_keys(settings: Settings) -> TokenKeySet:
    paths = sorted(settings.resolved_keys_dir.glob(TOKEN_KEY_GLOB))
    if not paths:
        _may_generate(settings, settings.resolved_keys_dir / TOKEN_KEY_GLOB)
        rotate_token_key(settings)
        paths = sorted(settings.resolved_keys_dir.glob(TOKEN_KEY_GLOB))
    return TokenKeySet([TokenSigningKey.from_pem(path.read_bytes()) for path in paths])


def _server_secret(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.resolved_keys_dir / SECRET_FILE
    if not path.exists():
        _may_generate(settings, path)
        _write_private(path, secrets.token_bytes(32))
    return path.read_bytes()


def _create_once(path: Path, data: bytes) -> None:
    """Publish a new key file atomically: concurrent first starts (API workers, a separate sequencer)
    must all end up with the one key that won, never with a half-written file."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    _write_private(temporary, data)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def load_audit_log_signer(settings: Settings) -> NoteSigner:
    path = settings.resolved_keys_dir / AUDIT_LOG_KEY_FILE
    if not path.exists():
        _may_generate(settings, path)
        _create_once(path, NoteSigner.generate(settings.audit_log_origin).key_string.encode() + b"\n")
    signer = NoteSigner.from_key_string(path.read_text().strip())
    if signer.name != settings.audit_log_origin:
        # The origin is the log's identity in every checkpoint: a silent change would fork the log.
        raise KeyringError(
            f"{path} signs for origin {signer.name!r}, but CONFRERE_AUDIT_LOG_ORIGIN is "
            f"{settings.audit_log_origin!r}"
        )
    return signer


def load_server_keys(settings: Settings) -> ServerKeys:
    return ServerKeys(
        tokens=_token_keys(settings),
        sealer=SecretSealer(_server_secret(settings)),
        audit_log=load_audit_log_signer(settings),
    )

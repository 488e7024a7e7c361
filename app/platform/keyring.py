"""The server's own keys, kept in files outside the database (never a user's key: those stay on devices).

keys_dir/token-<UTC timestamp>.pem  ES256 token signing keys; the newest signs, all verify (rotation)
keys_dir/secret.key                 seals server-side secrets, unless CONFRERE_SECRET_KEY is set
keys_dir/audit-log.key              signs the audit log's checkpoints (a C2SP note signer key string, named
                                    after settings.audit_log_origin); outside the database, so whoever can
                                    rewrite the database still cannot sign a rewritten log
keys_dir/directory-log.key          signs the device directory log's checkpoints, the same way (named after
                                    settings.directory_log_origin); clients pin its verifier key
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
DIRECTORY_LOG_KEY_FILE = "directory-log.key"


class KeyringError(RuntimeError):
    """A key file exists but cannot serve this configuration, or is missing where it must exist; the server
    refuses to start."""


def _refuse_missing(path: Path, create_missing: bool) -> None:
    """Keys are made only for a new database. Beside one that holds data, a missing key means the wrong
    folder (or a lost volume): a new key would lock out TOTP seeds or fork the audit log's signatures."""
    if not create_missing and not path.exists():
        raise KeyringError(
            f"{path} does not exist. Keys are created only for a new database (by `confrere migrate` or the "
            "first start): point CONFRERE_DATA_DIR (or CONFRERE_KEYS_DIR) at this server's keys folder"
        )


@dataclass(frozen=True)
class ServerKeys:
    tokens: TokenKeySet
    sealer: SecretSealer
    audit_log: NoteSigner
    directory_log: NoteSigner


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


def _token_keys(settings: Settings, create_missing: bool) -> TokenKeySet:
    paths = sorted(settings.resolved_keys_dir.glob(TOKEN_KEY_GLOB))
    if not paths:
        _refuse_missing(settings.resolved_keys_dir / TOKEN_KEY_GLOB, create_missing)
        _may_generate(settings, settings.resolved_keys_dir / TOKEN_KEY_GLOB)
        rotate_token_key(settings)
        paths = sorted(settings.resolved_keys_dir.glob(TOKEN_KEY_GLOB))
    return TokenKeySet([TokenSigningKey.from_pem(path.read_bytes()) for path in paths])


def _server_secret(settings: Settings, create_missing: bool) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.resolved_keys_dir / SECRET_FILE
    _refuse_missing(path, create_missing)
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


def _log_signer(
    settings: Settings, file_name: str, origin: str, setting: str, create_missing: bool
) -> NoteSigner:
    """`create_missing`: only for a database that holds no data yet (see `_refuse_missing`)."""
    path = settings.resolved_keys_dir / file_name
    _refuse_missing(path, create_missing)
    if not path.exists():
        _may_generate(settings, path)
        _create_once(path, NoteSigner.generate(origin).key_string.encode() + b"\n")
    signer = NoteSigner.from_key_string(path.read_text().strip())
    if signer.name != origin:
        # The origin is the log's identity in every checkpoint: a silent change would fork the log.
        raise KeyringError(f"{path} signs for origin {signer.name!r}, but {setting} is {origin!r}")
    return signer


def load_audit_log_signer(settings: Settings, *, create_missing: bool) -> NoteSigner:
    return _log_signer(
        settings, AUDIT_LOG_KEY_FILE, settings.audit_log_origin, "CONFRERE_AUDIT_LOG_ORIGIN", create_missing
    )


def load_directory_log_signer(settings: Settings, *, create_missing: bool) -> NoteSigner:
    return _log_signer(
        settings,
        DIRECTORY_LOG_KEY_FILE,
        settings.directory_log_origin,
        "CONFRERE_DIRECTORY_LOG_ORIGIN",
        create_missing,
    )


def load_server_keys(settings: Settings, *, create_missing: bool) -> ServerKeys:
    """`create_missing`: only for a database that holds no data yet (see `_refuse_missing`)."""
    return ServerKeys(
        tokens=_token_keys(settings, create_missing),
        sealer=SecretSealer(_server_secret(settings, create_missing)),
        audit_log=load_audit_log_signer(settings, create_missing=create_missing),
        directory_log=load_directory_log_signer(settings, create_missing=create_missing),
    )

"""One validated settings object, read from the environment (prefix CONFRERE_)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.crypto.cosignature import WitnessKey
from app.crypto.signed_note import NoteError


class BlobBackend(StrEnum):
    FILESYSTEM = "filesystem"
    S3 = "s3"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


MIN_SECRET_BYTES = 32
DEFAULT_AUDIT_LOG_ORIGIN = "confrere.local/audit"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONFRERE_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    alembic_ini: Path = Path(__file__).resolve().parent.parent / "alembic.ini"
    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; defaults to a SQLite file in data_dir."
    )
    db_pool_size: int = Field(
        default=40, ge=1, description="Match the worker thread pool: smaller deadlocks."
    )

    public_url: str = "http://127.0.0.1:8000"
    token_audience: str = "confrere-api"  # noqa: S105 (an audience name, not a secret)
    access_token_ttl_seconds: int = Field(default=600, ge=30, le=3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=300)
    refresh_reuse_grace_seconds: int = Field(
        default=20,
        ge=0,
        le=120,
        description="A spent refresh token presented again this soon (a retry) returns its successor again.",
    )
    keys_dir: Path | None = Field(default=None, description="Server keys; defaults to data_dir/keys.")
    generate_keys: bool = Field(
        default=True,
        description="Create missing server keys at start; false on every node of several, which share the "
        "keys that `confrere init-keys` made once (docs/deployment.md).",
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Seals server-side secrets (TOTP seeds). Required outside development."
    )

    argon2_memory_kib: int = Field(default=19456, ge=19456)
    argon2_iterations: int = Field(default=2, ge=2)
    argon2_lanes: int = Field(default=1, ge=1)

    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_seconds: int = Field(default=900, ge=1)
    login_ip_max_failures: int = Field(default=30, ge=1)
    login_ip_window_seconds: int = Field(default=900, ge=1)

    # Token buckets shared by every node on PostgreSQL, in each process's memory on SQLite
    # (app/platform/ratelimit.py).
    write_rate_per_minute: int = Field(
        default=300, ge=0, description="Writes per user (per address when anonymous); 0 disables."
    )
    write_burst: int = Field(default=100, ge=1)
    audit_exports_per_hour: int = Field(default=30, ge=0, description="Per compliance officer; 0 disables.")
    audit_export_burst: int = Field(default=5, ge=1)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_case_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_attachment_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_key_backup_bytes: int = Field(default=64 * 1024, ge=1024)
    max_envelopes_per_request: int = Field(default=1000, ge=1)
    accept_format_v1_uploads: bool = Field(
        default=True,
        description="Accept new objects sealed in format version 1 (docs/e2ee.md section 2), for clients not "
        "yet updated; false refuses them (`format_version_refused`). Stored version 1 objects stay readable.",
    )
    max_devices_per_user: int = Field(
        default=20,
        ge=1,
        description="Active devices per user: every new case is wrapped for each, so an unbounded number "
        "would let one account push its specialty's audience past max_envelopes_per_request.",
    )
    blobs_dir: Path | None = Field(
        default=None, description="Encrypted attachments (content-addressed); defaults to data_dir/blobs."
    )
    # Several API nodes share an S3-compatible store (docs/deployment.md). Credentials come from the
    # environment as the AWS SDK reads them (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, roles), not from here.
    blob_backend: BlobBackend = BlobBackend.FILESYSTEM
    s3_bucket: str | None = Field(default=None, description="The bucket of the blobs; required with s3.")
    s3_prefix: str = Field(default="", pattern=r"^([^/\s][^\s]*/)?$", description="Key prefix, ending in /.")
    s3_endpoint_url: str | None = Field(
        default=None, description="MinIO, Ceph, Garage...; unset for AWS S3 (the SDK's endpoint)."
    )
    s3_region: str | None = Field(default=None, description="Unset: the SDK's (AWS_REGION, its config).")
    s3_part_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        description="Multipart upload part size (S3's minimum is 5 MiB): what an upload holds in memory.",
    )

    routine_due_hours: int = Field(default=7 * 24, ge=1)
    urgent_due_hours: int = Field(default=24, ge=1)

    # Notifications (docs/notifications.md): the event stream, webhooks and the deadlines job.
    events_retention_hours: int = Field(
        default=7 * 24, ge=1, description="How far back Last-Event-ID can replay; older events are purged."
    )
    events_heartbeat_seconds: float = Field(default=15, gt=0)
    events_stream_max_seconds: float = Field(
        default=300, gt=0, description="A stream ends after this; clients reconnect with Last-Event-ID."
    )
    events_max_streams_per_user: int = Field(
        default=5, ge=1, description="Open streams per user and process; a new one ends the oldest."
    )
    events_sequencer_interval_seconds: float = Field(
        default=1.0, gt=0, description="Fallback poll; events written in this process are sequenced at once."
    )
    webhook_timeout_seconds: float = Field(default=5, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1, le=30)
    webhook_retry_base_seconds: float = Field(default=30, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600, gt=0)
    webhook_delivery_interval_seconds: float = Field(default=2, gt=0)
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Let webhooks reach loopback, private and link-local addresses (off: no SSRF inward).",
    )
    max_webhooks_per_user: int = Field(default=5, ge=1)
    jobs_in_process: bool = Field(
        default=True, description="Run the deadlines job in the API; false when cron runs `confrere jobs`."
    )
    jobs_interval_seconds: float = Field(default=60, gt=0)
    auto_close_answered_after_hours: int = Field(
        default=30 * 24, ge=0, description="Close answered cases after this delay; 0 never does."
    )

    audit_log_origin: str = Field(
        default=DEFAULT_AUDIT_LOG_ORIGIN,
        pattern=r"^[^\s+]+$",
        description="The log's name in every checkpoint (host/path, no scheme); never change it.",
    )
    directory_log_origin: str = Field(
        default="confrere.local/directory",
        pattern=r"^[^\s+]+$",
        description="The device directory log's name in every checkpoint (host/path); never change it.",
    )
    audit_witness_keys: list[str] = Field(
        default_factory=list,
        description="Verifier keys (C2SP tlog-cosignature, Ed25519) of the witnesses whose cosignatures the "
        "server accepts and serves; set by the admin (JSON list). docs/audit-log.md, Witnesses.",
    )
    audit_sequencer_interval_seconds: float = Field(default=0.2, gt=0)
    audit_sequencer_in_process: bool = Field(
        default=True, description="Run the sequencer in the API process; false when it runs on its own."
    )
    audit_sequencer_batch_size: int = Field(default=5000, ge=1, le=50_000)

    workers: int | None = Field(
        default=None,
        ge=1,
        description="API processes of `confrere serve`; default 1 on SQLite (one writer, whose turns are "
        "queued in the process) and 2 on PostgreSQL (docs/benchmarks.md).",
    )
    web_dir: Path | None = Field(
        default=None,
        description="The built web client served at /app; defaults to web/dist of the source tree.",
    )

    cors_origins: list[str] = Field(default_factory=list)
    metrics_token: SecretStr | None = Field(default=None, description="Bearer token for GET /metrics.")

    @field_validator("data_dir", "keys_dir", "blobs_dir", "web_dir", mode="after")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        # Resolved once, here: a command run from another folder must not find (or create) another data dir.
        return path.expanduser().absolute() if path is not None else None

    @field_validator("audit_witness_keys")
    @classmethod
    def _witness_keys(cls, keys: list[str]) -> list[str]:
        try:
            return [WitnessKey.from_key_string(key).key_string for key in keys]
        except NoteError as error:
            raise ValueError(f"audit_witness_keys: {error}") from error

    @property
    def witnesses(self) -> list[WitnessKey]:
        return [WitnessKey.from_key_string(key) for key in self.audit_witness_keys]

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> Settings:
        if self.blob_backend is BlobBackend.S3 and not self.s3_bucket:
            raise ValueError("CONFRERE_S3_BUCKET is required when CONFRERE_BLOB_BACKEND is s3")
        return self

    @model_validator(mode="after")
    def _refuse_development_defaults_in_production(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            secret = self.secret_key.get_secret_value() if self.secret_key else ""
            if len(secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"CONFRERE_SECRET_KEY must hold at least {MIN_SECRET_BYTES} random bytes in production "
                    "(e.g. `openssl rand -base64 48`)"
                )
            if self.audit_log_origin == DEFAULT_AUDIT_LOG_ORIGIN:
                raise ValueError(
                    "CONFRERE_AUDIT_LOG_ORIGIN must name this deployment in production (e.g. "
                    "confrere.example.org/audit): it is the log's name in every checkpoint, for good"
                )
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'confrere.db').as_posix()}"

    @property
    def resolved_keys_dir(self) -> Path:
        return self.keys_dir or self.data_dir / "keys"

    @property
    def resolved_blobs_dir(self) -> Path:
        return self.blobs_dir or self.data_dir / "blobs"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def serve_workers(self) -> int:
        return self.workers or (1 if self.is_sqlite else 2)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_problems(error: ValidationError) -> list[str]:
    """One line per setting that is wrong, named as the environment variable an operator sets."""
    lines = []
    for item in error.errors():
        names = [str(part) for part in item.get("loc", ())]
        variable = f"CONFRERE_{names[0].upper()}: " if names else ""
        lines.append(f"{variable}{item.get('msg', '').removeprefix('Value error, ')}")
    return lines

"""create_app(): settings, database, keys, routers, middleware and error handlers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from app import problem_handlers
from app.audit.sequencer import BackgroundSequencer
from app.blobstore import FilesystemBlobStore
from app.config import Settings, get_settings
from app.crypto.passwords import PasswordHasher
from app.db import WriteGate, create_db_engine, create_read_engine
from app.deps import storable_url
from app.keyring import load_server_keys
from app.middleware import WEB_PATH, BodyLimitMiddleware, RequestContextMiddleware
from app.models.audit import AuditRecord
from app.notifications.runtime import Notifications
from app.ratelimit import RateLimits
from app.routers import (
    admin,
    audit,
    auth,
    case_content,
    cases,
    devices,
    directory,
    key_backup,
    me,
    ops,
    specialties,
    witness,
)
from app.routers import events as event_routes
from app.routers import stats as stats_routes
from app.routers import webhooks as webhook_routes
from app.services.auth import Authenticator

API_DESCRIPTION = """\
Confrere routes clinician second-opinion requests between physicians and specialists. Clinical content
is end-to-end encrypted on the clients' devices (see docs/e2ee.md); this API sees and stores only clear
routing metadata and ciphertext. Errors are RFC 9457 problem details with a stable `code`.
"""

# The static web client, built by `make web` (docs/web-client.md); served only where it was built.
WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"


def body_limits(settings: Settings) -> Callable[[str, str], int]:
    routes = [
        (re.compile(r"^/v1/cases/[^/]+/attachments$"), settings.max_attachment_bytes + 256 * 1024),
        (re.compile(r"^/v1/cases(/[^/]+/(messages|envelopes))?$"), settings.max_case_body_bytes),
        # Base64 in JSON inflates the opaque backup by a third.
        (re.compile(r"^/v1/me/key-backup$"), settings.max_key_backup_bytes * 4 // 3 + 1024),
    ]

    def limit_for(method: str, path: str) -> int:
        for pattern, limit in routes:
            if pattern.match(path):
                return limit
        return settings.max_body_bytes

    return limit_for


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_db_engine(settings)
    read_engine = create_read_engine(settings, engine)
    keys = load_server_keys(settings)
    notifications = Notifications(engine, read_engine, keys.sealer, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sequencer = None
        if settings.audit_sequencer_in_process:
            sequencer = BackgroundSequencer(
                engine,
                keys.audit_log,
                interval=settings.audit_sequencer_interval_seconds,
                batch_size=settings.audit_sequencer_batch_size,
            )
            sequencer.start()
        notifications.start()
        yield
        notifications.stop()
        if sequencer is not None:
            sequencer.stop()
        engine.dispose()
        read_engine.dispose()

    app = FastAPI(
        dependencies=[Depends(storable_url)],
        title="Confrere API",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "auth", "description": "Registration, login, tokens, TOTP."},
            {"name": "me", "description": "The caller's own account."},
            {"name": "devices", "description": "The caller's devices and their public keys."},
            {"name": "directory", "description": "Specialties and the devices of colleagues."},
            {
                "name": "cases",
                "description": "Cases, their lifecycle, sealed messages and attachments, and re-shares "
                "(client guide: docs/api.md).",
            },
            {"name": "admin", "description": "Account administration (admins, with TOTP)."},
            {
                "name": "audit",
                "description": "The verifiable audit log: public checkpoint; proofs, tiles, queries and "
                "exports for compliance officers (with TOTP). See docs/audit-log.md.",
            },
            {
                "name": "notifications",
                "description": "The caller's events (Server-Sent Events) and webhooks: ids, types and times, "
                "never content. See docs/notifications.md.",
            },
            {"name": "operations", "description": "Health, readiness, metrics."},
        ],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.read_engine = read_engine
    # See app.deps and WriteGate: SQLite has one writer, PostgreSQL many.
    app.state.write_gate = WriteGate(engine, AuditRecord.__table__, exclusive=settings.is_sqlite)
    app.state.audit_log_signer = keys.audit_log
    app.state.authenticator = Authenticator(
        settings,
        keys.tokens,
        keys.sealer,
        PasswordHasher(settings.argon2_memory_kib, settings.argon2_iterations, settings.argon2_lanes),
    )
    app.state.blobs = FilesystemBlobStore(settings.resolved_blobs_dir)
    app.state.rate_limits = RateLimits.from_settings(settings)
    for module in (
        auth,
        me,
        key_backup,
        devices,
        specialties,
        directory,
        cases,
        case_content,
        admin,
        audit,
        witness,
    ):
        app.include_router(module.router)
    app.state.event_streams = notifications.streams
    for module in (event_routes, webhook_routes, stats_routes):
        app.include_router(module.router)
    app.include_router(auth.jwks_router)
    app.include_router(ops.router)
    if (WEB_DIST / "index.html").is_file():
        app.mount(WEB_PATH, StaticFiles(directory=WEB_DIST, html=True), name="web")
    problem_handlers.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-Request-ID",
                "X-Confrere-Device",
                "X-Confrere-Client",
            ],
            expose_headers=["X-Request-ID", "Retry-After", audit.LOG_KEY_HEADER],
        )
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limits(settings))
    app.add_middleware(RequestContextMiddleware)
    return app

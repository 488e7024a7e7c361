"""create_app(): settings, database, keys, routers, middleware and error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from app.audit.sequencer import BackgroundSequencer
from app.config import Settings, get_settings
from app.platform import problem_handlers
from app.platform.middleware import WEB_PATH, BodyLimitMiddleware, RequestContextMiddleware
from app.platform.routing import include_routers
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
from app.runtime.body_limits import limits_by_route
from app.runtime.state import build_runtime

API_DESCRIPTION = """\
Confrere routes clinician second-opinion requests between physicians and specialists. Clinical content
is end-to-end encrypted on the clients' devices (see docs/e2ee.md); this API sees and stores only clear
routing metadata and ciphertext. Errors are RFC 9457 problem details with a stable `code`.
"""

# The static web client, built by `make web` (docs/web-client.md); served only where it was built.
WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    runtime = build_runtime(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sequencer = None
        if settings.audit_sequencer_in_process:
            sequencer = BackgroundSequencer(
                runtime.engine,
                runtime.audit_log_signer,
                interval=settings.audit_sequencer_interval_seconds,
                batch_size=settings.audit_sequencer_batch_size,
            )
            sequencer.start()
        runtime.notifications.start()
        yield
        runtime.notifications.stop()
        if sequencer is not None:
            sequencer.stop()
        runtime.dispose()

    app = FastAPI(
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
    app.state.runtime = runtime
    include_routers(
        app,
        *(
            module.router
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
                event_routes,
                webhook_routes,
                stats_routes,
            )
        ),
        auth.jwks_router,
        ops.router,
    )
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
    app.add_middleware(BodyLimitMiddleware, limit_for=limits_by_route(app, settings))
    app.add_middleware(RequestContextMiddleware)
    return app

"""create_app(): settings, database, keys, routers, middleware and error handlers."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.audit.sequencer import BackgroundSequencer, sequence_pending
from app.config import Settings, get_settings
from app.directory.log import DIRECTORY_LOG
from app.platform import problem_handlers
from app.platform.middleware import WEB_PATH, BodyLimitMiddleware, RequestContextMiddleware
from app.platform.routing import include_routers
from app.routers import (
    admin,
    audit,
    auth,
    case_content,
    cases,
    circle_posts,
    circles,
    devices,
    directory,
    directory_log,
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


def _with_public_security(app: FastAPI) -> Callable[[], dict]:
    """The contract states who may call what: a route without a principal is public (`security: []`)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        document["components"]["securitySchemes"][ops.METRICS_SCHEME] = ops.METRICS_SECURITY_SCHEME
        for operations in document["paths"].values():
            for operation in operations.values():
                operation.setdefault("security", [])
        return document

    return openapi


# The interactive API docs: Swagger UI as installed from npm and copied into web/dist by `make web`.
API_DOCS_ASSETS = "api-docs"
_API_DOCS_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Confrere API</title>
<link rel="icon" href="{WEB_PATH}/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{WEB_PATH}/{API_DOCS_ASSETS}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{WEB_PATH}/{API_DOCS_ASSETS}/swagger-ui-bundle.js"></script>
<script src="{WEB_PATH}/{API_DOCS_ASSETS}/init.js"></script></body></html>"""
# Only this server's files: the page works without the public internet and loads nothing from elsewhere.
# Swagger UI sets inline styles and shows data: images.
_API_DOCS_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


async def api_docs(_: Request) -> HTMLResponse:
    return HTMLResponse(_API_DOCS_PAGE, headers={"content-security-policy": _API_DOCS_POLICY})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    runtime = build_runtime(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Signs the empty directory log once, so that its checkpoint exists before the first entry.
        await anyio.to_thread.run_sync(
            functools.partial(
                sequence_pending, runtime.engine, runtime.directory_log.signer, tables=DIRECTORY_LOG
            )
        )
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
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
        servers=[{"url": settings.public_url, "description": "This server (CONFRERE_PUBLIC_URL)"}],
        lifespan=lifespan,
        # /docs is served from the web build's own copy of Swagger UI (api_docs below), never from a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "auth", "description": "Registration, login, tokens, TOTP."},
            {"name": "me", "description": "The caller's own account."},
            {"name": "devices", "description": "The caller's devices and their public keys."},
            {"name": "directory", "description": "Specialties, professions and the devices of colleagues."},
            {
                "name": "cases",
                "description": "Cases, their lifecycle, sealed messages and attachments, and re-shares "
                "(client guide: docs/api.md).",
            },
            {
                "name": "circles",
                "description": "Peer circles of verified professionals: membership, epochs of keys, sealed "
                "posts, pseudonyms, moderation, co-development sessions.",
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
                directory_log,
                cases,
                case_content,
                circles,
                circle_posts,
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
    web_dir = settings.web_dir or WEB_DIST
    if (web_dir / "index.html").is_file():
        app.mount(WEB_PATH, StaticFiles(directory=web_dir, html=True), name="web")
    if (web_dir / API_DOCS_ASSETS / "swagger-ui-bundle.js").is_file():
        app.add_route("/docs", api_docs, include_in_schema=False)
    problem_handlers.install(app)
    # FastAPI's documented way to extend the generated schema is to replace this method.
    app.openapi = _with_public_security(app)  # type: ignore[method-assign]
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

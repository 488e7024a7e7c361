"""ASGI middleware: request context (id, audit trail, security headers, metrics) and body size limits."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

import orjson
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit.records import Actor, AuditTrail, as_uuid, client_name, request_id_or_new
from app.errors import AppError, InvalidInput, PayloadTooLarge, readable_size
from app.models.devices import NO_DEVICE
from app.platform.logs import REQUEST_ID, log_access
from app.schemas.common import storable_text

REQUESTS = Counter("confrere_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("confrere_http_request_duration_seconds", "HTTP request latency", ["method", "route"])

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
]
API_ONLY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
# The interactive docs (app.main.api_docs) set their own policy; everything else is data and forbids scripts.
DOCS_PATHS = ("/docs",)
# The web client (web/) runs only its own bundled script and stylesheet; decrypted photos are blob: URLs.
# 'wasm-unsafe-eval' lets it compile the bundled Argon2id WebAssembly of the key backup (no JS eval).
# no-cache (revalidate) rather than no-store, so a rebuilt bundle is picked up at once.
WEB_PATH = "/app"
WEB_HEADERS = [
    (b"cache-control", b"no-cache"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' blob:; object-src 'none'; "
        b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_or_new(_header(scope, b"x-request-id"))
        # Not reset on the way out: each request runs in a task of its own, and the error handler that
        # logs an unhandled exception runs after this middleware has returned.
        REQUEST_ID.set(request_id)
        device = _header(scope, b"x-confrere-device")
        scope.setdefault("state", {})["audit_trail"] = AuditTrail(
            request_id=request_id,
            actor=Actor(
                ip=scope["client"][0] if scope.get("client") else None,
                client=client_name(_header(scope, b"x-confrere-client") or _header(scope, b"user-agent")),
            ),
            # A malformed id is a claim too, of a device that cannot exist (the nil UUID): refused the same.
            claimed_device=(as_uuid(device) or NO_DEVICE) if device is not None else None,
        )
        extra_headers = [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS]
        if scope["path"] == WEB_PATH or scope["path"].startswith(WEB_PATH + "/"):
            extra_headers += WEB_HEADERS
        elif not scope["path"].startswith(DOCS_PATHS):
            extra_headers += API_ONLY_HEADERS
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                # A route that sets its own caching (immutable audit log tiles) keeps it.
                own_caching = any(name.lower() == b"cache-control" for name, _ in headers)
                message["headers"] = headers + [
                    header for header in extra_headers if not (own_caching and header[0] == b"cache-control")
                ]
            await send(message)

        try:
            if (refusal := _unstorable_url(scope)) is None:
                await self.app(scope, receive, send_with_headers)
            else:
                status_holder["status"] = InvalidInput.status
                await _send_problem(send_with_headers, InvalidInput(refusal), scope["path"], request_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            status = status_holder["status"]
            requests, latency = _metrics(scope["method"], route, status)
            requests.inc()
            latency.observe(elapsed)
            log_access(scope["method"], scope["path"], route, status, elapsed)


@functools.cache
def _metrics(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    """The labelled series of a kind of request, looked up once: `labels()` takes a lock and builds its key
    at every call. Bounded: a route is a template (or "unmatched"), never a raw path."""
    return REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route)


def _unstorable_url(scope: Scope) -> str | None:
    """Why the path or a query value is text the database cannot store (app.schemas.common.storable_text),
    checked here for every route rather than as a dependency of each, which cost a dependency per request."""
    values = [scope["path"]]
    if query := scope.get("query_string"):
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        values += [part for pair in pairs for part in pair]
    for value in values:
        try:
            storable_text(value)
        except ValueError as error:
            return f"the URL is not valid: {error}"
    return None


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuses bodies over the limit of their route with 413, counting bytes as they stream in."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_too_large(scope, send, limit)
            return
        received = 0
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def replacing_send(message: Message) -> None:
            # Frameworks turn a failure while reading the body into their own 400: answer 413 instead.
            if not exceeded:
                await send(message)
            elif message["type"] == "http.response.start":
                await _send_too_large(scope, send, limit)

        try:
            await self.app(scope, limited_receive, replacing_send)
        except BodyTooLarge:
            await _send_too_large(scope, send, limit)


async def _send_too_large(scope: Scope, send: Send, limit: int) -> None:
    trail = scope.get("state", {}).get("audit_trail")
    error = PayloadTooLarge(f"this route accepts bodies of at most {readable_size(limit)}")
    await _send_problem(send, error, scope["path"], trail.request_id if trail else None)


async def _send_problem(
    send: Send, error: AppError, instance: str | None = None, request_id: str | None = None
) -> None:
    """A problem answered before the app runs, shaped like those of app.runtime.problem_handlers."""
    problem = {
        "type": "about:blank",
        "title": error.title,
        "status": error.status,
        "code": error.code,
        "detail": error.detail,
        "instance": instance,
        "request_id": request_id,
    }
    body = orjson.dumps({key: value for key, value in problem.items() if value is not None})
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

"""Renders every error as RFC 9457 problem+json with a stable `code`; never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import AppError, IdNotUsable
from app.runtime.middleware import API_ONLY_HEADERS, SECURITY_HEADERS

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_HTTP_CODES = {
    # FastAPI's answer to a body it cannot decode at all (not UTF-8, a broken multipart stream).
    400: "malformed_body",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    415: "unsupported_media_type",
}


def _problem(
    request: Request, status: int, code: str, title: str, detail: str | None, **extra
) -> JSONResponse:
    trail = getattr(request.state, "audit_trail", None)
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
        "instance": request.url.path,
        "request_id": trail.request_id if trail else None,
        **extra,
    }
    return JSONResponse(
        {k: v for k, v in body.items() if v is not None}, status_code=status, media_type=PROBLEM_JSON
    )


def _invalid_input(request: Request, errors: list[dict]) -> JSONResponse:
    return _problem(request, 422, "invalid_input", "The request is not valid", None, errors=errors)


def install(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, error: AppError) -> JSONResponse:
        if isinstance(error, IdNotUsable):
            return _invalid_input(request, error.errors)
        response = _problem(request, error.status, error.code, error.title, error.detail, **error.extra)
        response.headers.update(error.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        # Pydantic echoes the offending input; it may be a password or a token, so it is dropped. A body
        # read by a dependency and by the handler is validated twice: each problem is listed once.
        unique = {
            (
                tuple(str(part) for part in item.get("loc", ())),
                item.get("msg", ""),
                item.get("type", ""),
            ): None
            for item in error.errors()
        }
        errors = [{"loc": list(loc), "msg": msg, "type": kind} for loc, msg, kind in unique]
        return _invalid_input(request, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, "http_error")
        response = _problem(request, error.status_code, code, str(error.detail), None)
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        response = _problem(request, 500, "internal_error", "Internal error", None)
        # Starlette answers this one from its outermost middleware, around RequestContextMiddleware, so
        # the headers that middleware adds to every other answer are added here.
        trail = getattr(request.state, "audit_trail", None)
        for name, value in (*SECURITY_HEADERS, *API_ONLY_HEADERS):
            response.headers[name.decode()] = value.decode()
        if trail is not None:
            response.headers["X-Request-ID"] = trail.request_id
        return response

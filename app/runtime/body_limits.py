"""Body size limits: each route that takes more than the default declares its kind of body, and the
middleware (app.platform.middleware.BodyLimitMiddleware) looks the limit up by the route's own path pattern
before any byte is read."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from app.config import Settings
from app.platform.routes import api_routes
from app.schemas.circles import EPOCH_UPLOAD_MAX_BYTES


class LargeBody(StrEnum):
    SEALED_CASE_CONTENT = "sealed_case_content"  # a case, a message or envelopes: ciphertext in JSON
    ATTACHMENT = "attachment"  # a multipart upload of one sealed file
    KEY_BACKUP = "key_backup"
    CIRCLE_EPOCH = "circle_epoch"  # a circle's epoch statement and a wrap per member device

    def limit(self, settings: Settings) -> int:
        if self is LargeBody.ATTACHMENT:
            return settings.max_attachment_bytes + 256 * 1024  # the multipart framing and fields
        if self is LargeBody.KEY_BACKUP:
            return settings.max_key_backup_bytes * 4 // 3 + 1024  # base64 in JSON inflates it by a third
        if self is LargeBody.CIRCLE_EPOCH:
            return EPOCH_UPLOAD_MAX_BYTES
        return settings.max_case_body_bytes


def large_body(kind: LargeBody) -> Any:
    """Declares that a route takes a body of `kind`, larger than the default limit."""

    async def declare() -> None:
        return None

    declare.large_body = kind  # type: ignore[attr-defined]
    return Depends(declare)


def declared_large_body(route: APIRoute) -> LargeBody | None:
    for dependency in route.dependant.dependencies:
        kind = getattr(dependency.call, "large_body", None)
        if kind is not None:
            return kind
    return None


def limits_by_route(app: FastAPI, settings: Settings) -> Callable[[str, str], int]:
    """(method, path) -> the body limit of the route that will serve it."""
    routes: list[tuple[re.Pattern[str], frozenset[str], int]] = []
    for route in api_routes(app):
        if (kind := declared_large_body(route)) is not None:
            routes.append((route.path_regex, frozenset(route.methods or ()), kind.limit(settings)))

    def limit_for(method: str, path: str) -> int:
        for pattern, methods, limit in routes:
            if method in methods and pattern.match(path):
                return limit
        return settings.max_body_bytes

    return limit_for

"""What a request carries besides its transaction: its audit trail, declared by the route, and the checks
every route gets (the URL's storability is checked before routing: app.runtime.middleware)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Depends, Request

from app.audit.records import AuditTrail, Purpose, Resource, recorded_code, recorded_id

F = TypeVar("F", bound=Callable[..., Any])


def trail_of(request: Request) -> AuditTrail:
    return request.state.audit_trail


def before_transaction(dependency: F) -> F:
    """Marks a slow dependency (a password hash, a DNS lookup) that must be solved before the request's
    transaction opens, so that it never holds SQLite's one writer. FastAPI solves a route's dependencies in
    the order of its parameters; tests/test_request_runtime.py walks every route and fails when a marked
    dependency would be solved after the transaction."""
    dependency.runs_before_transaction = True  # type: ignore[attr-defined]
    return dependency


def inline_read() -> Any:
    """Declares a light read whose queries run on the event loop on SQLite (app.runtime.unit_of_work): the
    hottest reads, a few indexed lookups each. Anything heavier stays on a worker thread."""

    async def declare() -> None:
        return None

    declare.inline_read = True  # type: ignore[attr-defined]
    return Depends(declare)


def declares_inline_read(route: object) -> bool:
    dependant = getattr(route, "dependant", None)
    return dependant is not None and any(
        getattr(dependency.call, "inline_read", False) for dependency in dependant.dependencies
    )


def _path_uuid(request: Request, name: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.path_params[name]) if name else None
    except (KeyError, ValueError):  # a malformed id is refused by validation; the record keeps none
        return None


# How a path parameter may enter a record (app.audit.records); any other is an id, recorded as a UUID.
_RECORDED_SHAPES = {"code": recorded_code}


def audited(
    action: str,
    *,
    resource: str | None = None,
    id_param: str | None = None,
    case_param: str | None = None,
    purpose: Purpose = Purpose.TREATMENT,
) -> Any:
    """Declares the audit action of a route; the resource id (and the case it belongs to, so that the
    record can be found by case) are taken from the path when named."""

    async def declare(request: Request) -> None:
        trail = trail_of(request)
        trail.action, trail.purpose = action, purpose
        if resource is not None:
            sent = request.path_params.get(id_param) if id_param else None
            trail.resource = Resource(
                type=resource,
                id=None if sent is None else _RECORDED_SHAPES.get(id_param or "", recorded_id)(str(sent)),
                case_id=_path_uuid(request, case_param),
            )

    declare.audit_action = action  # type: ignore[attr-defined]
    return Depends(declare)


def unaudited(reason: str) -> Any:
    """Declares, visibly, that a route records nothing (health probes, public keys)."""

    async def declare() -> None:
        return None

    declare.audit_action = None  # type: ignore[attr-defined]
    declare.unaudited_reason = reason  # type: ignore[attr-defined]
    return Depends(declare)

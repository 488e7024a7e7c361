"""Route matching that costs one string comparison per router a request does not belong to.

FastAPI matches a request by trying every route of every included router in turn, and a matched router's
routes once more to dispatch, so each request paid for matching the routes declared before its own: a
hundred microseconds, as much as a whole request of a bare FastAPI app (docs/benchmarks.md). Each router is
included behind a test of its path prefix instead.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope


class PrefixGate(APIRouter):
    """A router holding one other, whose routes it tries only for paths under that router's prefix."""

    def __init__(self, router: APIRouter) -> None:
        super().__init__()
        # The literal part: a prefix with a path parameter (/v1/cases/{case_id}) is cut before it.
        self.path_prefix = router.prefix.split("{", 1)[0]
        self.include_router(router)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not get_route_path(scope).startswith(self.path_prefix):
            return Match.NONE, {}
        return super().matches(scope)


def include_routers(app: FastAPI, *routers: APIRouter) -> None:
    for router in routers:
        app.include_router(PrefixGate(router) if router.prefix else router)

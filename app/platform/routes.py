"""The app's routes as FastAPI declared them, for checks made over every route at start-up and in tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every APIRoute, including those of included routers (FastAPI includes them lazily)."""
    found: list[APIRoute] = []

    def walk(routes: Iterable[Any]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            elif hasattr(route, "original_router"):
                # Checks made over these routes (body limits, the order of dependencies) read each route as
                # declared: an include that adds a prefix or dependencies but the app's would escape them.
                context = route.include_context
                if context.prefix or any(dep not in app.router.dependencies for dep in context.dependencies):
                    raise RuntimeError("routers are included without a prefix or dependencies of their own")
                walk(route.original_router.routes)

    walk(app.router.routes)
    return found

"""The request runtime's rules over every route: one way to write a handler, slow dependencies solved before
the transaction opens, large bodies declared per route."""

from __future__ import annotations

import inspect
from typing import Annotated

import anyio
import pytest
from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.deps import Db
from app.platform.routes import api_routes
from app.runtime.body_limits import LargeBody, declared_large_body
from app.runtime.context import before_transaction, declares_inline_read
from app.runtime.database import new_session
from app.runtime.unit_of_work import RequestDb, unit_of_work


def solve_order(dependant: Dependant) -> list:
    """The dependencies' callables in the order FastAPI calls them: each one's own dependencies first, in
    the order they are declared (route `dependencies=[...]`, then parameters), each called once."""
    order: list = []

    def visit(node: Dependant) -> None:
        for sub in node.dependencies:
            if sub.call in order:
                continue
            visit(sub)
            order.append(sub.call)

    visit(dependant)
    return order


def late_slow_dependencies(route: APIRoute) -> list[str]:
    order = solve_order(route.dependant)
    if unit_of_work not in order:
        return []
    opens = order.index(unit_of_work)
    return [
        call.__name__
        for index, call in enumerate(order)
        if getattr(call, "runs_before_transaction", False) and index > opens
    ]


def test_every_handler_is_async_def(app):
    """One way to write a handler: `async def`, database work through `await db.run(...)`."""
    plain = [route.path for route in api_routes(app) if not inspect.iscoroutinefunction(route.endpoint)]
    assert plain == []


def test_slow_dependencies_are_solved_before_the_transaction(app):
    late = {route.path: names for route in api_routes(app) if (names := late_slow_dependencies(route))}
    assert late == {}
    marked = {
        call.__name__
        for route in api_routes(app)
        for call in solve_order(route.dependant)
        if getattr(call, "runs_before_transaction", False)
    }
    # The password work of login and registration, the webhook target's DNS lookup, the token check.
    assert {"_checked_password", "_hashed_password", "_target", "token_claims"} <= marked


@before_transaction
async def slow_lookup() -> str:
    return "resolved"


def test_a_slow_dependency_after_the_session_is_caught():
    probe = FastAPI()

    @probe.post("/reordered")
    async def reordered(db: Db, lookup: Annotated[str, Depends(slow_lookup)]) -> None:
        return None

    @probe.post("/in-order")
    async def in_order(lookup: Annotated[str, Depends(slow_lookup)], db: Db) -> None:
        return None

    routes = {route.path: route for route in api_routes(probe)}
    assert late_slow_dependencies(routes["/reordered"]) == ["slow_lookup"]
    assert late_slow_dependencies(routes["/in-order"]) == []


def test_routes_that_take_large_bodies_declare_them(app):
    declared = {
        (method, route.path): kind
        for route in api_routes(app)
        if (kind := declared_large_body(route)) is not None
        for method in route.methods
    }
    assert declared == {
        ("POST", "/v1/cases"): LargeBody.SEALED_CASE_CONTENT,
        ("POST", "/v1/cases/{case_id}/messages"): LargeBody.SEALED_CASE_CONTENT,
        ("POST", "/v1/cases/{case_id}/envelopes"): LargeBody.SEALED_CASE_CONTENT,
        ("POST", "/v1/cases/{case_id}/attachments"): LargeBody.ATTACHMENT,
        ("PUT", "/v1/me/key-backup"): LargeBody.KEY_BACKUP,
        ("POST", "/v1/circles/{circle_id}/epochs"): LargeBody.CIRCLE_EPOCH,
    }


def test_only_the_light_hot_reads_run_on_the_event_loop(app):
    inline = {
        (method, route.path)
        for route in api_routes(app)
        if declares_inline_read(route)
        for method in route.methods
    }
    assert inline == {("GET", "/v1/cases"), ("GET", "/v1/cases/queue"), ("GET", "/v1/cases/{case_id}")}


def test_a_read_handler_runs_its_database_work_in_one_call(engine):
    """A second call would see another snapshot on PostgreSQL: refused on every backend alike."""
    db = RequestDb(new_session(engine), reading=True, inline=True)

    async def twice() -> None:
        await db.run(lambda session: None)
        await db.run(lambda session: None)

    with pytest.raises(RuntimeError, match="one call"):
        anyio.run(twice)


def test_the_unit_of_work_has_one_declaration(app):
    """Declared with another scope it would be solved twice and a SQLite write would wait on itself."""
    declarations = {
        (id(sub.call), sub.scope)
        for route in api_routes(app)
        for sub in _dependants(route.dependant)
        if sub.call is unit_of_work
    }
    assert declarations == {(id(unit_of_work), "function")}


def _dependants(dependant: Dependant) -> list[Dependant]:
    return [node for sub in dependant.dependencies for node in (sub, *_dependants(sub))]

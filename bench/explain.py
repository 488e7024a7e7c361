"""Query plans of the list and read paths, taken from the statements the services really run: each service
call executes under a listener that records its SQL, then each statement is explained with its parameters
(SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN ANALYZE with buffers, so rows touched show)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session

from app.audit import inspection
from app.audit.query import EventFilter
from app.authz.principal import Principal
from app.models.base import utcnow
from app.models.users import Role, User
from app.services import case_lists, cases
from bench.seed import QUEUE_SPECIALTY, Person


@contextmanager
def _recording(engine: Engine):
    statements: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _principal(session: Session, person: Person, roles: set[Role], specialties: set[str]) -> Principal:
    user = session.get(User, person.id)
    assert user is not None
    return Principal(
        user=user,
        roles=frozenset(roles),
        specialties=frozenset(specialties),
        session_id=uuid.uuid4(),
        amr=frozenset({"pwd"}),
    )


def _explain(engine: Engine, statement: str, parameters: Any) -> list[str]:
    postgres = engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " if postgres else "EXPLAIN QUERY PLAN "
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(prefix + statement, parameters).all()
        connection.rollback()
    if postgres:
        return [row[0] for row in rows]
    return [f"{'  ' * _depth(rows, row)}{row[-1]}" for row in rows]


def _depth(rows: list, row: Any) -> int:
    parents = {found[0]: found[1] for found in rows}
    depth, parent = 0, row[1]
    while parent in parents:
        depth, parent = depth + 1, parents[parent]
    return depth


def plans(
    engine: Engine, reader: Person, cardiologist: Person, case_id: str, deep_cursor: str
) -> dict[str, list]:
    """{query name: [(sql, plan lines), ...]} for the queue, the case list, a case read and an audit query."""
    with Session(engine) as session:
        specialist = _principal(session, cardiologist, {Role.SPECIALIST}, {QUEUE_SPECIALTY})
        physician = _principal(session, reader, {Role.PHYSICIAN}, set())
        calls: dict[str, Callable[[], object]] = {
            "queue_first": lambda: case_lists.queue(
                session, specialist, specialty=QUEUE_SPECIALTY, limit=50, cursor=None
            ),
            "queue_deep": lambda: case_lists.queue(
                session, specialist, specialty=QUEUE_SPECIALTY, limit=50, cursor=deep_cursor
            ),
            "case_list": lambda: case_lists.list_cases(
                session,
                physician,
                status=None,
                specialty=None,
                is_overdue=None,
                limit=50,
                cursor=None,
                now=utcnow(),
            ),
            "case_read": lambda: cases.read(session, physician, uuid.UUID(case_id), utcnow()),
            "audit_query": lambda: inspection.list_events(
                session, EventFilter(case=uuid.UUID(case_id)), limit=100, cursor=None
            ),
        }
        recorded = {}
        for name, call in calls.items():
            with _recording(engine) as statements:
                call()
            recorded[name] = statements
        session.rollback()
    return {
        name: [{"sql": sql, "plan": _explain(engine, sql, parameters)} for sql, parameters in statements]
        for name, statements in recorded.items()
    }

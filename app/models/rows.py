"""Core inserts of rows, for the busiest write paths: no ORM unit of work, no per-row bookkeeping.

Each statement is built once per table, so SQLAlchemy computes its cache key once and finds its compiled
form at once. The rows must carry every column the table needs: a model's Python-side defaults
(`default_factory`) are not applied here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Executable, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from app.models.base import table_of


@functools.cache
def _insert(table: Table) -> Executable:
    return insert(table)


@functools.cache
def _insert_unless_taken(table: Table, dialect: str) -> Executable:
    statement = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    keys = [column.name for column in table.primary_key]
    # An INSERT's row count is kept only on request (psycopg's cursor is closed before it is read).
    return statement.on_conflict_do_nothing(index_elements=keys).execution_options(preserve_rowcount=True)


def insert_rows(session: Session, model: type[SQLModel], rows: Sequence[Mapping[str, Any]]) -> None:
    """One statement for all the rows (an executemany: psycopg sends them in one exchange); none for none.
    Every row has the same keys."""
    if rows:
        session.connection().execute(_insert(table_of(model)), list(rows))


def insert_unless_taken(session: Session, model: type[SQLModel], values: Mapping[str, Any]) -> bool:
    """Inserts one row whose key the client chose (no ORM flush, no lookup first); False, and nothing
    written, when its primary key is taken, committed or by a concurrent transaction that then commits
    (PostgreSQL waits for it). The transaction stays usable, so the caller can find out who holds the key."""
    connection = session.connection()
    statement = _insert_unless_taken(table_of(model), connection.dialect.name)
    return connection.execute(statement, dict(values)).rowcount == 1

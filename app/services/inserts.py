"""Inserting rows whose keys the client chose (case, message, attachment ids)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from app.errors import AppError


def flush_new(session: Session, conflict: AppError) -> None:
    """Inserts now; a key taken meanwhile by a concurrent request is the given conflict, not a 500."""
    try:
        session.flush()
    except IntegrityError:
        raise conflict from None


def insert_unless_taken(session: Session, model: type[SQLModel], values: dict[str, Any]) -> bool:
    """Inserts one row with a Core statement (no ORM flush, no lookup first); False, and nothing written,
    when its primary key is taken, committed or by a concurrent transaction that then commits (PostgreSQL
    waits for it). The transaction stays usable, so the caller can find out who holds the key."""
    table = model.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    statement: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(table) if connection.dialect.name == "postgresql" else sqlite.insert(table)
    )
    keys = [column.name for column in table.primary_key]
    # An INSERT's row count is kept only on request (psycopg's cursor is closed before it is read).
    inserting = statement.values(values).on_conflict_do_nothing(index_elements=keys)
    return connection.execute(inserting.execution_options(preserve_rowcount=True)).rowcount == 1

"""Inserting rows whose keys the client chose through the ORM (circle posts, key backups, ...); the case
write path uses Core (app.models.rows.insert_unless_taken)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.errors import AppError


def flush_new(session: Session, conflict: AppError) -> None:
    """Inserts now; a key taken meanwhile by a concurrent request is the given conflict, not a 500."""
    try:
        session.flush()
    except IntegrityError:
        raise conflict from None

"""Keyset orders over (timestamp, id) column pairs, with their opaque cursors (app/platform/pagination.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, tuple_

from app.platform.pagination import InvalidCursor, Page, decode_cursor, page_of


@dataclass(frozen=True)
class Keyset:
    """Rows ordered by a timestamp, ties broken by the unique id."""

    # Mapped columns (InstrumentedAttribute): SQLModel types a table's class attributes as their values.
    time: Any
    id: Any
    descending: bool = False

    @property
    def _names(self) -> tuple[str, str]:
        return (self.time.key, self.id.key)

    def order_by(self) -> tuple[Any, Any]:
        return (self.time.desc(), self.id.desc()) if self.descending else (self.time, self.id)

    def after(self, cursor: str) -> ColumnElement[bool]:
        """Rows strictly after the cursor's position in this order."""
        position = decode_cursor(cursor, self._names)
        try:
            time = datetime.fromisoformat(position[self.time.key])
            row_id = uuid.UUID(position[self.id.key])
            if time.tzinfo is None:
                raise InvalidCursor()
            time = time.astimezone(UTC)  # out of range near year 1 or 9999: refused here, not by the DB
        except (TypeError, ValueError, OverflowError) as error:
            raise InvalidCursor() from error
        # A row-value comparison, not the equivalent OR of two conditions: SQLite (and PostgreSQL) seek an
        # index on (..., time, id) to the cursor with it, where the OR form walks every row before it.
        row = tuple_(self.time, self.id)
        return row < (time, row_id) if self.descending else row > (time, row_id)

    def page(self, rows: list, limit: int) -> Page:
        """`rows` were fetched with limit + 1 in this order."""
        return page_of(
            rows,
            limit,
            lambda row: {
                self.time.key: getattr(row, self.time.key).isoformat(),
                self.id.key: str(getattr(row, self.id.key)),
            },
        )

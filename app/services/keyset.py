"""Keyset orders over (timestamp, id) column pairs, with their opaque cursors (app/services/pagination.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from app.services.pagination import InvalidCursor, Page, decode_cursor, page_of


@dataclass(frozen=True)
class Keyset:
    """Rows ordered by a timestamp, ties broken by the unique id."""

    time: InstrumentedAttribute
    id: InstrumentedAttribute
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
        except (TypeError, ValueError) as error:
            raise InvalidCursor() from error
        if time.tzinfo is None:
            raise InvalidCursor()
        if self.descending:
            return or_(self.time < time, and_(self.time == time, self.id < row_id))
        return or_(self.time > time, and_(self.time == time, self.id > row_id))

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

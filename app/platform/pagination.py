"""Opaque keyset cursors: a page continues after the last row seen, never with OFFSET."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from app.errors import InvalidInput

MAX_CURSOR_CHARS = 512
T = TypeVar("T")


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"
    title = "The page cursor is not valid"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).rstrip(b"=").decode()


def decode_cursor(cursor: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor()
    try:
        position = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as error:
        raise InvalidCursor() from error
    if not isinstance(position, dict) or set(position) != set(keys):
        raise InvalidCursor()
    return position


def page_of(rows: list[T], limit: int, position_of: Callable[[T], dict[str, Any]]) -> Page[T]:
    """`rows` was fetched with limit + 1 so that the existence of a next page is known without a count."""
    items = rows[:limit]
    next_cursor = encode_cursor(position_of(items[-1])) if len(rows) > limit else None
    return Page(items=items, next_cursor=next_cursor)

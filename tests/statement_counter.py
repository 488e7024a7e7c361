"""Counting the SQL statements (database round trips) a request makes, for tests that pin them.

Only the request's own statements count: those of the background loops (sequencers, webhook delivery,
deadlines, the LISTEN thread), which run on threads of their own, are left out. BEGIN, COMMIT and ROLLBACK
are counted too, as they are round trips on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, event

from app.platform.background import BackgroundLoop


def _loop_names(kind: type[BackgroundLoop]) -> set[str]:
    names = {getattr(kind, "name", "")}
    for sub in kind.__subclasses__():
        names |= _loop_names(sub)
    return names - {""}


@dataclass
class Statements:
    """What one request sent to the database, in order: SQL statements and transaction boundaries."""

    sent: list[str] = field(default_factory=list)

    @property
    def sql(self) -> list[str]:
        return [text for text in self.sent if text not in ("BEGIN", "COMMIT", "ROLLBACK")]

    def __str__(self) -> str:
        return "\n".join(f"{i:3} {text[:160]}" for i, text in enumerate(self.sent, 1))


@contextmanager
def counting(*engines: Engine) -> Iterator[Statements]:
    """Every statement the engines run outside the background loops' threads until the block ends."""
    # Imported modules define the loops; the names are collected when counting starts.
    background = _loop_names(BackgroundLoop)
    seen = Statements()

    def ours() -> bool:
        return threading.current_thread().name not in background

    def statement(_conn, _cursor, text, _params, _context, _executemany) -> None:
        if ours():
            seen.sent.append(" ".join(text.split()))

    def boundary(name: str):
        def listener(_conn) -> None:
            if ours():
                seen.sent.append(name)

        return listener

    listeners = [
        ("before_cursor_execute", statement),
        ("begin", boundary("BEGIN")),
        ("commit", boundary("COMMIT")),
        ("rollback", boundary("ROLLBACK")),
    ]
    unique = list({id(engine): engine for engine in engines}.values())
    for engine in unique:
        for name, listener in listeners:
            event.listen(engine, name, listener)
    try:
        yield seen
    finally:
        for engine in unique:
            for name, listener in listeners:
                event.remove(engine, name, listener)

"""Counting the SQL statements a request makes, and its round trips to PostgreSQL, for tests that pin them.

Only the request's own statements count: those of the background loops (sequencers, webhook delivery,
deadlines, the LISTEN thread), which run on threads of their own, are left out. BEGIN, COMMIT and ROLLBACK
are counted too, as they are round trips on PostgreSQL.
"""

from __future__ import annotations

import tempfile
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


@dataclass
class RoundTrips:
    """The exchanges with a PostgreSQL server (each ends with the server's ReadyForQuery), and what the
    client sent in them, from libpq's protocol trace."""

    trace: list[str] = field(default_factory=list)

    def _exchanges(self) -> list[list[str]]:
        """What the client sent in each exchange (its trace lines)."""
        exchanges: list[list[str]] = [[]]
        for line in self.trace:
            direction, _, message = [*line.split("\t"), "", ""][:3]
            if direction == "F":
                exchanges[-1].append(line)
            elif message == "ReadyForQuery":
                exchanges.append([])
        return exchanges[:-1]

    @property
    def ran(self) -> list[list[str]]:
        """The round trips that ran something. psycopg also prepares a statement once it ran 5 times on a
        connection (a Parse of its own, then the statement by name, with no Parse in its round trip): once per
        connection and statement, so left out here, where it would depend on which pooled connection a
        request got."""
        return [
            sent
            for sent in self._exchanges()
            if any([*line.split("\t"), "", ""][2] in ("Execute", "Query") for line in sent)
        ]

    @property
    def count(self) -> int:
        return len(self.ran)

    @property
    def sent(self) -> list[str]:
        return [
            line for line in self.trace if line.startswith("F\t") and ("Query" in line or "Parse" in line)
        ]

    def __str__(self) -> str:
        return "\n".join(line[:160] for line in self.sent)


@contextmanager
def round_trips(engine: Engine) -> Iterator[RoundTrips]:
    """Every round trip of the connections the engine's pool hands out, outside the background loops'
    threads, until the block ends (PostgreSQL only: libpq's trace, read when the block ends)."""
    from psycopg import pq

    background = _loop_names(BackgroundLoop)
    seen = RoundTrips()
    traced: set[int] = set()

    with tempfile.TemporaryFile() as trace:

        def checkout(dbapi_connection, _record, _proxy) -> None:
            if threading.current_thread().name not in background:
                traced.add(id(dbapi_connection))
                dbapi_connection.pgconn.trace(trace.fileno())
                dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

        def checkin(dbapi_connection, _record) -> None:
            if id(dbapi_connection) in traced:
                traced.discard(id(dbapi_connection))
                dbapi_connection.pgconn.untrace()

        event.listen(engine, "checkout", checkout)
        event.listen(engine, "checkin", checkin)
        try:
            yield seen
        finally:
            event.remove(engine, "checkout", checkout)
            event.remove(engine, "checkin", checkin)
        trace.seek(0)
        seen.trace.extend(trace.read().decode(errors="replace").splitlines())

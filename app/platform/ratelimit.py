"""Per-caller request rate limits: token buckets, in PostgreSQL when it is the database, else in memory.

On PostgreSQL every API node and worker draws on one budget per caller: one row per caller and limit, taken
with a single UPSERT in autocommit on a small pool of its own (SharedRateLimiter). That is one short write
per limited request, which PostgreSQL absorbs (bench/ratelimit_bench.py, docs/benchmarks.md). On SQLite,
which has one writer and serves one node, a counter row would queue every write behind another write: the
buckets stay in the process's memory (RateLimiter), so N workers allow up to N times the rate and a restart
forgets them. The lockout after failed logins lives in the database on both (login_throttles), so it
holds across nodes and restarts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import anyio
from sqlalchemy import Connection, Engine, create_engine, delete, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from app.config import Settings
from app.errors import TooManyRequests
from app.models.limits import RateLimitBucket

# Buckets left full carry no information; past this many keys they are dropped so memory stays bounded.
MAX_KEYS = 10_000


class RateLimited(TooManyRequests):
    code = "rate_limited"
    title = "Too many requests: slow down"


@dataclass
class _Bucket:
    tokens: float
    updated: float


class Limiter(Protocol):
    async def take(self, key: str) -> None:
        """Takes a token for `key`, or raises RateLimited with the seconds until one is back."""
        ...


class RateLimiter:
    """`per_minute` requests a minute on average, `burst` at once, in this process's memory; a rate of 0
    disables the limit."""

    def __init__(
        self, per_minute: float, burst: int, what: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.what = what
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Takes a token for `key`, or raises RateLimited with the seconds until one is back."""
        if self.rate <= 0:
            return
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_KEYS:
                    self._forget_full(now)
                bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = (1 - bucket.tokens) / self.rate
        raise RateLimited(f"too many {self.what}; retry later", retry_after=math.ceil(wait))

    async def take(self, key: str) -> None:
        self.check(key)

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= MAX_KEYS:  # all busy: forgetting one only lets that caller start afresh
            self._buckets.pop(next(iter(self._buckets)))


# The generic cell rate algorithm in one statement: a request is allowed when, its token taken, the bucket
# is full again no later than `burst` tokens' time from now; only then is the row written. The outer query
# reads the row as it was before (a data-modifying CTE's effect is not visible to it), which tells a refused
# caller when its next token is back. now() is the statement's time in autocommit: one clock for all nodes.
_TAKE = text(
    """
    WITH taken AS (
        INSERT INTO rate_limit_buckets AS bucket (key, full_at)
        VALUES (:key, extract(epoch FROM now()) + :interval)
        ON CONFLICT (key) DO UPDATE
        SET full_at = greatest(bucket.full_at, extract(epoch FROM now())) + :interval
        WHERE greatest(bucket.full_at, extract(epoch FROM now())) + :interval
            <= extract(epoch FROM now()) + :window
        RETURNING full_at
    )
    SELECT
        EXISTS (SELECT FROM taken) AS allowed,
        (SELECT full_at FROM rate_limit_buckets WHERE key = :key) + :interval - :window
            - extract(epoch FROM now()) AS wait
    """
)


class SharedRateLimiter:
    """The same limit as RateLimiter, its buckets rows of rate_limit_buckets shared by every node."""

    def __init__(self, engine: Engine, name: str, per_minute: float, burst: int, what: str) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.window = burst * self.interval
        self.name, self.what = name, what
        self._engine = engine

    def check(self, key: str) -> None:
        if self.interval <= 0:
            return
        parameters = {"key": f"{self.name}/{key}", "interval": self.interval, "window": self.window}
        try:
            allowed, wait = self._take(parameters)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            # The database restarted since this pooled connection was opened (no pre-ping here: it would
            # double the round trips of every check); the pool has dropped its connections: once more.
            allowed, wait = self._take(parameters)
        if not allowed:
            raise RateLimited(f"too many {self.what}; retry later", retry_after=max(1, math.ceil(wait)))

    def _take(self, parameters: dict[str, object]) -> tuple[bool, float]:
        with self._engine.connect() as connection:
            return tuple(connection.execute(_TAKE, parameters).one())

    async def take(self, key: str) -> None:
        # A blocking round trip: off the event loop.
        await anyio.to_thread.run_sync(self.check, key)


def forget_full_buckets(connection: Connection, now: float) -> int:
    """Deletes the rows of buckets full by `now` (they mean the same as no row); how many."""
    return connection.execute(delete(RateLimitBucket).where(col(RateLimitBucket.full_at) < now)).rowcount


def create_limits_engine(settings: Settings) -> Engine:
    """Its own small pool, in autocommit: a check never waits for a connection that a request holds (the
    request that holds one may be the one checking), and never joins a request's transaction (a rollback
    would give the token back). Without synchronous_commit: a check does not wait for its WAL to reach the
    disk (about 10 ms a check here, bench/ratelimit.py); a database crash may forget the last moments of
    counting, which an abuse guard can afford."""
    return create_engine(
        settings.resolved_database_url,
        pool_size=4,
        max_overflow=12,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        connect_args={"options": "-c synchronous_commit=off"},
    )


@dataclass(frozen=True)
class RateLimits:
    writes: Limiter
    audit_exports: Limiter
    engine: Engine | None = None  # the shared limiters' pool, if any

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        exports_per_minute = settings.audit_exports_per_hour / 60
        if settings.is_sqlite:
            return cls(
                writes=RateLimiter(settings.write_rate_per_minute, settings.write_burst, "writes"),
                audit_exports=RateLimiter(exports_per_minute, settings.audit_export_burst, "audit exports"),
            )
        engine = create_limits_engine(settings)
        return cls(
            writes=SharedRateLimiter(
                engine, "writes", settings.write_rate_per_minute, settings.write_burst, "writes"
            ),
            audit_exports=SharedRateLimiter(
                engine, "audit_exports", exports_per_minute, settings.audit_export_burst, "audit exports"
            ),
            engine=engine,
        )

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

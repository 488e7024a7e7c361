"""Per-caller request rate limits: token buckets held in this process's memory.

Why memory and not the database: a limit is checked on every write, and a counter row would turn each of
them into one more write on the one database (SQLite has a single writer). The price: each API process
keeps its own buckets, so N workers behind a load balancer allow up to N times the configured rate, and a
restart forgets them. That is acceptable for an abuse guard; the lockout after failed logins, which must
hold across workers and restarts, lives in the database (login_throttles).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.config import Settings
from app.errors import TooManyRequests

# Buckets left full carry no information; past this many keys they are dropped so memory stays bounded.
MAX_KEYS = 10_000


class RateLimited(TooManyRequests):
    code = "rate_limited"
    title = "Too many requests: slow down"


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`per_minute` requests a minute on average, `burst` at once; a rate of 0 disables the limit."""

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


@dataclass(frozen=True)
class RateLimits:
    writes: RateLimiter
    audit_exports: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            writes=RateLimiter(settings.write_rate_per_minute, settings.write_burst, "writes"),
            audit_exports=RateLimiter(
                settings.audit_exports_per_hour / 60, settings.audit_export_burst, "audit exports"
            ),
        )

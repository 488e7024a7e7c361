"""What a rate limit check costs on the hot path: the in-memory bucket (SQLite) against the bucket row that
every node shares on PostgreSQL (one UPSERT on the limiter's own autocommit pool).

    python -m bench.ratelimit --database-url postgresql+psycopg://... [--checks 5000] [--threads 8]

Each check takes a token for one of 1,000 callers (a budget none of them exhausts), sequentially and then
from several threads at once, as the API's worker threads would. Results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from alembic import command
from sqlalchemy import delete

from app.cli import alembic_config
from app.config import Settings
from app.models.limits import RateLimitBucket
from app.platform.ratelimit import RateLimiter, SharedRateLimiter, create_limits_engine
from bench import report

CALLERS = 1000


def _timed(check, checks: int, offset: int = 0) -> list[float]:
    latencies = []
    for number in range(checks):
        started = time.perf_counter()
        check(f"user:{(number + offset) % CALLERS}")
        latencies.append(time.perf_counter() - started)
    return latencies


def _concurrent(check, checks: int, threads: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    share = checks // threads

    def work(offset: int) -> None:
        latencies.extend(_timed(check, share, offset))

    workers = [threading.Thread(target=work, args=(n * share,)) for n in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(latencies) / (time.perf_counter() - started), latencies


def _row(name: str, mode: str, rate: float, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50, p99 = statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99)] * 1000
    return f"| {name} | {mode} | {rate:,.0f} | {p50:.3f} | {p99:.3f} |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ratelimit", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database of the benchmarks")
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    settings = Settings(database_url=args.database_url)
    command.upgrade(alembic_config(settings), "head")
    engine = create_limits_engine(settings)
    limiters = {
        "memory": RateLimiter(per_minute=60_000_000, burst=1_000_000, what="writes"),
        "postgresql": SharedRateLimiter(engine, "bench", 60_000_000, 1_000_000, "writes"),
    }
    load_start = report.load_average()
    rows = []
    for name, limiter in limiters.items():
        _timed(limiter.check, 200)  # warm up: connections, plans
        started = time.perf_counter()
        latencies = _timed(limiter.check, args.checks)
        rows.append(_row(name, "1 thread", args.checks / (time.perf_counter() - started), latencies))
        rate, latencies = _concurrent(limiter.check, args.checks, args.threads)
        rows.append(_row(name, f"{args.threads} threads", rate, latencies))
    with engine.begin() as connection:
        connection.execute(delete(RateLimitBucket).where(RateLimitBucket.key.startswith("bench/")))
    engine.dispose()
    print(f"load average: {load_start} at start, {report.load_average()} at end")
    print("| bucket | callers | checks/s | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

"""`python -m bench.run`: migrate a fresh database, seed it, run every scenario, write the results.

    python -m bench.run                                   # SQLite, small scale (a few minutes)
    python -m bench.run --scale full                      # 10k -> 100k -> 1M cases, 1M audit records
    python -m bench.run --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test_bench

Order: the audit log's batch jobs and the client-side sealing run first, with no server; then for each case
count of the series the bulk cases grow, a server starts, and the read scenarios run; at the main size every
other HTTP scenario runs too. Results go to bench/results/<database>-<scale>-<time>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app.config import Environment, Settings
from app.platform.keyring import load_server_keys
from bench import audit_bench, client_crypto, explain, report, seed
from bench.fixtures import create_cases, deep_queue_cursor, tokens, upload_attachment
from bench.harness import CONNECTIONS, Load, Result, Timing, measure, running_server, wrk
from bench.scenarios import Scenario, Targets, read_scenarios, references, token_ceiling, write_scenarios

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
READ_CASES = 100
WRITTEN_CASES = 20
QUEUE_DEPTH = 0.9
PROBE_INTERVAL = 0.05


@dataclass(frozen=True)
class Scale:
    series: tuple[int, ...]  # case counts at which the reads are measured
    main_size: int  # the case count at which every other scenario runs
    audit_records: int
    timing: Timing


SCALES = {
    "small": Scale(series=(10_000,), main_size=10_000, audit_records=100_000, timing=Timing(3, 4, 1)),
    "full": Scale(
        series=(10_000, 100_000, 1_000_000),
        main_size=100_000,
        audit_records=1_000_000,
        timing=Timing(3, 8, 2),
    ),
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=None, help="default: a SQLite file in the run's data folder"
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--runs", type=int, help="wrk runs per scenario (default: the scale's)")
    parser.add_argument("--seconds", type=int, help="seconds per wrk run (default: the scale's)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--body-rate",
        type=int,
        default=1000,
        help="creating scenarios get enough sealed bodies for this many requests per second",
    )
    parser.add_argument("--only", nargs="*", help="run only these HTTP scenarios (keys), for profiling")
    parser.add_argument(
        "--audit-only",
        action="store_true",
        help="run only the audit log's batch jobs (no server, no client crypto): for work on them",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the data folder and request bodies (gigabytes at full scale)",
    )
    return parser.parse_args(argv)


def _server_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "CONFRERE_ENVIRONMENT": settings.environment.value,
        "CONFRERE_DATA_DIR": str(settings.data_dir),
        "CONFRERE_DATABASE_URL": settings.resolved_database_url,
        # A run lasts longer than the default 10 minutes of an access token; one hour is the maximum.
        "CONFRERE_ACCESS_TOKEN_TTL_SECONDS": "3600",
        # One user creates hundreds of cases a second here: the per-user abuse guard would refuse them.
        "CONFRERE_WRITE_RATE_PER_MINUTE": "0",
        # The deadline job would spend the run notifying the synthetic history's overdue cases.
        "CONFRERE_JOBS_IN_PROCESS": "false",
    }


class Runner:
    def __init__(self, args: argparse.Namespace, scale: Scale, work: Path) -> None:
        self.args = args
        self.scale = scale
        self.timing = Timing(
            args.runs or scale.timing.runs, args.seconds or scale.timing.seconds, scale.timing.warmup
        )
        self.work = work
        self.settings = Settings(
            environment=Environment.DEVELOPMENT, data_dir=work / "data", database_url=args.database_url
        )
        self.env = _server_env(self.settings)
        self.engine = seed.seed_engine(self.settings)
        self.rng = random.Random(2026)
        self.results: dict[str, Any] = {"http": [], "series": {}, "ceilings": {}}

    def _wanted(self, scenario: Scenario) -> bool:
        return not self.args.only or scenario.key in self.args.only

    def _measure(self, url: str, scenario: Scenario, ceiling: Load) -> Result:
        result, ceiling_result = measure(scenario.title, url, scenario.load, ceiling, self.timing, self.work)
        print(
            f"  {scenario.title}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
            f"p99 {result.p99_ms:.1f} ms, {result.ratio:.0%} of token-only "
            f"({ceiling_result.rps:,.0f} req/s), errors {result.errors}",
            flush=True,
        )
        return result

    def run(self) -> dict[str, Any]:
        started = datetime.now(UTC).isoformat(timespec="seconds")
        load_start = report.load_average()
        print(f"database: {self.settings.resolved_database_url}", flush=True)
        seed.fresh_database(self.settings)
        keys = load_server_keys(self.settings)
        self.people = seed.cast(self.engine, keys.sealer, seed.specialty_codes(self.engine))
        self._grow_cases(self.scale.series[0])
        self._audit_jobs()
        if not self.args.audit_only:
            self._clients_and_server()
        self.results |= {
            "machine": report.machine(self.engine),
            "scale": self.args.scale,
            "started": started,
            "load_average": {"start": load_start, "end": report.load_average()},
            "timing": self.timing.__dict__,
            "connections": CONNECTIONS,
            "workers": self.args.workers,
            "main_size": self.scale.main_size,
            "largest_size": self.scale.series[-1],
        }
        return self.results

    def _clients_and_server(self) -> None:
        print("client-side sealing", flush=True)
        self.results["client_crypto"] = client_crypto.costs()
        self.targets: Targets | None = None
        for size in self.scale.series:
            self._grow_cases(size)
            self._http(size)
        self.results["plans"] = explain.plans(
            self.engine,
            self.people.reader,
            self.people.cardiologists[0],
            self.targets.read_cases[0],
            self.targets.deep_cursor,
        )

    def _grow_cases(self, size: int) -> None:
        missing = size - seed.count_cases(self.engine)
        if missing > 0:
            print(f"seeding {missing:,} cases (to {size:,})", flush=True)
            seed.bulk_cases(self.engine, self.people, missing, self.rng)

    def _audit_jobs(self) -> None:
        records = self.scale.audit_records
        with seed.hold_statistics(self.engine):
            print(f"seeding {records:,} audit records", flush=True)
            seed.bulk_audit_records(self.engine, self.people, records, self.rng)
        print("sequencer", flush=True)
        sequencer = audit_bench.sequencer(self.settings, records)
        print(f"export of {records:,} records", flush=True)
        exported, bundle = audit_bench.export(self.env, self.people.officer.id, records)
        print("offline verification", flush=True)
        verified = audit_bench.verify(self.env, bundle)
        bundle.unlink()
        self.results["audit"] = {result.name: result.as_dict() for result in (sequencer, exported, verified)}
        for result in (sequencer, exported, verified):
            print(f"  {result.name}: {result.records:,} in {result.seconds:.2f} s ({result.rate:,.0f}/s)")

    def _http(self, size: int) -> None:
        print(f"server at {size:,} cases", flush=True)
        with running_server(self.env, self.work / "server.log", workers=self.args.workers) as server:
            url = server.url
            access = tokens(url, self.people)
            cursor, length = deep_queue_cursor(self.engine, QUEUE_DEPTH)
            if self.targets is None:
                read_cases = create_cases(url, access.reader, self.people, READ_CASES)
                written_cases = create_cases(url, access.reader, self.people, WRITTEN_CASES)
                attachment_id = upload_attachment(url, access.reader, self.people, written_cases[0])
                self.targets = Targets(read_cases, written_cases, attachment_id, cursor)
            else:
                self.targets = replace(self.targets, deep_cursor=cursor)
            print(f"  queue of {length:,} cases; deep cursor at {QUEUE_DEPTH:.0%}", flush=True)
            token_only = token_ceiling(access)
            for scenario in read_scenarios(access, self.targets):
                if self._wanted(scenario):
                    result = self._measure(url, scenario, token_only)
                    self.results["series"].setdefault(scenario.title, {})[str(size)] = result.as_dict()
                    if size == self.scale.main_size:
                        self.results["http"].append(
                            {"key": scenario.key, **result.as_dict(), "title": scenario.title}
                        )
            if size != self.scale.main_size:
                return
            for key, title, load in references(access):
                result = self._measure(url, Scenario(key, title, load), token_only)
                self.results["http"].insert(0, {"key": key, **result.as_dict(), "title": title})
            total_seconds = self.timing.warmup + self.timing.runs * self.timing.seconds
            bodies = self.args.body_rate * total_seconds
            for scenario in write_scenarios(
                access, self.people, self.targets, self.work, bodies, uploads=60 * total_seconds
            ):
                if self._wanted(scenario):
                    result = self._measure(url, scenario, token_only)
                    self.results["http"].append(
                        {"key": scenario.key, **result.as_dict(), "title": scenario.title}
                    )
                    if scenario.key == "login":
                        self.results["login_probe"] = self._probe_during(url, scenario.load)

    def _probe_during(self, url: str, load: Load) -> dict[str, Any]:
        """Latency of the bare route, idle and while logins saturate the server: hashing must not stall the
        event loop."""
        idle = _probe(url, threading.Event(), seconds=2.0)
        stop = threading.Event()
        latencies: list[float] = []
        prober = threading.Thread(target=lambda: latencies.extend(_probe(url, stop)))
        prober.start()
        try:
            wrk(url, load, self.timing.seconds, self.work)
        finally:
            stop.set()
            prober.join()
        latencies.sort()
        return {
            "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[int(len(latencies) * 0.99)],
            "requests": len(latencies),
            "idle_p50_ms": statistics.median(idle),
        }


def _probe(url: str, stop: threading.Event, seconds: float | None = None) -> list[float]:
    deadline = time.monotonic() + seconds if seconds else None
    latencies = []
    with httpx.Client(base_url=url) as client:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            started = time.perf_counter()
            client.get("/bench/plain")
            latencies.append((time.perf_counter() - started) * 1000)
            stop.wait(PROBE_INTERVAL)
    return latencies


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    database = "postgresql" if args.database_url and args.database_url.startswith("postgresql") else "sqlite"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    work = RESULTS / f"{database}-{args.scale}-{stamp}"
    work.mkdir(parents=True)
    results = Runner(args, SCALES[args.scale], work).run()
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (work / "results.md").write_text(report.markdown(results))
    if not args.keep_data:
        shutil.rmtree(work / "data")
        for leftover in [*work.glob("*.ndjson"), *work.glob("*.txt"), *work.glob("*.bin")]:
            leftover.unlink()
    print(report.markdown(results))
    print(f"\nwritten to {work}")


if __name__ == "__main__":
    main()

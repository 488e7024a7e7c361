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
from bench import audit_bench, bare, client_crypto, explain, report, seed
from bench.fixtures import create_cases, deep_queue_cursor, tokens, upload_attachment
from bench.harness import (
    CONNECTIONS,
    Load,
    Server,
    Timing,
    cpu_seconds,
    measure,
    running_server,
    worker_rss_mb,
    wrk,
)
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
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="uvicorn worker processes (default: what `confrere serve` runs, 1 on SQLite, 2 on PostgreSQL)",
    )
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


def server_env(settings: Settings) -> dict[str, str]:
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
        self.env = server_env(self.settings)
        self.engine = seed.seed_engine(self.settings)
        self.rng = random.Random(2026)
        self.results: dict[str, Any] = {"http": [], "series": {}, "ceilings": {}}

    def _wanted(self, scenario: Scenario) -> bool:
        return not self.args.only or scenario.key in self.args.only

    def _measure(self, server: Server, scenario: Scenario, ceiling: Load) -> dict[str, Any]:
        """The scenario against the token-only route, as a dict with its ratio to the external bare app and
        the resident memory of the server's largest worker right after the load."""
        result, ceiling_result = measure(
            scenario.title, server.url, scenario.load, ceiling, self.timing, self.work, cpu_seconds=self._cpu
        )
        bare_ratio = result.ratio / self.bare_over_token
        bare_cpu_ratio = result.cpu_ratio / self.bare_over_token_cpu
        print(
            f"  {scenario.title}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
            f"p99 {result.p99_ms:.1f} ms, {result.ratio:.0%} of token-only "
            f"({ceiling_result.rps:,.0f} req/s), {bare_ratio:.3f} of the bare app; server CPU "
            f"{result.cpu_ms:.2f} ms a request, {result.cpu_ratio:.0%} of token-only's, {bare_cpu_ratio:.3f} "
            f"of the bare app's; errors {result.errors}",
            flush=True,
        )
        return {
            "key": scenario.key,
            **result.as_dict(),
            "title": scenario.title,
            "bare_ratio": bare_ratio,
            "bare_cpu_ratio": bare_cpu_ratio,
            "rss_mb": worker_rss_mb(server),
        }

    def _cpu(self, url: str) -> float:
        return cpu_seconds(self.servers[url])

    def _external_bare(self, server: Server, bare_url: str, token_only: Load, plain_async: Load) -> None:
        """The external bare app against the token-only route (the factor that turns every ratio to the
        token-only route into one to the bare app), and Confrere's bare async route against it directly."""
        bare_load = Load(paths=[bare.PATH])
        external, _ = measure(
            "External bare FastAPI app",
            bare_url,
            bare_load,
            token_only,
            self.timing,
            self.work,
            server.url,
            self._cpu,
        )
        self.bare_over_token, self.bare_over_token_cpu = external.ratio, external.cpu_ratio
        fixed, _ = measure(
            "Bare async route / external bare app",
            server.url,
            plain_async,
            bare_load,
            self.timing,
            self.work,
            bare_url,
            self._cpu,
        )
        print(
            f"  external bare app: {external.rps:,.0f} req/s, {external.ratio:.2f}x token-only; "
            f"Confrere's bare async route: {fixed.ratio:.0%} of it (CPU a request: {fixed.cpu_ratio:.0%})",
            flush=True,
        )
        self.results["external_bare"] = {
            **external.as_dict(),
            "fixed_cost_ratio": fixed.ratio,
            "fixed_cost_cpu_ratio": fixed.cpu_ratio,
            "bare_async_rps": fixed.rps,
        }

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
            "workers": self.args.workers or self.settings.serve_workers,
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
        # Statistics of a numbered log, as a production database has them: those taken while the whole
        # backlog was pending made SQLite (which never analyzes again by itself) scan every record for the
        # few pending ones, at every pass of the sequencer, with the writer's lock held.
        seed.analyze(self.engine)
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
        workers = self.args.workers or self.settings.serve_workers
        with (
            running_server(self.env, self.work / "server.log", workers=workers) as server,
            running_server(
                self.env,
                self.work / "bare.log",
                workers=workers,
                app="bench.bare:create_bare_app",
                ready_path=bare.PATH,
                logging=[],  # uvicorn's defaults, access log included, as a user would run it
            ) as bare_server,
        ):
            url = server.url
            self.servers = {server.url: server, bare_server.url: bare_server}
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
            reference_loads = references(access)
            self._external_bare(server, bare_server.url, token_only, reference_loads[1].load)
            for scenario in read_scenarios(access, self.targets):
                if self._wanted(scenario):
                    result = self._measure(server, scenario, token_only)
                    self.results["series"].setdefault(scenario.title, {})[str(size)] = result
                    if size == self.scale.main_size:
                        self.results["http"].append(result)
            if size != self.scale.main_size:
                return
            for scenario in reference_loads:
                self.results["http"].insert(0, self._measure(server, scenario, token_only))
            total_seconds = self.timing.warmup + self.timing.runs * self.timing.seconds
            bodies = self.args.body_rate * total_seconds
            for scenario in write_scenarios(
                access, self.people, self.targets, self.work, bodies, uploads=60 * total_seconds
            ):
                if self._wanted(scenario):
                    self.results["http"].append(self._measure(server, scenario, token_only))
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


# An access line per request is gigabytes over a full run; what else the servers logged stays.
ACCESS_LINE_MARKERS = ('"logger":"confrere.access"', ' HTTP/1.1" ')


def _drop_access_lines(log: Path) -> None:
    kept = log.with_suffix(".kept")
    with log.open(errors="replace") as lines, kept.open("w") as out:
        out.writelines(line for line in lines if not any(marker in line for marker in ACCESS_LINE_MARKERS))
    kept.replace(log)


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
        for log in work.glob("*.log"):
            _drop_access_lines(log)
    print(report.markdown(results))
    print(f"\nwritten to {work}")


if __name__ == "__main__":
    main()

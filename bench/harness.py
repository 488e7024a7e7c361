"""Benchmark plumbing: a real server process, wrk on loopback, warm-up, repeated runs and medians.

wrk (Debian's 4.1) is the load generator: written in C with one event loop per thread, it keeps 32
connections busy for a fraction of the CPU a Python driver would take from the server on a shared 2-core
machine, and its Lua hook gives each request its own body.

The machine is shared, so no number stands alone: every run of a scenario is paired with a run of the
token-only ceiling right before it, and the ratio of the two is the figure that survives the noise.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import httpx

from app.platform.logs import LOG_CONFIG

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = ROOT / "bench" / "wrk" / "request.lua"
CONNECTIONS = 32
WRK_THREADS = 2
# A 5 MB upload at 32 connections takes seconds: wrk's default 2 s timeout would drop it from the stats.
WRK_TIMEOUT = "60s"
READY_SECONDS = 60
# After a run, wrk stops but the server goes on with the requests it had accepted: the next run starts once
# the server uses less than this share of one core, or after IDLE_SECONDS whatever it does.
IDLE_CPU_SHARE = 0.1
IDLE_SECONDS = 60


@dataclass(frozen=True)
class Timing:
    """How long each measurement lasts (seconds) and how often it is repeated."""

    runs: int
    seconds: int
    warmup: int


@dataclass
class Load:
    """What wrk sends. `bodies` lines are used once each (unique ids) unless `reuse_bodies`."""

    paths: list[str]
    method: str = "GET"
    token: str | None = None
    bodies: Path | None = None
    upload: Path | None = None
    reuse_bodies: bool = False
    paths_file: Path | None = field(default=None, repr=False)
    offset: int = 0
    # Fewer for answers that take long to build: at 32, a run of a few seconds may complete none of them.
    connections: int = CONNECTIONS


@dataclass(frozen=True)
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_ms: float = 0.0  # the server's CPU time per request (its processes only, not the database's)


@dataclass(frozen=True)
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    ceiling_rps: float
    ratio: float
    errors: int
    requests: int
    cpu_ms: float
    # The ceiling's server CPU per request over the scenario's, median of the pairs: the ratio again, but
    # of what each request costs the server rather than of what it served while other work shared the cores.
    cpu_ratio: float

    def as_dict(self) -> dict:
        return asdict(self)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen


@contextmanager
def running_server(
    env: dict[str, str],
    log_path: Path,
    workers: int = 1,
    app: str = "bench.app:create_bench_app",
    ready_path: str = "/readyz",
    logging: list[str] | None = None,
) -> Iterator[Server]:
    """uvicorn as `confrere serve` runs it: with uvicorn's standard extras installed it picks uvloop and
    httptools (`--loop auto --http auto`), for the product and the bare reference app alike; its logs (by
    default Confrere's, with a JSON access line per request, as in production) go to `log_path`."""
    if logging is None:
        config = log_path.with_suffix(".logging.json")
        config.write_text(json.dumps(LOG_CONFIG))
        logging = ["--log-config", str(config)]
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *logging,
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            try:
                if httpx.get(f"{url}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"server did not become ready; see {log_path}")
            time.sleep(0.2)
        yield Server(url=url, process=process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _paths_file(load: Load, work_dir: Path) -> Path:
    if load.paths_file is None:
        load.paths_file = work_dir / f"paths-{id(load)}.txt"
        load.paths_file.write_text("\n".join(load.paths) + "\n")
    return load.paths_file


def wrk(url: str, load: Load, seconds: int, work_dir: Path) -> Sample:
    env = {
        **os.environ,
        "BENCH_THREADS": str(WRK_THREADS),
        "BENCH_METHOD": load.method,
        "BENCH_PATHS": str(_paths_file(load, work_dir)),
        "BENCH_OFFSET": str(load.offset),
    }
    if load.token:
        env["BENCH_TOKEN"] = load.token
    if load.bodies:
        env["BENCH_BODIES"] = str(load.bodies)
    if load.upload:
        env["BENCH_UPLOAD"] = str(load.upload)
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{load.connections}", f"-d{seconds}s"]
    command.append(f"--timeout={WRK_TIMEOUT}")
    output = subprocess.run(
        [*command, "--latency", "-s", str(WRK_SCRIPT), url],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    if load.bodies and not load.reuse_bodies:
        load.offset = int(_field(r"BENCH_NEXT (\d+)", output))
        if int(_field(r"BENCH_EXHAUSTED (\d+)", output)):
            raise RuntimeError(f"{load.bodies} ran out of bodies: make more (--body-rate)")
    requests = int(_field(r"(\d+) requests in", output))
    if not requests:
        raise RuntimeError(
            f"wrk completed no request in {seconds} s at {load.connections} connections to {load.paths[0]}: "
            "each took longer than the run; run longer or with fewer connections"
        )
    latency = {int(pct): float(value) * _UNIT[unit] for pct, value, unit in _LATENCY.findall(output)}
    errors = 0
    if bad := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(bad.group(1))
    if sockets := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(group) for group in sockets.groups())
    return Sample(
        rps=float(_field(r"Requests/sec:\s+([\d.]+)", output)),
        p50_ms=latency[50],
        p99_ms=latency[99],
        errors=errors,
        requests=requests,
    )


def _processes(server: Server) -> list[int]:
    """The server's worker processes (uvicorn's supervisor's children), or the server itself."""
    pid = server.process.pid
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()] or [pid]


def worker_rss_mb(server: Server) -> float:
    """The resident memory of the largest worker process (the server itself when it runs one)."""
    return max(_rss_mb(pid) for pid in _processes(server))


def cpu_seconds(server: Server) -> float:
    """User and system CPU time the server's processes have used so far."""
    ticks = 0
    for pid in {server.process.pid, *_processes(server)}:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the whole line)
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_until_idle(cpu_seconds: Callable[[], float], interval: float = 0.25) -> None:
    """Until the server's CPU use falls under IDLE_CPU_SHARE of a core (what a finished run left queued has
    drained), so that it neither slows the next run nor counts in its CPU per request."""
    deadline = time.monotonic() + IDLE_SECONDS
    used = cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(interval)
        previous, used = used, cpu_seconds()
        if used - previous < IDLE_CPU_SHARE * interval:
            return


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _field(pattern: str, output: str) -> str:
    found = re.search(pattern, output)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return found.group(1)


def measure(
    name: str,
    url: str,
    load: Load,
    ceiling: Load,
    timing: Timing,
    work_dir: Path,
    ceiling_url: str | None = None,
    cpu_seconds: Callable[[str], float] | None = None,
) -> tuple[Result, Result]:
    """The scenario and the ceiling (the token-only route unless told; served at `ceiling_url` when it is
    another server), each run right after the other, `timing.runs` times, after a warm-up of both; medians
    of each, and the median of the per-pair ratios. `cpu_seconds(url)`, when given, is the CPU time the
    server at `url` has used so far; each run then waits for that server to be idle first."""
    ceiling_url = ceiling_url or url

    def run(target: str, target_load: Load) -> Sample:
        if cpu_seconds:
            wait_until_idle(lambda: cpu_seconds(target))
        before = cpu_seconds(target) if cpu_seconds else 0.0
        sample = wrk(target, target_load, timing.seconds, work_dir)
        if cpu_seconds is None or not sample.requests:
            return sample
        return replace(sample, cpu_ms=(cpu_seconds(target) - before) * 1000 / sample.requests)

    if timing.warmup:
        wrk(ceiling_url, ceiling, timing.warmup, work_dir)
        wrk(url, load, timing.warmup, work_dir)
    pairs = [(run(ceiling_url, ceiling), run(url, load)) for _ in range(timing.runs)]
    ceilings = [ceiling_sample for ceiling_sample, _ in pairs]
    samples = [sample for _, sample in pairs]
    ceiling_rps = statistics.median(sample.rps for sample in ceilings)
    ratio = statistics.median(sample.rps / ceiling_sample.rps for ceiling_sample, sample in pairs)
    cpu_ratio = statistics.median(
        ceiling_sample.cpu_ms / sample.cpu_ms if sample.cpu_ms else 0.0 for ceiling_sample, sample in pairs
    )
    return _result(name, samples, ceiling_rps, ratio, cpu_ratio), _result(
        "token-only ceiling", ceilings, ceiling_rps, 1.0, 1.0
    )


def _result(name: str, samples: list[Sample], ceiling_rps: float, ratio: float, cpu_ratio: float) -> Result:
    return Result(
        name=name,
        rps=statistics.median(sample.rps for sample in samples),
        p50_ms=statistics.median(sample.p50_ms for sample in samples),
        p99_ms=statistics.median(sample.p99_ms for sample in samples),
        ceiling_rps=ceiling_rps,
        ratio=ratio,
        errors=sum(sample.errors for sample in samples),
        requests=sum(sample.requests for sample in samples),
        cpu_ms=statistics.median(sample.cpu_ms for sample in samples),
        cpu_ratio=cpu_ratio,
    )

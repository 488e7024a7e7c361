"""A real server process for end-to-end tests: uvicorn on a free loopback port, logs captured to a file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    log_path: Path
    process: subprocess.Popen


def settings_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "CONFRERE_ENVIRONMENT": settings.environment.value,
        "CONFRERE_DATA_DIR": str(settings.data_dir),
        "CONFRERE_DATABASE_URL": settings.resolved_database_url,
        "CONFRERE_DB_POOL_SIZE": "10",
    }


@contextmanager
def live_server(
    settings: Settings,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    *,
    production_entry: bool = False,
) -> Iterator[LiveServer]:
    """`production_entry`: start as `confrere serve` does (its JSON log configuration included)."""
    with live_servers(settings, [log_path], extra_env, production_entry=production_entry) as (server,):
        yield server


@contextmanager
def live_servers(
    settings: Settings,
    log_paths: list[Path],
    extra_env: dict[str, str] | None = None,
    *,
    production_entry: bool = False,
) -> Iterator[list[LiveServer]]:
    """One server per log path, all started at once (as nodes behind a load balancer would be)."""
    servers = []
    try:
        for log_path in log_paths:
            servers.append(_start(settings, log_path, extra_env, production_entry))
        for server in servers:
            _wait_ready(server)
        yield servers
    finally:
        for server in servers:
            _stop(server.process)


def _start(
    settings: Settings, log_path: Path, extra_env: dict[str, str] | None, production_entry: bool
) -> LiveServer:
    port = free_port()
    if production_entry:
        serve = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
        command = [sys.executable, "-c", serve, "serve", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "info",
        ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**settings_env(settings), **(extra_env or {})}, stdout=log, stderr=log
        )
    return LiveServer(url=f"http://127.0.0.1:{port}", log_path=log_path, process=process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: LiveServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited: {server.log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def wait_for(enough: Callable[[], bool], patience: float = 60.0) -> None:
    """Lets a background load run until `enough()` (at most `patience` seconds): a crash test kills its
    server after a given amount of acknowledged work, whatever the machine's speed, not after a fixed time."""
    deadline = time.monotonic() + patience
    while not enough() and time.monotonic() < deadline:
        time.sleep(0.05)

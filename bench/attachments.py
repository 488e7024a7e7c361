"""Creating and downloading a 5 MB sealed attachment on each blob store backend: the file system and an
S3-compatible store (moto's server, started here, the one the tests use), one API process, one client.

    python -m bench.attachments [--database-url URL] [--count 20]

Each backend gets the same server (the product's app), the same sealed attachments (sealed before timing),
uploaded then downloaded one at a time; the time of each request is measured whole at the client (the
download read to its last byte). Results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from app.config import Environment, Settings
from app.platform.keyring import load_server_keys
from bench import report, seed
from bench.fixtures import api_client, author, create_cases, login
from bench.harness import running_server
from bench.payloads import ATTACHMENT_BYTES, sealed_attachment, sealed_json
from bench.run import server_env
from tests.s3_server import S3_ENV, s3_server


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.attachments", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    parser.add_argument("--count", type=int, default=20, help="attachments per backend")
    return parser.parse_args(argv)


@contextmanager
def _backends(work: Path) -> Iterator[dict[str, dict[str, str]]]:
    with s3_server(work / "moto.log") as server:
        yield {"filesystem": {}, "s3": server.settings_env(server.new_bucket()) | S3_ENV}


def _uploads(people, case_id: str, count: int) -> list[tuple[dict, bytes]]:
    uploads = []
    for _ in range(count):
        data = os.urandom(ATTACHMENT_BYTES)
        sealed = sealed_attachment(author(people.reader), people.queue_recipients, case_id, data)
        meta = {"id": orjson.loads(sealed.header)["object_id"], **sealed_json(sealed, with_ciphertext=False)}
        uploads.append((meta, sealed.ciphertext))
    return uploads


def _measure(url: str, token: str, people, count: int) -> dict[str, list[float]]:
    case_id = create_cases(url, token, people, 1)[0]
    timings: dict[str, list[float]] = {"upload": [], "download": []}
    with api_client(url, token, people.reader) as client:
        for meta, ciphertext in _uploads(people, case_id, count):
            files = {"ciphertext": ("ciphertext.bin", io.BytesIO(ciphertext), "application/octet-stream")}
            started = time.perf_counter()
            response = client.post(
                f"/v1/cases/{case_id}/attachments", data={"meta": orjson.dumps(meta).decode()}, files=files
            )
            timings["upload"].append(time.perf_counter() - started)
            response.raise_for_status()
            started = time.perf_counter()
            with client.stream("GET", f"/v1/cases/{case_id}/attachments/{meta['id']}") as download:
                received = sum(len(chunk) for chunk in download.iter_bytes())
            timings["download"].append(time.perf_counter() - started)
            if download.status_code != 200 or received != len(ciphertext):
                raise RuntimeError(f"download failed: {download.status_code}, {received} bytes")
    return timings


def _row(backend: str, what: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    median = statistics.median(ordered)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    megabytes = ATTACHMENT_BYTES / 1e6
    return f"| {backend} | {what} | {median * 1000:.0f} | {p90 * 1000:.0f} | {megabytes / median:.0f} |"


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    work = Path(tempfile.mkdtemp(prefix="confrere-bench-attachments-"))
    try:
        settings = Settings(
            environment=Environment.DEVELOPMENT, data_dir=work / "data", database_url=args.database_url
        )
        seed.fresh_database(settings)
        engine = seed.seed_engine(settings)
        people = seed.cast(engine, load_server_keys(settings).sealer, seed.specialty_codes(engine))
        load_start = report.load_average()
        rows = []
        with _backends(work) as backends:
            for backend, env in backends.items():
                with running_server(server_env(settings) | env, work / f"{backend}.log") as server:
                    timings = _measure(server.url, login(server.url, people.reader), people, args.count)
                rows += [_row(backend, what, seconds) for what, seconds in timings.items()]
        print(
            f"database: {settings.resolved_database_url.split(':')[0]}, {args.count} attachments per backend"
        )
        print(f"load average: {load_start} at start, {report.load_average()} at end")
        print("| backend | request | median ms | p90 ms | MB/s at the median |")
        print("|---|---|---:|---:|---:|")
        print("\n".join(rows))
        engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

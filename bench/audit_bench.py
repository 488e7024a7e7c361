"""The audit log's batch work: sequencer rate, export rate and peak memory, offline verification time.

The sequencer runs in the benchmark process (it is a loop over the database, as in the API process). Export
and verification each run in a child process of their own, so that their peak resident memory is theirs
alone: the figure reported is the child's whole peak RSS (VmHWM: interpreter and imports included), next
to its RSS before the work started. (getrusage's ru_maxrss would not do: Linux carries it over an exec, so
a child would report the benchmark process's own peak.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlmodel import Session

from app.audit.inspection import ExportRequest, create_export
from app.audit.sequencer import sequence_pending
from app.audit.verifier import verify_bundle
from app.config import Settings
from app.models.base import utcnow
from app.platform.keyring import load_audit_log_signer
from app.runtime.database import create_db_engine

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BatchResult:
    name: str
    records: int
    seconds: float
    rate: float
    peak_rss_mb: float | None = None
    baseline_rss_mb: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB."""
    status = Path("/proc/self/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1)) / 1024


def sequencer(settings: Settings, records: int) -> BatchResult:
    """Sequence every pending record (the bulk load) in batches of the configured size."""
    engine = create_db_engine(settings)
    signer = load_audit_log_signer(settings, create_missing=True)
    started = time.perf_counter()
    sequenced = sequence_pending(engine, signer, settings.audit_sequencer_batch_size)
    seconds = time.perf_counter() - started
    engine.dispose()
    assert sequenced >= records, f"sequenced {sequenced} of {records} records"
    return BatchResult("sequencer", sequenced, seconds, sequenced / seconds)


def _child(command: str, env: dict[str, str], *args: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "bench.audit_bench", command, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def export(env: dict[str, str], officer_id: uuid.UUID, records: int) -> tuple[BatchResult, Path]:
    """Export positions [0, records) through the export service, in a child process."""
    result = _child("export", env, str(officer_id), str(records))
    path = Path(result.pop("path"))
    return BatchResult("export", **result), path


def verify(env: dict[str, str], bundle: Path) -> BatchResult:
    return BatchResult("verifier", **_child("verify", env, str(bundle)))


def _export_main(officer_id: str, records: int) -> dict:
    settings = Settings()
    engine = create_db_engine(settings)
    signer = load_audit_log_signer(settings, create_missing=True)
    baseline = _memory_mb("VmRSS")
    request = ExportRequest(start=0, end=records, event_filter=None, formats=(), consistency_from=())
    with Session(engine) as session:
        started = time.perf_counter()
        exported = create_export(
            session,
            request,
            officer_id=uuid.UUID(officer_id),
            signer=signer,
            witnesses=settings.witnesses,
            exports_dir=settings.exports_dir,
            now=utcnow(),
        )
        seconds = time.perf_counter() - started
        session.rollback()
    return {
        "records": exported.record_count,
        "seconds": seconds,
        "rate": exported.record_count / seconds,
        "peak_rss_mb": _memory_mb("VmHWM"),
        "baseline_rss_mb": baseline,
        "path": str(settings.exports_dir / exported.file_path),
    }


def _verify_main(bundle: str) -> dict:
    settings = Settings()
    key = load_audit_log_signer(settings, create_missing=True).verifier().key_string
    baseline = _memory_mb("VmRSS")
    started = time.perf_counter()
    report = verify_bundle(bundle, key)
    seconds = time.perf_counter() - started
    return {
        "records": report.record_count,
        "seconds": seconds,
        "rate": report.record_count / seconds,
        "peak_rss_mb": _memory_mb("VmHWM"),
        "baseline_rss_mb": baseline,
    }


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "export":
        print(json.dumps(_export_main(arguments[0], int(arguments[1]))))
    else:
        print(json.dumps(_verify_main(arguments[0])))

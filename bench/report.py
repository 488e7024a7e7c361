"""Results: the machine they came from, a JSON document, and the markdown tables of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

# Scenario key -> database -> (minimum ratio to the token-only ceiling, maximum p99 in ms); None where there
# is no target.
_WRITE_TARGETS = {"sqlite": (0.20, None), "postgresql": (0.15, None)}
HTTP_TARGETS: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "case_read": {"sqlite": (0.40, 100.0), "postgresql": (0.35, None)},
    "case_create": _WRITE_TARGETS,
    "message_post": _WRITE_TARGETS,
}
# Confrere's bare `async def` route, against the external bare FastAPI app.
FIXED_COST_RATIO = 0.70
QUEUE_FLATNESS = 1.5
SEQUENCER_RATE = 20_000
EXPORT_RATE = 200_000
EXPORT_PEAK_MB = 150
VERIFIER_RATE = 100_000  # 1,000,000 records in 10 s


def machine(engine: Engine) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            database = connection.execute(text("SHOW server_version")).scalar_one()
        else:
            database = connection.execute(text("SELECT sqlite_version()")).scalar_one()
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "database": f"{engine.dialect.name} {database}",
        "python_sqlite3_library": sqlite3.sqlite_version,
        "wrk": wrk[0] if wrk else "wrk",
        "kernel": platform.release(),
    }


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _verdict(passed: bool) -> str:
    return "yes" if passed else "**no**"


def _http_rows(results: list[dict], database: str) -> list[str]:
    rows = [
        "| Scenario | req/s | p50 ms | p99 ms | ratio to token-only | ratio to the bare app "
        "| token-only req/s | server CPU ms a request | CPU ratio to token-only | CPU ratio to the bare app "
        "| worker RSS MB | errors | target met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        target = HTTP_TARGETS.get(result["key"], {}).get(database)
        verdict = ""
        if target is not None:
            ratio, p99 = target
            passed = (ratio is None or result["ratio"] >= ratio) and (p99 is None or result["p99_ms"] < p99)
            wanted = " and ".join(
                part
                for part in (f">= {ratio:.0%}" if ratio else "", f"p99 < {p99:.0f} ms" if p99 else "")
                if part
            )
            verdict = f"{_verdict(passed)} ({wanted})"
        rows.append(
            f"| {result['title']} | {result['rps']:,.0f} | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} | "
            f"{result['ratio']:.0%} | {result['bare_ratio']:.3f} | {result['ceiling_rps']:,.0f} | "
            f"{result['cpu_ms']:.2f} | {result['cpu_ratio']:.0%} | {result['bare_cpu_ratio']:.3f} | "
            f"{result['rss_mb']:.0f} | {result['errors']} | {verdict} |"
        )
    return rows


def _bare_lines(bare: dict) -> list[str]:
    fixed = bare["fixed_cost_ratio"]
    return [
        f"External bare FastAPI app (one `async def` route, its own uvicorn process): {bare['rps']:,.0f} "
        f"req/s, {bare['ratio']:.2f}x the token-only route in the same pairs. Confrere's bare `async def` "
        f"route, measured in pairs with it: {fixed:.0%} of it ({_verdict(fixed >= FIXED_COST_RATIO)}, "
        f">= {FIXED_COST_RATIO:.0%}); by server CPU a request, {bare['fixed_cost_cpu_ratio']:.0%}.",
        "",
    ]


def _series_rows(series: dict[str, dict[str, dict]]) -> list[str]:
    sizes = sorted({int(size) for points in series.values() for size in points})
    header = " | ".join(f"{size:,} cases" for size in sizes)
    rows = [
        f"| Scenario (p50 ms / req/s / ratio) | {header} | p50 largest / smallest |",
        f"|---|{'---:|' * len(sizes)}---:|",
    ]
    for title, points in series.items():
        cells = []
        for size in sizes:
            point = points.get(str(size)) or points.get(size)
            cells.append(
                f"{point['p50_ms']:.1f} / {point['rps']:,.0f} / {point['ratio']:.0%}" if point else ""
            )
        first, last = points[str(sizes[0])], points[str(sizes[-1])]
        growth = last["p50_ms"] / first["p50_ms"]
        flat = (
            f"{growth:.2f}x ({_verdict(growth <= QUEUE_FLATNESS)})"
            if title.startswith("Specialty queue")
            else f"{growth:.2f}x"
        )
        rows.append(f"| {title} | {' | '.join(cells)} | {flat} |")
    return rows


def _audit_rows(audit: dict[str, dict]) -> list[str]:
    rows = [
        "| Job | records | seconds | records/s | peak RSS MB (before) | target met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, result in audit.items():
        if name == "sequencer":
            verdict = f"{_verdict(result['rate'] >= SEQUENCER_RATE)} (>= {SEQUENCER_RATE:,}/s)"
        elif name == "export":
            passed = result["rate"] >= EXPORT_RATE and result["peak_rss_mb"] < EXPORT_PEAK_MB
            verdict = f"{_verdict(passed)} (>= {EXPORT_RATE:,}/s, < {EXPORT_PEAK_MB} MB)"
        else:
            verdict = f"{_verdict(result['rate'] >= VERIFIER_RATE)} (1,000,000 in < 10 s)"
        memory = (
            f"{result['peak_rss_mb']:.0f} ({result['baseline_rss_mb']:.0f})"
            if result.get("peak_rss_mb")
            else ""
        )
        figures = f"{result['records']:,} | {result['seconds']:.2f} | {result['rate']:,.0f}"
        rows.append(f"| {name} | {figures} | {memory} | {verdict} |")
    return rows


def _crypto_rows(rows_in: list[dict]) -> list[str]:
    rows = ["| Suite | recipients | seal ms (client) | open ms (one recipient) |", "|---|---:|---:|---:|"]
    rows += [
        f"| {r['suite']} | {r['recipients']} | {r['seal_ms']:.1f} | {r['open_ms']:.2f} |" for r in rows_in
    ]
    return rows


def _plan_lines(plans: dict[str, list[dict]]) -> list[str]:
    lines = []
    for name, statements in plans.items():
        lines += [f"{name}:", "```"]
        for statement in statements:
            lines.append(" ".join(statement["sql"].split()))
            lines += [f"    {line}" for line in statement["plan"]]
        lines += ["```", ""]
    return lines


def markdown(results: dict[str, Any]) -> str:
    info = results["machine"]
    lines = [
        f"# Confrere benchmark: {info['database']}, scale {results['scale']}",
        "",
        f"{results['started']}; {info['nproc']} x {info['cpu']}, {info['memory_gb']} GB, "
        f"Python {info['python']}, {info['wrk']}; load average {results['load_average']['start']} at start, "
        f"{results['load_average']['end']} at end.",
        f"wrk: {results['connections']} connections, {results['timing']['runs']} runs of "
        f"{results['timing']['seconds']} s after {results['timing']['warmup']} s of warm-up; medians. "
        "Each run follows a run of the token-only ceiling: the ratio is the median of those pairs; the ratio "
        "to the bare app is that divided by the median ratio of the external bare app to the token-only "
        "route.",
        "",
    ]
    if results["http"]:
        database = info["database"].split()[0]
        lines += [f"## HTTP at {results['main_size']:,} cases ({results['workers']} worker processes)", ""]
        lines += [*_bare_lines(results["external_bare"]), *_http_rows(results["http"], database), ""]
    if probe := results.get("login_probe"):
        lines += [
            f"Event loop during the login load: a bare route answered in p50 {probe['p50_ms']:.1f} ms, "
            f"p99 {probe['p99_ms']:.1f} ms ({probe['requests']} probes; "
            f"idle: p50 {probe['idle_p50_ms']:.1f} ms).",
            "",
        ]
    if results["series"]:
        lines += ["## Reads as cases grow", "", *_series_rows(results["series"]), ""]
    lines += ["## Audit log", "", *_audit_rows(results["audit"]), ""]
    if "client_crypto" in results:
        lines += ["## Client-side sealing", "", *_crypto_rows(results["client_crypto"]), ""]
    if "plans" in results:
        lines += [f"## Query plans at {results['largest_size']:,} cases", "", *_plan_lines(results["plans"])]
    return "\n".join(lines)

"""The markdown report: machine, versions, and the tables."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path

from bench.results_model import TargetResult

PACKAGES = ("spendgate", "uvicorn", "uvloop", "httptools", "aiohttp", "orjson", "sqlalchemy")
TARGET_ADDED_P50_MS = 1.0
TARGET_RPS = 1500
WORKLOAD_TITLES = {
    "json": "Non-streaming (1 KB JSON message)",
    "sse": "Streaming (25-event SSE, 3.5 KB)",
}


def _cmd(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> str:
    """Total memory from /proc/meminfo."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def git_revision(root: Path) -> str:
    """Short commit of the working tree, marked when src/ has uncommitted changes."""
    head = _cmd(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    try:
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        dirty = ""
    return f"{head} (src/ has uncommitted changes)" if dirty else head


def environment(root: Path, nginx: Path, postgres_version: str | None) -> list[str]:
    """Bullet lines describing the machine and the versions in use."""
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    lines = [
        f"- **Date:** {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- **Machine:** {os.cpu_count()} CPU (`nproc`), {cpu_model()}, {memory_gib()} RAM, "
        f"kernel {platform.release()}",
        f"- **Python:** {platform.python_version()}; " + ", ".join(versions),
        f"- **Tools:** {_cmd(['wrk', '-v'])}; "
        + (_cmd([str(nginx), "-v"]) if nginx.exists() else "nginx not installed")
        + f"; SQLite {sqlite3.sqlite_version}"
        + (f"; PostgreSQL {postgres_version}" if postgres_version else ""),
        f"- **spendgate revision:** {git_revision(root)}",
    ]
    return lines


def _ms(us: float | None) -> str:
    return "—" if us is None else f"{us / 1000:.3f}"


def _delta(us: float | None) -> str:
    return "—" if us is None else f"{us / 1000:+.3f}"


def workload_table(results: list[TargetResult], workload: str) -> list[str]:
    """One markdown table for ``workload``; deltas are against the direct row."""
    lines = [
        f"**{WORKLOAD_TITLES[workload]}**",
        "",
        "| Target | added p50 c=1 (ms) | added p99 c=1 (ms) | p50 c=1 (ms) | p99 c=1 (ms) "
        "| req/s c=32 | p50 c=32 (ms) | p99 c=32 (ms) | proxy CPU µs/req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    direct = next((r.workloads.get(workload) for r in results if r.key == "direct"), None)
    base = direct.c1 if direct else None
    for result in results:
        w = result.workloads.get(workload)
        if w is None or w.c1 is None or not w.c32:
            reason = result.skipped or result.failed or "not measured"
            lines.append(f"| {result.label} | {reason} |  |  |  |  |  |  |  |  |")
            continue
        mid = w.c32_median
        assert mid is not None
        is_direct = result.key == "direct"
        added50 = None if is_direct or base is None else w.c1.p50_us - base.p50_us
        added99 = None if is_direct or base is None else w.c1.p99_us - base.p99_us
        errors = sum(r.errors for r in [*w.c32, w.c1])
        cpu = "—" if w.cpu_us_per_request is None else f"{w.cpu_us_per_request:,.0f}"
        lines.append(
            f"| {result.label} | {_delta(added50)} | {_delta(added99)} | {_ms(w.c1.p50_us)} "
            f"| {_ms(w.c1.p99_us)} | {w.rps:,.0f} | {_ms(mid.p50_us)} | {_ms(mid.p99_us)} "
            f"| {cpu} | {errors} |"
        )
    return lines


def recording_table(results: list[TargetResult]) -> list[str]:
    """Peak memory per target, and for spendgate what it recorded against what wrk sent."""
    lines = [
        "| Target | peak RSS (MiB) | calls sent | completed by wrk | recorded | "
        "200 & complete | priced | writer queue after a c=32 run (max) | "
        "writer drain after the c=32 runs (s, max) | check |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if r.peak_rss_mb is None:
            continue
        rss = f"{r.peak_rss_mb:,.1f}"
        if not r.records_spendgate or r.recorded is None:
            lines.append(
                f"| {r.label} | {rss} | {r.sent:,} | {r.completed:,} | — | — | — | — | — | — |"
            )
            continue
        rec = r.recorded
        backlog = "—" if r.max_backlog is None else f"{r.max_backlog:,}"
        drain = "—" if r.drain_seconds is None else f"{r.drain_seconds:.1f}"
        lines.append(
            f"| {r.label} | {rss} | {r.sent:,} | {r.completed:,} | {rec.calls:,} | "
            f"{rec.ok:,} | {rec.priced:,} | {backlog} | {drain} | {recording_verdict(r)} |"
        )
    return lines


def recording_verdict(r: TargetResult) -> str:
    """Whether every call wrk sent was recorded exactly once."""
    rec = r.recorded
    if rec is None:
        return "not counted"
    in_flight = r.sent - r.completed
    if rec.calls == r.sent:
        return f"exact: every call sent is recorded ({in_flight} in flight at wrk's stops)"
    return (
        f"**MISMATCH**: {rec.calls - r.sent:+,} against sent, "
        f"{rec.calls - r.completed:+,} against completed"
    )


def targets_check(results: list[TargetResult]) -> list[str]:
    """Issue 2's targets, per spendgate row."""
    lines = []
    direct = next((r for r in results if r.key == "direct"), None)
    base = direct.workloads.get("json") if direct else None
    for r in results:
        w = r.workloads.get("json")
        if not r.records_spendgate or w is None or w.c1 is None or base is None or not base.c1:
            continue
        added = (w.c1.p50_us - base.c1.p50_us) / 1000
        rps = w.rps or 0.0
        ok_lat = "meets" if added <= TARGET_ADDED_P50_MS else "misses"
        ok_rps = "meets" if rps >= TARGET_RPS else "misses"
        lines.append(
            f"- {r.label}: added p50 at c=1 {added:+.3f} ms ({ok_lat} ≤ {TARGET_ADDED_P50_MS} ms); "
            f"{rps:,.0f} non-streaming calls/s at c=32 ({ok_rps} ≥ {TARGET_RPS:,})"
        )
    return lines


def render(
    results: list[TargetResult],
    env_lines: list[str],
    method: str,
    notes: list[str],
) -> str:
    """The whole report as markdown."""
    out = ["# spendgate benchmark", "", *env_lines, f"- **Load:** {method}", ""]
    for workload in ("json", "sse"):
        out += [*workload_table(results, workload), ""]
    out += ["**Memory and recording** (recording on; counted in the database after the run)", ""]
    out += [*recording_table(results), ""]
    check = targets_check(results)
    if check:
        out += ["**Issue 2 targets** (one worker process)", "", *check, ""]
    if notes:
        out += ["**Notes**", "", *(f"- {n}" for n in notes), ""]
    return "\n".join(out)

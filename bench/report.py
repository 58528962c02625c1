"""The markdown report: machine, versions, and the tables."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path

from bench.results_model import TargetResult, WorkloadResult

PACKAGES = ("spendgate", "uvicorn", "uvloop", "httptools", "aiohttp", "orjson", "sqlalchemy")
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


def environment(
    root: Path, nginx: Path, postgres_version: str | None, results: list[TargetResult]
) -> list[str]:
    """Bullet lines describing the machine and the versions in use."""
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    peers = [f"LiteLLM {r.version}" for r in results if r.key == "litellm" and r.version]
    lines = [
        f"- **Date:** {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- **Machine:** {os.cpu_count()} CPU (`nproc`), {cpu_model()}, {memory_gib()} RAM, "
        f"kernel {platform.release()}, load average before the run "
        f"{_loadavg()}",
        f"- **Python:** {platform.python_version()}; " + ", ".join(versions),
        f"- **Tools:** {_cmd(['wrk', '-v'])}; "
        + (_cmd([str(nginx), "-v"]) if nginx.exists() else "nginx not installed")
        + f"; SQLite {sqlite3.sqlite_version}"
        + (f"; PostgreSQL {postgres_version}" if postgres_version else "")
        + "".join(f"; {p}" for p in peers),
        f"- **spendgate revision:** {git_revision(root)}",
    ]
    return lines


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def _ms(us: float | None) -> str:
    return "—" if us is None else f"{us / 1000:.3f}"


def _delta(us: float | None) -> str:
    return "—" if us is None else f"{us / 1000:+.3f}"


def _by_key(results: list[TargetResult], key: str) -> TargetResult | None:
    return next((r for r in results if r.key == key), None)


def workload_table(results: list[TargetResult], workload: str) -> list[str]:
    """One markdown table for ``workload``; deltas are against the direct row."""
    lines = [
        f"**{WORKLOAD_TITLES[workload]}**",
        "",
        "| Target | added p50 c=1 (ms) | added p99 c=1 (ms) | p50 c=1 (ms) | p99 c=1 (ms) "
        "| req/s c=32 | p50 c=32 (ms) | p99 c=32 (ms) | req/s c=128 | p99 c=128 (ms) "
        "| CPU µs/call | CPU s per 1,000 calls | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    direct = _by_key(results, "direct")
    base = direct.workloads.get(workload) if direct else None
    base_c1 = base.c1 if base else None
    for result in results:
        w = result.workloads.get(workload)
        if w is None or w.c1 is None or not w.c32:
            reason = result.skipped or result.failed or "not measured"
            lines.append(f"| {result.label} | {reason} |" + "  |" * 11)
            continue
        mid = w.c32_median
        assert mid is not None
        is_direct = result.key == "direct"
        added50 = None if is_direct or base_c1 is None else w.c1.p50_us - base_c1.p50_us
        added99 = None if is_direct or base_c1 is None else w.c1.p99_us - base_c1.p99_us
        runs = [*w.c32, w.c1, *([w.c128] if w.c128 else [])]
        errors = sum(r.errors for r in runs)
        cpu = "—" if w.cpu_us_per_request is None else f"{w.cpu_us_per_request:,.0f}"
        per_k = "—" if w.cpu_us_per_request is None else f"{w.cpu_us_per_request / 1000:.2f}"
        high_rps = "—" if w.c128 is None else f"{w.c128.rps:,.0f}"
        high_p99 = "—" if w.c128 is None else _ms(w.c128.p99_us)
        lines.append(
            f"| {result.label} | {_delta(added50)} | {_delta(added99)} | {_ms(w.c1.p50_us)} "
            f"| {_ms(w.c1.p99_us)} | {w.rps:,.0f} | {_ms(mid.p50_us)} | {_ms(mid.p99_us)} "
            f"| {high_rps} | {high_p99} | {cpu} | {per_k} | {errors} |"
        )
    return lines


def stream_table(results: list[TargetResult]) -> list[str]:
    """Time to first byte and per-event delay of a 25-event stream at c=1."""
    lines = [
        "**Streaming at c=1, seen by the client** (bench/probe.py; medians over the calls)",
        "",
        "| Target | calls | TTFB p50 (ms) | added TTFB (ms) | TTFB p99 (ms) | first event (ms) "
        "| per event (µs) | added per event (µs) | whole stream (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    direct = _by_key(results, "direct")
    base = direct.workloads["sse"].stream if direct and "sse" in direct.workloads else None
    for r in results:
        w = r.workloads.get("sse")
        t = w.stream if w else None
        if t is None:
            continue
        own = r.key == "direct" or base is None
        added_ttfb = "—" if own else _delta(t.ttfb_p50_us - base.ttfb_p50_us)  # type: ignore[union-attr]
        added_event = (
            "—" if own else f"{t.per_event_p50_us - base.per_event_p50_us:+.1f}"  # type: ignore[union-attr]
        )
        lines.append(
            f"| {r.label} | {t.calls:,} | {_ms(t.ttfb_p50_us)} | {added_ttfb} "
            f"| {_ms(t.ttfb_p99_us)} | {_ms(t.first_event_p50_us)} | {t.per_event_p50_us:.1f} "
            f"| {added_event} | {_ms(t.total_p50_us)} |"
        )
    return lines


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}x"


def _added_c1(results: list[TargetResult], r: TargetResult, workload: str) -> float | None:
    direct = _by_key(results, "direct")
    w, d = r.workloads.get(workload), direct.workloads.get(workload) if direct else None
    if not w or not d or not w.c1 or not d.c1:
        return None
    return float(w.c1.p50_us - d.c1.p50_us)


def _cpu(w: WorkloadResult | None) -> float | None:
    return w.cpu_us_per_request if w else None


def ratio_table(results: list[TargetResult]) -> list[str]:
    """Each peer against spendgate (SQLite, accounting on), measured in this run."""
    sg = _by_key(results, "spendgate-sqlite")
    if sg is None or not sg.workloads:
        return []
    lines = [
        "**Each peer against spendgate (SQLite, accounting on), same run** "
        "(peer ÷ spendgate; req/s above 1x means the peer is faster, latency and CPU "
        "above 1x mean it costs more)",
        "",
        "| Peer | req/s c=32 JSON | req/s c=32 SSE | req/s c=128 JSON | added p50 c=1 JSON "
        "| CPU per call JSON | CPU per call SSE |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r is sg or not r.workloads:
            continue
        js, ss = r.workloads.get("json"), r.workloads.get("sse")
        gj, gs = sg.workloads.get("json"), sg.workloads.get("sse")
        high = _ratio(
            js.c128.rps if js and js.c128 else None, gj.c128.rps if gj and gj.c128 else None
        )
        lines.append(
            f"| {r.label} | {_ratio(js.rps if js else None, gj.rps if gj else None)} "
            f"| {_ratio(ss.rps if ss else None, gs.rps if gs else None)} | {high} "
            f"| {_ratio(_added_c1(results, r, 'json'), _added_c1(results, sg, 'json'))} "
            f"| {_ratio(_cpu(js), _cpu(gj))} | {_ratio(_cpu(ss), _cpu(gs))} |"
        )
    return lines


def recording_table(results: list[TargetResult]) -> list[str]:
    """Peak memory per target, and for spendgate what it recorded against what wrk sent."""
    lines = [
        "| Target | peak RSS (MiB) | calls sent | completed | forwarded | recorded | "
        "200 & complete | priced | writer queue after a c=32 run (max) | "
        "writer drain after the c=32 runs (s, max) | check |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if r.peak_rss_mb is None:
            continue
        rss = f"{r.peak_rss_mb:,.1f}"
        if not r.records_spendgate or r.recorded is None:
            lines.append(
                f"| {r.label} | {rss} | {r.sent:,} | {r.completed:,} | — | — | — | — | — | — | — |"
            )
            continue
        rec = r.recorded
        backlog = "—" if r.max_backlog is None else f"{r.max_backlog:,}"
        drain = "—" if r.drain_seconds is None else f"{r.drain_seconds:.1f}"
        lines.append(
            f"| {r.label} | {rss} | {r.sent:,} | {r.completed:,} "
            f"| {'—' if r.forwarded is None else f'{r.forwarded:,}'} | {rec.calls:,} | "
            f"{rec.ok:,} | {rec.priced:,} | {backlog} | {drain} | {recording_verdict(r)} |"
        )
    return lines


def sustained_table(results: list[TargetResult]) -> list[str]:
    """The writer under a sustained c=32 load: does its queue stay bounded?"""
    rows = [r for r in results if r.sustained is not None]
    if not rows:
        return []
    lines = [
        "**Writer under sustained load** (c=32 JSON; queue depth sampled every second)",
        "",
        "| Target | seconds | req/s | queue depth max | depth by third of the run (mean) "
        "| drain after (s) | verdict |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        s = r.sustained
        assert s is not None
        depths = [d for _, d in s.samples]
        third = max(1, len(depths) // 3)
        parts = [depths[:third], depths[third : 2 * third], depths[2 * third :]]
        means = " / ".join(f"{sum(p) / len(p):,.0f}" for p in parts if p)
        verdict = "bounded" if s.bounded else "**grows**"
        lines.append(
            f"| {r.label} | {s.seconds:.0f} | {s.rps:,.0f} | {s.max_depth:,} | {means} "
            f"| {s.drain_seconds:.1f} | {verdict} |"
        )
    return lines


def recording_verdict(r: TargetResult) -> str:
    """Whether every call spendgate forwarded was recorded exactly once."""
    rec = r.recorded
    if rec is None:
        return "not counted"
    in_flight = r.sent - r.completed
    if r.forwarded is not None and rec.calls == r.forwarded:
        unread = r.sent - r.forwarded
        return (
            f"exact: every call the upstream answered is recorded once ({in_flight} in "
            f"flight at wrk's stops"
            + (f"; {unread} cut by wrk before spendgate read them" if unread else "")
            + ")"
        )
    if rec.calls == r.sent:
        return f"exact: every call sent is recorded ({in_flight} in flight at wrk's stops)"
    forwarded = "?" if r.forwarded is None else f"{rec.calls - r.forwarded:+,}"
    return (
        f"**MISMATCH**: {forwarded} against the calls the upstream answered, "
        f"{rec.calls - r.sent:+,} against sent"
    )


def _check(ok: bool) -> str:
    return "met" if ok else "**not met**"


def targets_check(results: list[TargetResult]) -> list[str]:
    """Issue 8's targets for each spendgate row with accounting on."""
    lines: list[str] = []
    ll = _by_key(results, "litellm")
    off = _by_key(results, "spendgate-sqlite-off")
    direct = _by_key(results, "direct")
    base_stream = direct.workloads["sse"].stream if direct and "sse" in direct.workloads else None
    for r in results:
        js, ss = r.workloads.get("json"), r.workloads.get("sse")
        if not r.records_spendgate or not js or not js.c1 or not ss:
            continue
        a50 = _added_c1(results, r, "json")
        d = direct.workloads.get("json") if direct else None
        a99 = js.c1.p99_us - d.c1.p99_us if d and d.c1 else None
        out = [f"- **{r.label}**"]
        if a50 is not None and a99 is not None:
            out.append(
                f"  - added latency c=1: p50 {a50 / 1000:+.3f} ms ({_check(a50 <= 400)} ≤ 0.4), "
                f"p99 {a99 / 1000:+.3f} ms ({_check(a99 <= 1500)} ≤ 1.5)"
            )
        if ss.stream and base_stream:
            ttfb = ss.stream.ttfb_p50_us - base_stream.ttfb_p50_us
            per = ss.stream.per_event_p50_us - base_stream.per_event_p50_us
            out.append(
                f"  - streaming: TTFB {ttfb / 1000:+.3f} ms ({_check(ttfb <= 400)} ≤ 0.4), "
                f"{per / 1000:+.4f} ms per event ({_check(per <= 100)} ≤ 0.1)"
            )
        jr, sr = js.rps or 0.0, ss.rps or 0.0
        out.append(
            f"  - c=32: {jr:,.0f} JSON calls/s ({_check(jr >= 2500)} ≥ 2,500), "
            f"{sr:,.0f} streamed calls/s ({_check(sr >= 1800)} ≥ 1,800)"
        )
        lj = ll.workloads.get("json") if ll else None
        ls = ll.workloads.get("sse") if ll else None
        if lj and lj.rps and ls and ls.rps:
            xj, xs = jr / lj.rps, sr / ls.rps
            out.append(
                f"  - against LiteLLM: {xj:.1f}x JSON, {xs:.1f}x SSE "
                f"({_check(min(xj, xs) >= 5)} ≥ 5x)"
            )
        cj, cs = js.cpu_us_per_request, ss.cpu_us_per_request
        if cj is not None and cs is not None:
            out.append(
                f"  - CPU per call: {cj:,.0f} µs JSON, {cs:,.0f} µs SSE "
                f"({_check(max(cj, cs) <= 400)} ≤ 400)"
            )
        oj = off.workloads.get("json") if off else None
        os_ = off.workloads.get("sse") if off else None
        if (
            r.key == "spendgate-sqlite"
            and oj
            and os_
            and cj
            and cs
            and oj.cpu_us_per_request
            and os_.cpu_us_per_request
        ):
            pj = 100 * (cj / oj.cpu_us_per_request - 1)
            ps = 100 * (cs / os_.cpu_us_per_request - 1)
            rj = 100 * (1 - jr / oj.rps) if oj.rps else 0.0
            rs = 100 * (1 - sr / os_.rps) if os_.rps else 0.0
            out.append(
                f"  - accounting on vs off: CPU per call {pj:+.0f} % JSON, {ps:+.0f} % SSE; "
                f"c=32 req/s {-rj:+.0f} % JSON, {-rs:+.0f} % SSE "
                f"({_check(max(pj, ps, rj, rs) <= 15)} ≤ 15 %)"
            )
        if r.sustained is not None:
            out.append(
                f"  - writer, {r.sustained.seconds:.0f} s at c=32: queue max "
                f"{r.sustained.max_depth:,} "
                f"({_check(r.sustained.bounded)}: no unbounded growth)"
            )
        lines += out
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
    out += [*stream_table(results), ""]
    ratios = ratio_table(results)
    if ratios:
        out += [*ratios, ""]
    out += ["**Memory and recording** (counted in the database after the run)", ""]
    out += [*recording_table(results), ""]
    sustained = sustained_table(results)
    if sustained:
        out += [*sustained, ""]
    check = targets_check(results)
    if check:
        out += ["**Issue 8 targets** (one worker process)", "", *check, ""]
    if notes:
        out += ["**Notes**", "", *(f"- {n}" for n in notes), ""]
    return "\n".join(out)

"""``python -m bench soak --minutes 30``: mixed streaming load for a long time; is it flat?

One fake upstream, one spendgate on SQLite, or with ``--database postgres`` on a fresh
PostgreSQL database on the server of SPENDGATE_BENCH_POSTGRES_URL (writer and rollups
on, a proxy key under a budget), and one wrk run per minute at moderate concurrency with
a mixed script: three streams (25 events, ``--gap-ms`` apart, so a stream lasts about 25
x gap) to one JSON call. Per minute: calls, p50/p99, RSS, and the writer's queue depth
(sampled every 5 s). The verdict compares the last third of the run with the middle
third (the first is warm-up): flat when RSS grew by less than 10 % and p99 by less than
50 %. ``--rate-limits`` also puts the key under a global and a per-key rate limit far
above the load (``bench.targets.rate_limits_on_every_key``): every call then takes from
two leased buckets, and the report says how many calls they refused (none expected).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import load, targets
from bench.processes import Servers, rss_mb

RESULTS = Path(__file__).resolve().parent / "results"
_DATABASES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}  # --database: its name


@dataclass(frozen=True)
class Minute:
    """One minute of the soak."""

    minute: int
    calls: int
    rps: float
    p50_us: int
    p99_us: int
    errors: int
    rss_mb: float
    depth_max: int
    depth_end: int


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def verdict(minutes: list[Minute]) -> tuple[bool, str]:
    """Flat or not, and why (last third against the middle third)."""
    if len(minutes) < 3:
        return True, "too short to judge"
    third = len(minutes) // 3
    middle, last = minutes[third : 2 * third], minutes[2 * third :]
    rss_growth = _mean([m.rss_mb for m in last]) / max(_mean([m.rss_mb for m in middle]), 1) - 1
    p99_growth = _mean([m.p99_us for m in last]) / max(_mean([m.p99_us for m in middle]), 1) - 1
    depth = max(m.depth_max for m in minutes)
    flat = rss_growth < 0.10 and p99_growth < 0.50 and last[-1].depth_end < 5000
    why = (
        f"RSS {rss_growth:+.1%} and p99 {p99_growth:+.1%} (last third against the middle "
        f"third); writer queue at most {depth:,}, {last[-1].depth_end:,} at the end"
    )
    return flat, why


def render(minutes: list[Minute], args: argparse.Namespace, recorded: str) -> str:
    """The soak report as markdown."""
    flat, why = verdict(minutes)
    lines = [
        f"**Soak: {len(minutes)} minutes**, c={args.connections}, 3 streams ({args.gap_ms:g} ms "
        f"between events) to 1 JSON call, spendgate on {_DATABASES[args.database]} with "
        "recording, rollups, pricing and a budget"
        + (" and two rate limits" if args.rate_limits else ""),
        "",
        "| minute | calls | req/s | p50 (ms) | p99 (ms) | errors | RSS (MiB) "
        "| queue max | queue at end |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in minutes:
        lines.append(
            f"| {m.minute} | {m.calls:,} | {m.rps:,.0f} | {m.p50_us / 1000:.2f} "
            f"| {m.p99_us / 1000:.2f} | {m.errors} | {m.rss_mb:.1f} | {m.depth_max:,} "
            f"| {m.depth_end:,} |"
        )
    lines += ["", f"Verdict: **{'flat' if flat else 'not flat'}**: {why}. {recorded}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the soak; 0 unless something could not run."""
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--gap-ms", type=float, default=4.0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--database", choices=tuple(_DATABASES), default="sqlite")
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="the key also under a global and a per-key rate limit far above the load",
    )
    args = parser.parse_args(argv)
    admin = targets.postgres_admin_url()
    if args.database == "postgres" and admin is None:
        print("bench: --database postgres needs SPENDGATE_BENCH_POSTGRES_URL", file=sys.stderr)
        return 2
    if load.wrk_path() is None:
        print("bench: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="spendgate-soak-"))
    servers = Servers()
    minutes: list[Minute] = []
    databases = contextlib.ExitStack()
    try:
        upstream, ready = targets.upstream_server(workdir)
        servers.start(upstream, ready)
        url = f"sqlite:///{workdir / 'sqlite' / 'spendgate.db'}"
        if args.database == "postgres" and admin is not None:
            url = databases.enter_context(targets.postgres_database(admin))
        gateway, ready = targets.spendgate_server(workdir, args.database, upstream.port, url)
        servers.start(gateway, ready, timeout=45)
        api_key = targets.proxy_key_with_budget(gateway.port)
        if args.rate_limits:
            targets.rate_limits_on_every_key(gateway.port)
        script = load.write_mixed_script(workdir / "soak.lua", api_key, args.gap_ms)
        target = f"http://127.0.0.1:{gateway.port}/v1/messages"
        sent = 0
        for minute in range(1, args.minutes + 1):
            box: dict[str, Any] = {}

            def drive(box: dict[str, Any] = box) -> None:
                try:
                    box["run"] = load.run(target, script, connections=args.connections, seconds=60)
                except load.LoadError as exc:
                    box["error"] = exc

            thread = threading.Thread(target=drive, name="soak-load")
            thread.start()
            depths = []
            while thread.is_alive():
                time.sleep(5)
                health = targets.health(gateway.port).get("recording", {})
                depths.append(int(health.get("queue_depth") or 0))
            thread.join()
            if "error" in box:
                raise box["error"]
            run: load.Run = box["run"]
            sent += run.sent
            depth_end = int(targets.health(gateway.port)["recording"].get("queue_depth") or 0)
            row = Minute(
                minute,
                run.completed,
                run.rps,
                run.p50_us,
                run.p99_us,
                run.errors,
                rss_mb(gateway.pid),
                max(depths, default=0),
                depth_end,
            )
            minutes.append(row)
            print(
                f"[soak] minute {minute}: {row.rps:,.0f} req/s, p50 {row.p50_us / 1000:.2f} ms, "
                f"p99 {row.p99_us / 1000:.2f} ms, RSS {row.rss_mb:.1f} MiB, queue max "
                f"{row.depth_max:,}",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(2)
        recorded_calls = targets.count_recorded(url).calls
        recorded = f"Recorded {recorded_calls:,} of {sent:,} calls sent" + (
            " (exact)." if recorded_calls == sent else " (**mismatch**)."
        )
        if args.rate_limits:
            limits = targets.get_json(gateway.port, "/api/limits")
            refused = sum(
                int(bucket.get("refused") or 0)
                for limit in limits
                for bucket in limit.get("buckets") or []
            )
            recorded += f" Rate limits: {len(limits)}, {refused:,} calls refused."
    finally:
        servers.stop_all()
        databases.close()
    text = render(minutes, args, recorded)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "soak.md").write_text(text)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0

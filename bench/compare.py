"""``python -m bench compare``: two source trees (or accounting on and off), side by side.

Every variant is a spendgate on SQLite, or on a fresh PostgreSQL database of its own
with ``--database postgres`` (``bench.gateway``, a proxy key under a $1B budget),
started from its own source tree, all in front of one fake upstream. The runs
alternate: per round, each variant in turn (the order rotates every round) gets
a c=32 run per workload, with its CPU counted until its writer has written what the
run queued, and a c=1 run (streams also the c=1 time-to-first-byte probe of
``bench.probe``). Medians over the rounds are printed as a Markdown table.
On a shared machine that is the only fair comparison: load that comes and goes hits
every variant about equally.

    git worktree add /tmp/before HEAD
    python -m bench compare --tree before=/tmp/before --tree after=. --accounting on,off

``--rate-limits NAME,...`` puts the keys of those trees' variants under two rate
limits far above the load (``bench.targets.rate_limits_on_every_key``); the same tree
twice compares a gateway with and without them:

    python -m bench compare --tree plain=. --tree limited=. --rate-limits limited
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import load, probe, targets
from bench.processes import Server, Servers, cpu_seconds


@dataclass
class Variant:
    """One gateway under test and what it measured."""

    name: str
    tree: Path
    accounting: str  # bench.gateway's --accounting: on, off, record or budget
    rate_limited: bool = False
    server: Server | None = None
    api_key: str | None = None
    handled: int = 0
    rps: dict[str, list[float]] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)
    c1_p50_us: dict[str, list[float]] = field(default_factory=dict)
    c1_p99_us: dict[str, list[float]] = field(default_factory=dict)
    # The c=32 run's tail: wrk's p99.9 and slowest call.
    p999_us: dict[str, list[float]] = field(default_factory=dict)
    max_us: dict[str, list[float]] = field(default_factory=dict)
    ttfb_us: list[float] = field(default_factory=list)  # the stream probe at c=1

    @property
    def label(self) -> str:
        limits = ", rate limits" if self.rate_limited else ""
        return f"{self.name}, accounting {self.accounting}{limits}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench compare", description=__doc__)
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a source tree to measure (repeat); default: this tree as 'this'",
    )
    parser.add_argument(
        "--accounting",
        default="on",
        help="comma-separated: on, off, record (no budget hooks), budget (records discarded)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each run")
    parser.add_argument("--workloads", default="json,sse")
    parser.add_argument(
        "--probe-seconds",
        type=float,
        default=2.0,
        help="length of the c=1 stream probe (time to first byte) per round, sse only",
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="where the variants record (postgres: a fresh database each on the server "
        "named by SPENDGATE_BENCH_POSTGRES_URL)",
    )
    parser.add_argument(
        "--rate-limits",
        default="",
        metavar="NAME,...",
        help="trees whose variants' calls also count against two rate limits (global and "
        "per key, far above the load)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE",
        help="an environment variable for the variants of tree NAME (repeat), e.g. "
        "b:BENCH_SWITCH_INTERVAL=0.0005 or b:SPENDGATE_FLUSH_INTERVAL=0.02",
    )
    return parser.parse_args(argv)


def _handled(port: int) -> int:
    rec = targets.health(port).get("recording", {})
    return sum(int(rec.get(k) or 0) for k in ("written", "spooled", "lost"))


def _drain(variant: Variant, upstream_port: int, forwarded_before: int) -> None:
    """Wait until the variant's writer has handled every call forwarded since then."""
    assert variant.server is not None
    if variant.accounting not in ("on", "record"):
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        forwarded = targets.upstream_answered(upstream_port) - forwarded_before
        handled = _handled(variant.server.port)
        if handled - variant.handled >= forwarded:
            variant.handled = handled
            return
        time.sleep(0.05)
    raise RuntimeError(f"{variant.label}: the writer did not drain within 60 s")


def measure(
    variant: Variant, upstream_port: int, scripts: dict[str, Path], args: argparse.Namespace
) -> None:
    """One c=32 run (CPU until drained) and one c=1 run per workload."""
    assert variant.server is not None
    url = f"http://127.0.0.1:{variant.server.port}/v1/messages"
    pid = variant.server.pid
    for workload in args.workloads.split(","):
        script = scripts[workload]
        forwarded_before = targets.upstream_answered(upstream_port)
        cpu_before = cpu_seconds(pid)
        run = load.run(url, script, connections=32, seconds=args.seconds)
        _drain(variant, upstream_port, forwarded_before)
        cpu = cpu_seconds(pid) - cpu_before
        variant.rps.setdefault(workload, []).append(run.rps)
        variant.cpu_us.setdefault(workload, []).append(cpu * 1e6 / max(run.sent, 1))
        variant.p999_us.setdefault(workload, []).append(run.p999_us)
        variant.max_us.setdefault(workload, []).append(run.max_us)
        forwarded_before = targets.upstream_answered(upstream_port)
        one = load.run(url, script, connections=1, seconds=args.seconds)
        _drain(variant, upstream_port, forwarded_before)
        variant.c1_p50_us.setdefault(workload, []).append(one.p50_us)
        variant.c1_p99_us.setdefault(workload, []).append(one.p99_us)
        if workload == "sse":  # time to first byte of a stream, seen by the client
            timing = probe.probe(
                variant.server.port,
                "/v1/messages",
                probe.BODY,
                load.headers_for(variant.api_key),
                seconds=args.probe_seconds,
            )
            variant.ttfb_us.append(timing.ttfb_p50_us)
        print(
            f"[compare] {variant.label} {workload}: {run.rps:,.0f} req/s, "
            f"{variant.cpu_us[workload][-1]:,.0f} µs CPU/call, c=1 p50 {one.p50_us} µs",
            file=sys.stderr,
            flush=True,
        )


def render(variants: list[Variant], workloads: list[str], direct: dict[str, list[float]]) -> str:
    """The Markdown table of medians."""
    lines = [
        "| Workload | Variant | req/s c=32 | CPU µs/call | c=32 p99.9 (ms) | c=32 max (ms) "
        "| c=1 p50 (ms) | c=1 p99 (ms) | stream TTFB c=1 (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    med = statistics.median
    for workload in workloads:
        for v in variants:
            ttfb = f"{med(v.ttfb_us) / 1000:.3f}" if workload == "sse" and v.ttfb_us else "—"
            lines.append(
                f"| {workload.upper()} | {v.label} | {med(v.rps[workload]):,.0f} | "
                f"{med(v.cpu_us[workload]):,.0f} | {med(v.p999_us[workload]) / 1000:.1f} | "
                f"{med(v.max_us[workload]) / 1000:.1f} | {med(v.c1_p50_us[workload]) / 1000:.3f} | "
                f"{med(v.c1_p99_us[workload]) / 1000:.3f} | {ttfb} |"
            )
    for workload in workloads:
        lines.append(f"\nDirect c=1 p50 {workload}: {med(direct[workload]) / 1000:.3f} ms")
    if "direct ttfb" in direct:
        lines.append(f"\nDirect stream TTFB c=1: {med(direct['direct ttfb']) / 1000:.3f} ms")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Run the comparison; print the table."""
    args = parse_args(argv)
    trees = [t.partition("=") for t in args.tree] or [("this", "=", ".")]
    modes = [m.strip() for m in args.accounting.split(",")]
    unknown = [m for m in modes if m not in ("on", "off", "record", "budget")]
    if unknown:
        print(f"--accounting takes on, off, record or budget, not {unknown}", file=sys.stderr)
        return 2
    workloads = args.workloads.split(",")
    workdir = Path(tempfile.mkdtemp(prefix="spendgate-compare-"))
    servers = Servers()
    databases = contextlib.ExitStack()
    limited = {name.strip() for name in args.rate_limits.split(",") if name.strip()}
    unknown = sorted(limited - {name for name, _, _ in trees})
    if unknown:
        print(f"--rate-limits names trees given with --tree, not {unknown}", file=sys.stderr)
        return 2
    variants = [
        Variant(name, Path(path).resolve(), on, rate_limited=name in limited)
        for name, _, path in trees
        for on in modes
    ]
    try:
        upstream, ready = targets.upstream_server(workdir)
        servers.start(upstream, ready)
        for i, v in enumerate(variants):
            url = f"sqlite:///{workdir / f'db{i}' / 'spendgate.db'}"
            if args.database == "postgres":
                admin = targets.postgres_admin_url()
                if admin is None:
                    print("--database postgres needs SPENDGATE_BENCH_POSTGRES_URL", file=sys.stderr)
                    return 2
                url = databases.enter_context(targets.postgres_database(admin))
            server, ready = targets.spendgate_server(
                workdir, f"v{i}", upstream.port, url, accounting=v.accounting
            )
            assert server.env is not None
            server.env["PYTHONPATH"] = f"{v.tree / 'src'}{os.pathsep}{v.tree}"
            for item in args.set:
                name, _, setting = item.partition(":")
                key, _, value = setting.partition("=")
                if name == v.name:
                    server.env[key] = value
            v.server = servers.start(server, ready, timeout=60)
            v.api_key = targets.proxy_key_with_budget(server.port)
            if v.rate_limited:
                targets.rate_limits_on_every_key(server.port)
            v.handled = _handled(server.port)
        direct_scripts = load.write_scripts(workdir / "lua" / "direct")
        direct: dict[str, list[float]] = {}
        for round_ in range(args.rounds):
            order = variants[round_ % len(variants) :] + variants[: round_ % len(variants)]
            for v in order:
                assert v.server is not None
                scripts = load.write_scripts(workdir / "lua" / v.name, v.api_key)
                # A short warm-up on the first round (caches, leases, the heap).
                if round_ == 0:
                    url = f"http://127.0.0.1:{v.server.port}/v1/messages"
                    before = targets.upstream_answered(upstream.port)
                    for script in scripts.values():
                        load.run(url, script, connections=32, seconds=1)
                    _drain(v, upstream.port, before)
                measure(v, upstream.port, scripts, args)
            for workload in workloads:
                one = load.run(
                    f"http://127.0.0.1:{upstream.port}/v1/messages",
                    direct_scripts[workload],
                    connections=1,
                    seconds=1,
                )
                direct.setdefault(workload, []).append(one.p50_us)
                if workload == "sse":
                    timing = probe.probe(
                        upstream.port,
                        "/v1/messages",
                        probe.BODY,
                        load.headers_for(None),
                        seconds=args.probe_seconds,
                    )
                    direct.setdefault("direct ttfb", []).append(timing.ttfb_p50_us)
        print(f"load average after: {os.getloadavg()}", file=sys.stderr)
        print(render(variants, workloads, direct))
    finally:
        servers.stop_all()
        databases.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0

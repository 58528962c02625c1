"""``python -m bench``: start everything on loopback, load it with wrk, report, stop it all.

Targets, side by side in one run: direct to the fake upstream; nginx ``proxy_pass`` (if
``/usr/sbin/nginx`` exists); LiteLLM's proxy (from PyPI, in its own venv, skipped with
the reason if it cannot be installed); spendgate on SQLite with accounting on (recording,
pricing, a proxy key under a budget) and the same gateway with accounting off;
spendgate on PostgreSQL (if ``SPENDGATE_BENCH_POSTGRES_URL`` or
``SPENDGATE_TEST_POSTGRES_URL`` is set). Per target and workload: a warm-up, N runs at
c=32 (the median is reported), one at c=128, one at c=1 and, for streams, the c=1
TTFB probe. spendgate with accounting on also gets a sustained c=32 run with the
writer's queue sampled every second. Timing never fails the run; the exit status is
non-zero only if something could not run. ``python -m bench soak`` is the soak run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bench import litellm, load, probe, profile, report, targets
from bench.processes import Server, Servers, StartError, cpu_seconds, peak_rss_mb
from bench.results_model import Sustained, TargetResult, WorkloadResult
from bench.upstream import MESSAGE_ID, message_body, sse_events

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = (
    "direct",
    "nginx",
    "litellm",
    "spendgate-sqlite",
    "spendgate-sqlite-off",
    "spendgate-postgres",
)
EXPECTED = {"json": message_body(), "sse": b"".join(sse_events())}


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; ``BENCH_SECONDS`` scales every run."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 s runs, one c=32 run, 10 s sustained: about 3 minutes in all",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="length of each measured run (BENCH_SECONDS, default 4, --quick 2)",
    )
    parser.add_argument(
        "--warmup", type=float, default=None, help="warm-up per workload (default 2)"
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="runs at c=32, median reported (3, --quick 1)"
    )
    parser.add_argument("--connections", type=int, default=32, help="concurrency of the runs")
    parser.add_argument("--high", type=int, default=128, help="the high-concurrency run")
    parser.add_argument(
        "--sustain",
        type=float,
        default=None,
        help="sustained c=32 run per spendgate target, s (30, --quick 10; 0 skips)",
    )
    parser.add_argument(
        "--only",
        default=",".join(TARGETS),
        help="comma-separated targets (direct is always measured): " + ", ".join(TARGETS),
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after measuring, profile spendgate (SQLite) with py-spy under c=32 load",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument(
        "--start-retries",
        type=int,
        default=1,
        help="retries (60 s apart) when spendgate does not start, e.g. while src/ is mid-edit",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    if args.seconds is None:
        args.seconds = _env_float("BENCH_SECONDS", 2.0 if quick else 4.0)
    if args.runs is None:
        args.runs = 1 if quick else 3
    if args.sustain is None:
        args.sustain = 10.0 if quick else 30.0
    args.probe_seconds = 1.5 if quick else 3.0
    return args


class Bench:
    """One bench run: its options, its servers and what it found."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.servers = Servers()
        self.results: list[TargetResult] = []
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.upstream_port = 0
        self.postgres_version: str | None = None
        self.warmup = args.warmup if args.warmup is not None else min(2.0, args.seconds)

    def say(self, text: str) -> None:
        """Progress on stderr (the table goes to stdout)."""
        print(f"[bench] {text}", file=sys.stderr, flush=True)

    # -- measuring -------------------------------------------------------

    def check_answer(
        self, result: TargetResult, port: int, workload: str, path: str, api_key: str | None
    ) -> None:
        """One request first: status 200 and the upstream's exact bytes, or the target fails.

        LiteLLM re-frames what it relays, so for it the answer only has to be a 200 that
        carries the upstream's message id.
        """
        answer = targets.post(port, workload, path=path, api_key=api_key)
        result.sent += 1
        result.completed += 1
        exact = answer.body == EXPECTED[workload]
        if result.key == "litellm":
            exact = MESSAGE_ID.encode() in answer.body
        if answer.status != 200 or not exact:
            raise RuntimeError(
                f"{result.label} answered {workload} with HTTP {answer.status} and "
                f"{len(answer.body)} bytes, expected 200 and the upstream's "
                f"{len(EXPECTED[workload])} bytes: {answer.body[:300]!r}"
            )

    def measure(
        self,
        result: TargetResult,
        port: int,
        pid: int | None,
        *,
        path: str = "/v1/messages",
        api_key: str | None = None,
    ) -> None:
        """Per workload: warm-up, c=32 runs (CPU of ``pid``'s tree measured around them),
        one c=128 run, one c=1 run, and for streams the TTFB probe.

        For spendgate, CPU per request runs until the writer has drained what the c=32
        runs queued (recording is part of the cost), and each later run starts on an
        empty queue.
        """
        url = f"http://127.0.0.1:{port}{path}"
        seconds, conns = self.args.seconds, self.args.connections
        records = result.records_spendgate
        scripts = load.write_scripts(self.workdir / "lua" / result.key, api_key)
        for workload, script in scripts.items():
            self.check_answer(result, port, workload, path, api_key)
            w = result.workloads[workload] = WorkloadResult()
            self.say(f"{result.label}, {workload}: warm-up {self.warmup:.0f} s")
            result.count(load.run(url, script, connections=conns, seconds=self.warmup))
            if records:
                self.settle(result, port)
            before = cpu_seconds(pid) if pid else 0.0
            for i in range(self.args.runs):
                run = result.count(load.run(url, script, connections=conns, seconds=seconds))
                w.c32.append(run)
                if records:
                    depth = targets.health(port).get("recording", {}).get("queue_depth") or 0
                    result.max_backlog = max(result.max_backlog or 0, int(depth))
                self.say(f"  c={conns} run {i + 1}: {run.rps:,.0f} req/s")
            if records:
                drained = self.settle(result, port)[1]
                result.drain_seconds = max(result.drain_seconds or 0.0, drained)
                self.say(f"  writer drained {drained:.1f} s after the c={conns} runs")
            if pid:
                sent = sum(r.sent for r in w.c32)
                w.cpu_us_per_request = (cpu_seconds(pid) - before) * 1e6 / max(sent, 1)
            high = self.args.high
            w.c128 = result.count(load.run(url, script, connections=high, seconds=seconds))
            self.say(f"  c={high}: {w.c128.rps:,.0f} req/s, p99 {w.c128.p99_us:,} µs")
            if records:
                self.settle(result, port)
            w.c1 = result.count(load.run(url, script, connections=1, seconds=seconds))
            self.say(f"  c=1: p50 {w.c1.p50_us} µs, p99 {w.c1.p99_us} µs")
            if workload == "sse":
                w.stream = probe.probe(
                    port,
                    path,
                    probe.BODY,
                    load.headers_for(api_key),
                    seconds=self.args.probe_seconds,
                )
                result.sent += w.stream.calls + 20
                result.completed += w.stream.calls + 20
                self.say(
                    f"  stream probe: TTFB p50 {w.stream.ttfb_p50_us:.0f} µs, "
                    f"{w.stream.per_event_p50_us:.1f} µs per event"
                )
        if pid:
            result.peak_rss_mb = peak_rss_mb(pid)

    def sustain(self, result: TargetResult, port: int, api_key: str | None) -> None:
        """A long c=32 JSON run; the writer's queue depth sampled every second."""
        seconds = self.args.sustain
        if seconds <= 0:
            return
        script = load.write_scripts(self.workdir / "lua" / result.key, api_key)["json"]
        url = f"http://127.0.0.1:{port}/v1/messages"
        self.settle(result, port)
        self.say(f"{result.label}: sustained c={self.args.connections} for {seconds:.0f} s")
        box: dict[str, Any] = {}

        def drive() -> None:
            try:
                box["run"] = load.run(
                    url, script, connections=self.args.connections, seconds=seconds
                )
            except load.LoadError as exc:
                box["error"] = exc

        thread = threading.Thread(target=drive, name="bench-sustain")
        started = time.monotonic()
        thread.start()
        samples: list[tuple[float, int]] = []
        while thread.is_alive():
            time.sleep(1.0)
            depth = targets.health(port).get("recording", {}).get("queue_depth") or 0
            samples.append((time.monotonic() - started, int(depth)))
        thread.join()
        if "error" in box:
            raise box["error"]
        run: load.Run = box["run"]
        result.count(run)
        drained = self.settle(result, port)[1]
        result.sustained = Sustained(seconds, run.rps, samples, drained)
        self.say(
            f"  {run.rps:,.0f} req/s; queue depth max {result.sustained.max_depth:,}, "
            f"drained {drained:.1f} s after"
        )

    def start(
        self,
        server: Server,
        ready: Callable[[], bool],
        retries: int = 0,
        timeout: float = 45,
    ) -> Server:
        """Start a server, retrying after a minute (another session may be mid-edit)."""
        for attempt in range(retries + 1):
            try:
                return self.servers.start(server, ready, timeout=timeout)
            except StartError as exc:
                self.servers.stop(server)
                if attempt == retries:
                    raise
                self.say(f"{exc}\n[bench] retrying in 60 s")
                time.sleep(60)
        raise AssertionError("unreachable")

    def run_direct(self) -> None:
        """The upstream alone: the baseline every delta is taken against."""
        server, ready = targets.upstream_server(self.workdir)
        self.start(server, ready)
        self.upstream_port = server.port
        result = TargetResult("direct", "direct to upstream")
        self.results.append(result)
        self.measure(result, server.port, None)
        result.peak_rss_mb = peak_rss_mb(server.pid)

    def run_nginx(self) -> None:
        """nginx ``proxy_pass``: the floor for one extra hop."""
        result = TargetResult("nginx", "nginx `proxy_pass` (floor)")
        self.results.append(result)
        if not targets.NGINX.exists():
            result.skipped = "skipped: no /usr/sbin/nginx (apt-get install -y nginx)"
            self.notes.append(result.skipped)
            return
        server, ready = targets.nginx_server(self.workdir, self.upstream_port)
        try:
            self.start(server, ready)
            self.measure(result, server.port, server.pid)
        finally:
            self.servers.stop(server)

    def run_litellm(self) -> None:
        """LiteLLM's proxy, one worker, Anthropic pass-through to the same upstream."""
        result = TargetResult("litellm", "LiteLLM proxy (1 worker)")
        self.results.append(result)
        try:
            result.version = litellm.ensure_installed(self.say)
        except litellm.Unavailable as exc:
            result.skipped = f"skipped: LiteLLM could not be installed ({exc})"
            self.notes.append(result.skipped)
            return
        result.label = f"LiteLLM {result.version} proxy (1 worker)"
        server, ready = targets.litellm_server(self.workdir, self.upstream_port)
        try:
            self.start(server, ready, timeout=120)
            self.measure(result, server.port, server.pid, path=litellm.PATH)
        finally:
            self.servers.stop(server)

    def run_spendgate(
        self, key: str, label: str, database_url: str, *, accounting: bool = True
    ) -> None:
        """spendgate on ``database_url``, measured, then its records counted."""
        result = TargetResult(key, label)
        self.results.append(result)
        name = key.removeprefix("spendgate-")
        server, ready = targets.spendgate_server(
            self.workdir, name, self.upstream_port, database_url, accounting=accounting
        )
        try:
            self.start(server, ready, retries=self.args.start_retries)
            result.upstream_before = targets.upstream_answered(self.upstream_port)
            api_key = targets.proxy_key_with_budget(server.port)
            self.measure(result, server.port, server.pid, api_key=api_key)
            if accounting:
                self.sustain(result, server.port, api_key)
            if self.args.profile and key == "spendgate-sqlite":
                self.profile(result, server, api_key)
            if accounting:
                result.recorder_health = self.settle(result, server.port)[0]
                result.recorded = targets.count_recorded(database_url)
                self.say(
                    f"{label}: sent {result.sent}, completed {result.completed}, "
                    f"recorded {result.recorded.calls}"
                )
        finally:
            self.servers.stop(server)

    def settle(self, result: TargetResult, port: int) -> tuple[dict[str, Any], float]:
        """Wait until the writer has handled every call forwarded; (recording health, s).

        "Forwarded" is what the fake upstream answered since this target started. A
        call wrk sent on a connection it closed before spendgate read the request
        (at the end of a run) was never served, so it is not waited for.
        """
        started = last_move = time.monotonic()
        last = -1
        while True:
            rec: dict[str, Any] = targets.health(port).get("recording", {})
            handled = sum(int(rec.get(k) or 0) for k in ("written", "spooled", "lost"))
            forwarded = targets.upstream_answered(self.upstream_port) - result.upstream_before
            result.forwarded = forwarded
            now = time.monotonic()
            if handled >= forwarded and rec.get("queue_depth") == 0:
                return rec, now - started
            if handled != last:
                last, last_move = handled, now
            if now - last_move > 15 or now - started > 180:
                self.notes.append(
                    f"{result.label}: the writer stopped making progress at {handled:,} of "
                    f"{forwarded:,} forwarded calls, {now - started:.0f} s after the load"
                )
                return rec, now - started
            time.sleep(0.25)

    def profile(self, result: TargetResult, server: Server, api_key: str | None) -> None:
        """py-spy on the gateway during one extra c=32 run per workload (not in the table)."""
        if profile.py_spy_path() is None:
            self.notes.append(
                "profile skipped: py-spy not installed (.venv/bin/pip install py-spy)"
            )
            return
        url = f"http://127.0.0.1:{server.port}/v1/messages"
        seconds = max(self.args.seconds, 5.0)
        out_dir = self.args.results
        scripts = load.write_scripts(self.workdir / "lua" / result.key, api_key)
        for workload, script in scripts.items():
            raw = out_dir / f"profile-{workload}.txt"
            self.say(f"profiling {result.label}, {workload}, {seconds:.0f} s")
            spy = profile.start(server.pid, seconds + 1, raw)
            try:
                time.sleep(0.5)
                result.count(
                    load.run(url, script, connections=self.args.connections, seconds=seconds)
                )
                spy.wait(seconds + 30)
            finally:
                if spy.poll() is None:
                    spy.terminate()
                    spy.wait(10)
            if not raw.exists():
                self.notes.append(f"py-spy wrote no profile; see {raw.with_suffix('.log')}")
                continue
            summary = profile.summarise(raw)
            text = summary.render(f"{result.label}, {workload}, c={self.args.connections}")
            (out_dir / f"profile-{workload}.md").write_text(text)
            print(text, file=sys.stderr)

    def run_postgres(self) -> None:
        """spendgate on a temporary PostgreSQL database, if a server is configured."""
        admin = targets.postgres_admin_url()
        if admin is None:
            result = TargetResult("spendgate-postgres", "spendgate, PostgreSQL")
            result.skipped = "skipped: set SPENDGATE_BENCH_POSTGRES_URL"
            self.results.append(result)
            self.notes.append(
                "spendgate on PostgreSQL skipped: set SPENDGATE_BENCH_POSTGRES_URL (or "
                "SPENDGATE_TEST_POSTGRES_URL) to a superuser URL"
            )
            return
        with targets.postgres_database(admin) as url:
            self.postgres_version = targets.postgres_server_version(url)
            self.run_spendgate("spendgate-postgres", "spendgate, PostgreSQL", url)

    def guarded(self, key: str, step: Callable[[], None]) -> None:
        """Run one target; a target that cannot run is reported, the others still run."""
        try:
            step()
        except (StartError, load.LoadError, RuntimeError, OSError) as exc:
            self.problems.append(f"{key}: {exc}")
            self.say(f"{key} could not run: {exc}")
            match = [r for r in self.results if r.key == key]
            if match:
                match[-1].failed = "could not run (see notes)"
            self.notes.append(f"{key} could not run: {str(exc).splitlines()[0]}")


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)


def main(argv: list[str] | None = None) -> int:
    """Run the bench; 0 unless something could not run at all."""
    args = parse_args(argv)
    if load.wrk_path() is None:
        print("bench: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    only = {part.strip() for part in args.only.split(",")}
    workdir = Path(tempfile.mkdtemp(prefix="spendgate-bench-"))
    bench = Bench(args, workdir)
    keep_workdir = False
    try:
        try:
            bench.run_direct()
        except (StartError, load.LoadError, RuntimeError, OSError) as exc:
            print(f"bench: the fake upstream could not run: {exc}", file=sys.stderr)
            keep_workdir = True
            return 1
        if "nginx" in only:
            bench.guarded("nginx", bench.run_nginx)
        if "litellm" in only:
            bench.guarded("litellm", bench.run_litellm)
        if "spendgate-sqlite" in only:
            url = f"sqlite:///{workdir / 'sqlite' / 'spendgate.db'}"
            bench.guarded(
                "spendgate-sqlite",
                lambda: bench.run_spendgate("spendgate-sqlite", "spendgate, SQLite", url),
            )
        if "spendgate-sqlite-off" in only:
            url = f"sqlite:///{workdir / 'sqlite-off' / 'spendgate.db'}"
            bench.guarded(
                "spendgate-sqlite-off",
                lambda: bench.run_spendgate(
                    "spendgate-sqlite-off",
                    "spendgate, accounting off (bench switch)",
                    url,
                    accounting=False,
                ),
            )
        if "spendgate-postgres" in only:
            bench.guarded("spendgate-postgres", bench.run_postgres)
    finally:
        bench.servers.stop_all()
    keep_workdir = bool(bench.problems)
    method = (
        f"wrk -t1, per target and workload: {bench.warmup:.0f} s warm-up, "
        f"{args.runs} x {args.seconds:.0f} s at c={args.connections} (median reported), "
        f"1 x {args.seconds:.0f} s at c={args.high}, 1 x {args.seconds:.0f} s at c=1; "
        f"streams also {args.probe_seconds:.1f} s of the c=1 TTFB probe (bench/probe.py); "
        f"spendgate with accounting on also {args.sustain:.0f} s sustained at "
        f"c={args.connections}; all on 127.0.0.1, one process per server"
    )
    if keep_workdir:
        bench.notes.append(f"server logs kept in {workdir}/logs")
    env_lines = report.environment(ROOT, targets.NGINX, bench.postgres_version, bench.results)
    text = report.render(bench.results, env_lines, method, bench.notes)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "latest.md").write_text(text)
    print(f"[bench] written to {args.results / 'latest.md'}", file=sys.stderr)
    if not keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if bench.problems else 0

"""``python -m bench analytics``: analytics at 100K / 1M / 10M recorded calls.

Per size and database: a fresh database is filled with N synthetic calls spread
over 90 days (``bench/synthetic.py``), written oldest first in batches with
``Store.insert_calls`` -- the writer's own path, so the rollups are maintained as
in production. Then, warm, the median of several runs of: ``summary``,
``timeseries`` (30 days, daily, stacked by model), ``breakdown`` (by team) and a
few neighbours (by user, a local time zone, ranges that do not start on the
hour, the Admin API usage report), a request-log page 100,000 rows deep (keyset
cursor), and an export of up to 1,000,000 rows in a child process whose peak RSS
growth is measured. Prints a markdown table; never fails on timing.

    python -m bench analytics --rows 100000,1000000 --db sqlite,postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, select, text

from bench.report import cpu_model
from bench.synthetic import records
from spendgate.adminapi import usage_report
from spendgate.exports import export_calls
from spendgate.pricing import PriceBook, apply_cost
from spendgate.recording.writer import Recorder
from spendgate.records import CallRecord
from spendgate.settings import Settings
from spendgate.storage import CallFilter, Store
from spendgate.storage.analytics import Analytics
from spendgate.storage.calls import Cursor
from spendgate.storage.rollups_schema import (
    rollup_hourly,
    rollup_narrow_daily,
    rollup_narrow_hourly,
    rollup_sessions_daily,
    rollup_tags_hourly,
)
from spendgate.storage.schema import calls
from spendgate.timeseries import timeseries

END = datetime(2026, 11, 20, tzinfo=UTC)
SPAN = timedelta(days=90)
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_QUERY_MS = 100.0
TARGET_PAGE_MS = 50.0
TARGET_WRITE_PER_S = 20_000
DEEP = 100_000
EXPORT_ROWS = 1_000_000


def say(text: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[bench analytics] {text}", file=sys.stderr, flush=True)


@dataclass
class Timing:
    """Milliseconds of repeated runs of one question."""

    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    @property
    def worst(self) -> float:
        return max(self.runs) if self.runs else float("nan")

    @property
    def best(self) -> float:
        return min(self.runs) if self.runs else float("nan")


@dataclass
class SizeResult:
    """Everything measured for one database at one size."""

    db: str
    rows: int
    generate_s: float = 0.0
    write_s: float = 0.0
    write_cpu_s: float = 0.0
    size_mb: float | None = None
    rollup_rows: dict[str, int] = field(default_factory=dict)
    queries: dict[str, Timing] = field(default_factory=dict)
    export: dict[str, dict[str, float]] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)

    @property
    def write_per_s(self) -> float:
        return self.rows / self.write_s if self.write_s else 0.0

    @property
    def write_per_cpu_s(self) -> float:
        return self.rows / self.write_cpu_s if self.write_cpu_s else 0.0


# -- databases ----------------------------------------------------------------------


def postgres_admin_url() -> str | None:
    """A PostgreSQL server where the bench may create databases, if one is configured."""
    return os.environ.get("SPENDGATE_BENCH_POSTGRES_URL") or os.environ.get(
        "SPENDGATE_TEST_POSTGRES_URL"
    )


class Database:
    """A fresh, empty database for one size; removed afterwards unless kept."""

    def __init__(self, kind: str, rows: int, workdir: Path, keep: bool) -> None:
        self.kind = kind
        self.keep = keep
        self.name = f"sg_bench_{rows}_{uuid.uuid4().hex[:6]}"
        self.path: Path | None = None
        if kind == "sqlite":
            self.path = workdir / f"{self.name}.db"
            self.url = f"sqlite:///{self.path}"
            return
        admin = postgres_admin_url()
        if admin is None:
            raise RuntimeError("set SPENDGATE_BENCH_POSTGRES_URL to measure PostgreSQL")
        self.admin = admin.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        engine.dispose()
        self.url = f"{admin.rpartition('/')[0]}/{self.name}"

    def size_mb(self, store: Store) -> float | None:
        with store.engine.connect() as conn:
            if self.kind == "sqlite":
                pages = conn.execute(text("PRAGMA page_count")).scalar() or 0
                size = conn.execute(text("PRAGMA page_size")).scalar() or 0
                return int(pages) * int(size) / 2**20
            value = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
            return int(value or 0) / 2**20

    def drop(self) -> None:
        if self.keep:
            say(f"kept {self.url}")
            return
        if self.path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return
        engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        engine.dispose()


# -- writing ------------------------------------------------------------------------


def fill(store: Store, result: SizeResult, batch: int, book: PriceBook) -> None:
    """Generate and write ``result.rows`` calls; only ``insert_calls`` is timed."""
    pending: list[Any] = []
    written = 0
    generated = time.perf_counter()
    for record in records(result.rows, END - SPAN, END, book=book):
        pending.append(record)
        if len(pending) < batch:
            continue
        result.generate_s += time.perf_counter() - generated
        written += _write(store, pending, result)
        pending = []
        if written % (batch * 250) == 0:
            say(f"  {written:,} written, {written / result.write_s:,.0f}/s")
        generated = time.perf_counter()
    result.generate_s += time.perf_counter() - generated
    if pending:
        written += _write(store, pending, result)
    if written != result.rows:
        result.checks.append(f"wrote {written:,} of {result.rows:,} calls")


def _write(store: Store, batch: list[Any], result: SizeResult) -> int:
    wall, cpu = time.perf_counter(), time.process_time()
    new = store.insert_calls(batch)
    result.write_s += time.perf_counter() - wall
    result.write_cpu_s += time.process_time() - cpu
    return new


# -- reading ------------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int) -> Timing:
    """One warm-up run, then ``repeat`` timed runs."""
    fn()
    timing = Timing()
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        timing.runs.append((time.perf_counter() - started) * 1000)
    return timing


def deep_cursor(store: Store, depth: int) -> str | None:
    """The ``next_cursor`` a client holds after paging ``depth`` rows into the log."""
    stmt = (
        select(calls.c.created_at, calls.c.id)
        .order_by(calls.c.created_at.desc(), calls.c.id.desc())
        .offset(depth - 1)
        .limit(1)
    )
    with store.engine.connect() as conn:
        row = conn.execute(stmt).first()
    return Cursor(row[0], row[1]).encode() if row else None


def questions(store: Store) -> dict[str, Callable[[], Any]]:
    """The questions timed at every size, by name."""
    analytics = Analytics(store)
    month = CallFilter(since=END - timedelta(days=30), until=END)
    ragged = CallFilter(
        since=END - timedelta(days=30, minutes=-17), until=END - timedelta(minutes=23)
    )
    berlin = ZoneInfo("Europe/Berlin")
    cursor = deep_cursor(store, DEEP)
    admin_params = {
        "starting_at": (END - timedelta(days=31)).isoformat(),
        "ending_at": END.isoformat(),
        "limit": "31",
    }
    out: dict[str, Callable[[], Any]] = {
        "summary 30d": lambda: analytics.summary(month),
        "timeseries 30d daily by model": lambda: timeseries(
            analytics, month, granularity="day", stack="model"
        ),
        "breakdown by team 30d": lambda: analytics.breakdown(month, "team"),
        "summary 30d, ragged edges": lambda: analytics.summary(ragged),
        "summary 90d, one user": lambda: analytics.summary(
            replace(month, since=END - SPAN, user="engineering-user3")
        ),
        "timeseries 30d daily by model, Berlin": lambda: timeseries(
            analytics, month, granularity="day", stack="model", zone=berlin
        ),
        "timeseries 7d hourly by team": lambda: timeseries(
            analytics,
            replace(month, since=END - timedelta(days=7)),
            granularity="hour",
            stack="team",
        ),
        "breakdown by user 30d": lambda: analytics.breakdown(month, "user"),
        "breakdown by model then team 30d": lambda: analytics.breakdown(
            month, "model", then="team"
        ),
        "breakdown by tag 30d": lambda: analytics.breakdown(month, "tag"),
        "sessions 30d": lambda: analytics.sessions(month),
        "admin usage report 31d by key, model": lambda: usage_report(
            analytics, admin_params, {"group_by": ["api_key_id", "model"]}, now=END
        ),
        "request log, first page": lambda: store.list_calls(CallFilter(), limit=50),
    }
    if cursor is not None:
        out[f"request log, page {DEEP:,} deep"] = lambda: store.list_calls(
            CallFilter(), limit=50, cursor=cursor
        )
        out[f"request log, page {DEEP:,} deep, team filter"] = lambda: store.list_calls(
            CallFilter(team="Engineering"), limit=50, cursor=cursor
        )
    return out


def api_timings(url: str, workdir: Path, repeat: int) -> dict[str, Timing]:
    """The three target questions through the HTTP API (in process: routing, auth, JSON)."""
    from fastapi.testclient import TestClient

    from spendgate.app import create_app
    from spendgate.settings import Settings

    span = {"since": (END - timedelta(days=30)).isoformat(), "until": END.isoformat()}
    paths = {
        "API summary 30d": ("/api/analytics/summary", span),
        "API timeseries 30d daily by model": (
            "/api/analytics/timeseries",
            {**span, "granularity": "day", "stack": "model"},
        ),
        "API breakdown by team 30d": ("/api/analytics/breakdown", {**span, "by": "team"}),
    }
    settings = Settings(home=workdir / "api-home", database_url=url)
    out: dict[str, Timing] = {}
    # Local mode (no accounts): a loopback Host on a loopback bind is the admin.
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 40000)) as client:
        for name, (path, params) in paths.items():

            def ask(path: str = path, params: dict[str, str] = params) -> None:
                answer = client.get(path, params=params)
                if answer.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {answer.status_code} {answer.text[:200]}")

            out[name] = timed(ask, repeat)
    return out


def check(store: Store, result: SizeResult) -> None:
    """The rollups must agree with the raw calls; the count must be N."""
    got = Analytics(store).summary(CallFilter(), compare=False)
    with store.engine.connect() as conn:
        raw = conn.execute(
            select(func.count(), func.coalesce(func.sum(calls.c.cost_nanousd), 0))
        ).one()
    if got["calls"] != result.rows or got["calls"] != raw[0]:
        result.checks.append(f"calls: rollups {got['calls']:,}, raw {raw[0]:,}")
    for table in (
        rollup_hourly,
        rollup_tags_hourly,
        rollup_narrow_hourly,
        rollup_narrow_daily,
        rollup_sessions_daily,
    ):
        with store.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(table)).scalar()
        result.rollup_rows[table.name] = int(count or 0)


# -- exporting ----------------------------------------------------------------------


def export_child(url: str, fmt: str, until_us: int | None) -> None:
    """Run in a child process: export to /dev/null, print baseline and peak RSS (KiB)."""
    store = Store.open(url, upgrade=False)
    until = datetime.fromtimestamp(until_us / 1e6, UTC) if until_us else None
    flt = CallFilter(until=until)
    # Warm the imports and the connection before the baseline, so only rows count.
    for _ in export_calls(store, CallFilter(until=END - SPAN), fmt):
        pass
    gc.collect()
    with contextlib.suppress(OSError):  # resets VmHWM to the current RSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    baseline = _rss_kib()
    rows = 0
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        for chunk in export_calls(store, flt, fmt):
            sink.write(chunk)
            rows += 1
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{baseline} {peak} {seconds:.3f} {rows}")


def _status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return 0


def _rss_kib() -> int:
    return _status_kib("VmRSS")


def measure_export(store: Store, url: str, result: SizeResult, fmt: str) -> None:
    """Export up to a million rows in a child process; record peak RSS growth."""
    rows = min(result.rows, EXPORT_ROWS)
    until_us: int | None = None
    if rows < result.rows:
        stmt = select(calls.c.created_at).order_by(calls.c.created_at).offset(rows).limit(1)
        with store.engine.connect() as conn:
            until_us = int(conn.execute(stmt).scalar_one().timestamp() * 1e6)
    argv = [sys.executable, "-m", "bench.analytics", "--export-child", url, fmt]
    argv.append(str(until_us or 0))
    out = subprocess.run(
        argv, capture_output=True, text=True, check=False, cwd=Path(__file__).parent.parent
    )
    if out.returncode != 0:
        result.checks.append(f"export {fmt} failed: {out.stderr.strip()[-300:]}")
        return
    baseline, peak, seconds, _chunks = out.stdout.split()
    result.export[fmt] = {
        "rows": rows,
        "seconds": float(seconds),
        "baseline_mb": int(baseline) / 1024,
        "growth_mb": (int(peak) - int(baseline)) / 1024,
    }


# -- a burst, as a busy gateway's writer sees it -----------------------------------


@dataclass
class Burst:
    """Writer throughput when every batch falls in the same hour (a 20,000 calls/s day)."""

    db: str
    rows: int
    batch: int
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    # "insert_calls": batches handed to the store; "recorder": the gateway's writer
    # (bounded queue, batching, its worker thread), fed as fast as it takes them.
    via: str = "insert_calls"

    @property
    def per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_s(self) -> float:
        return self.rows / self.cpu_seconds if self.cpu_seconds else 0.0


def _live(rows: int, book: PriceBook) -> Iterator[CallRecord]:
    """``rows`` calls made in the ten seconds up to now, as a live gateway records them
    (recent hours go to the hourly rollups only; closed hours are folded later)."""
    end = datetime.now(UTC)
    return records(rows, end - timedelta(seconds=10), end, book=book, seed=7)


def run_burst(kind: str, rows: int, batch: int, args: argparse.Namespace, book: PriceBook) -> Burst:
    """``rows`` calls made within the last ten seconds, written ``batch`` at a time."""
    result = Burst(kind, rows, batch)
    database = Database(kind, rows, args.workdir, args.keep)
    store = Store.open(database.url)
    try:
        pending: list[Any] = []
        for record in _live(rows, book):
            pending.append(record)
            if len(pending) == batch:
                wall, cpu = time.perf_counter(), time.process_time()
                store.insert_calls(pending)
                result.seconds += time.perf_counter() - wall
                result.cpu_seconds += time.process_time() - cpu
                pending = []
        say(
            f"{kind} burst, {rows:,} calls in batches of {batch:,}: {result.per_s:,.0f}/s "
            f"({result.per_cpu_s:,.0f} per CPU-second)"
        )
    finally:
        store.close()
        database.drop()
    return result


def run_recorder_burst(kind: str, rows: int, args: argparse.Namespace, book: PriceBook) -> Burst:
    """``rows`` calls made within the last ten seconds, submitted to a :class:`Recorder` with the
    gateway's default settings as fast as its queue takes them, timed until written."""
    defaults = Settings.model_construct()
    result = Burst(kind, rows, defaults.batch_size, via="recorder")
    database = Database(kind, rows, args.workdir, args.keep)
    store = Store.open(database.url)
    spool = Path(tempfile.mkdtemp(prefix="sg-bench-spool-", dir=args.workdir))
    pending = list(_live(rows, book))

    async def feed() -> Recorder:
        recorder = Recorder(
            store,
            spool_dir=spool,
            pricer=lambda record: apply_cost(book, record),
            queue_size=defaults.queue_size,
            batch_size=defaults.batch_size,
            flush_interval=defaults.flush_interval,
        )
        await recorder.start()
        wall, cpu = time.perf_counter(), time.process_time()
        for i, record in enumerate(pending):
            # Never more than the queue holds: a full queue would spill to the spool.
            while i % 1000 == 0 and recorder.stats().queue_depth > defaults.queue_size - 1000:
                await asyncio.sleep(0.001)
            recorder.submit(record)
        await recorder.flush()
        result.seconds = time.perf_counter() - wall
        result.cpu_seconds = time.process_time() - cpu
        await recorder.stop()
        return recorder

    try:
        recorder = asyncio.run(feed())
        stats = recorder.stats()
        if stats.written != rows or stats.spooled_pending or stats.lost:
            raise SystemExit(
                f"recorder burst wrote {stats.written:,} of {rows:,} "
                f"(spooled {stats.spooled_pending:,}, lost {stats.lost:,})"
            )
        say(
            f"{kind} burst through the recorder, {rows:,} calls (batches up to "
            f"{result.batch:,}): {result.per_s:,.0f}/s ({result.per_cpu_s:,.0f} per CPU-second)"
        )
    finally:
        store.close()
        database.drop()
        shutil.rmtree(spool, ignore_errors=True)
    return result


# -- running ------------------------------------------------------------------------


def run_size(kind: str, rows: int, args: argparse.Namespace, book: PriceBook) -> SizeResult:
    """One database, one size: fill, check, ask, export."""
    result = SizeResult(kind, rows)
    database = Database(kind, rows, args.workdir, args.keep)
    store = Store.open(database.url)
    try:
        say(f"{kind}, {rows:,} calls: writing (batches of {args.batch:,})")
        fill(store, result, args.batch, book)
        say(
            f"  wrote {rows:,} in {result.write_s:.1f} s: {result.write_per_s:,.0f}/s "
            f"({result.write_per_cpu_s:,.0f} per CPU-second); generating took "
            f"{result.generate_s:.1f} s"
        )
        if kind == "postgres":
            with store.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        check(store, result)
        result.size_mb = database.size_mb(store)
        for name, fn in questions(store).items():
            result.queries[name] = timing = timed(fn, args.repeat)
            say(f"  {name}: {timing.median:.1f} ms (best {timing.best:.1f})")
        try:
            for name, timing in api_timings(database.url, args.workdir, args.repeat).items():
                result.queries[name] = timing
                say(f"  {name}: {timing.median:.1f} ms (best {timing.best:.1f})")
        except Exception as exc:  # the library figures stand; say why the API ones are missing
            result.checks.append(f"API timings: {exc}")
        if not args.no_export:
            for fmt in ("csv", "ndjson"):
                measure_export(store, database.url, result, fmt)
                if fmt in result.export:
                    e = result.export[fmt]
                    say(
                        f"  export {fmt} {e['rows']:,} rows: {e['seconds']:.1f} s, "
                        f"peak RSS +{e['growth_mb']:.1f} MiB"
                    )
    finally:
        store.close()
        database.drop()
    return result


def _versions() -> str:
    parts = [f"Python {platform.python_version()}", f"SQLite {sqlite3.sqlite_version}"]
    for package in ("spendgate", "sqlalchemy", "psycopg"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            parts.append(f"{package} {metadata.version(package)}")
    admin = postgres_admin_url()
    if admin:
        try:
            engine = create_engine(admin.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.connect() as conn:
                version = str(conn.execute(text("SHOW server_version")).scalar())
            engine.dispose()
            parts.append(f"PostgreSQL {version.split(maxsplit=1)[0]}")
        except Exception:
            pass
    return ", ".join(parts)


def _ms(value: float, target: float | None = None) -> str:
    mark = "" if target is None or value <= target else " ✗"
    return f"{value:.1f}{mark}"


def table(results: list[SizeResult], bursts: list[Burst] | None = None) -> str:
    """The markdown report."""
    cols = [f"{r.db} {r.rows:,}" for r in results]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Date {datetime.now(UTC):%Y-%m-%d}; machine: {os.cpu_count()} CPUs, {cpu_model()}; "
        f"{_versions()}; load average at the end {load}.",
        "",
        "| | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    lines.append(
        "| writer, records/s (wall) | "
        + " | ".join(f"{r.write_per_s:,.0f}" for r in results)
        + " |"
    )
    lines.append(
        "| writer, records per CPU-second | "
        + " | ".join(f"{r.write_per_cpu_s:,.0f}" for r in results)
        + " |"
    )
    names = list(dict.fromkeys(n for r in results for n in r.queries))
    for name in names:
        target = TARGET_PAGE_MS if name.startswith("request log") else TARGET_QUERY_MS
        cells = []
        for r in results:
            t = r.queries.get(name)
            cells.append(f"{_ms(t.median, target)} ({t.best:.1f})" if t else "-")
        lines.append(f"| {name}, ms: median (best) | " + " | ".join(cells) + " |")
    for fmt in ("csv", "ndjson"):
        cells = []
        for r in results:
            e = r.export.get(fmt)
            cells.append(
                f"{e['rows'] / e['seconds']:,.0f} rows/s, +{e['growth_mb']:.1f} MiB" if e else "-"
            )
        lines.append(
            f"| export {fmt} (≤ 1M rows): speed, peak RSS growth | " + " | ".join(cells) + " |"
        )
    lines.append(
        "| database size, MiB | "
        + " | ".join(f"{r.size_mb:,.0f}" if r.size_mb else "-" for r in results)
        + " |"
    )
    for name in ("rollup_hourly", "rollup_tags_hourly", "rollup_narrow_daily"):
        lines.append(
            f"| {name} rows | "
            + " | ".join(f"{r.rollup_rows.get(name, 0):,}" for r in results)
            + " |"
        )
    if bursts:
        lines += [
            "",
            "| writer burst (a live busy hour) | records/s (wall) | records per CPU-second |",
            "|---|---:|---:|",
        ]
        for b in bursts:
            how = (
                f"through the recorder (batches up to {b.batch:,})"
                if b.via == "recorder"
                else f"batches of {b.batch:,}"
            )
            lines.append(
                f"| {b.db}, {b.rows:,} calls, {how} | {b.per_s:,.0f} | {b.per_cpu_s:,.0f} |"
            )
    problems = [f"{r.db} {r.rows:,}: {c}" for r in results for c in r.checks]
    if problems:
        lines += ["", "Problems: " + "; ".join(problems)]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench analytics", description=__doc__)
    parser.add_argument(
        "--rows", default="100000,1000000", help="comma-separated sizes (default 100000,1000000)"
    )
    parser.add_argument(
        "--db", default="sqlite,postgres", help="sqlite, postgres or both (default both)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=Settings.model_fields["batch_size"].default,
        help="records per insert_calls (default: the writer's batch_size)",
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per question")
    parser.add_argument("--workdir", type=Path, default=None, help="where SQLite files go")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--no-export", action="store_true", help="skip the export runs")
    parser.add_argument("--max-rows", type=int, default=20_000_000, help="refuse larger sizes")
    parser.add_argument("--results", type=Path, default=RESULTS / "analytics.md")
    parser.add_argument(
        "--burst",
        type=int,
        default=200_000,
        help="calls written as one busy hour, at batch 1000 and 5000 (0: skip)",
    )
    parser.add_argument("--export-child", nargs=3, metavar=("URL", "FORMAT", "UNTIL_US"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every size on every database; print and save the table."""
    args = parse_args(argv)
    if args.export_child:
        url, fmt, until_us = args.export_child
        export_child(url, fmt, int(until_us) or None)
        return 0
    sizes = list(iter_sizes(args.rows))
    if any(n < 1 or n > args.max_rows for n in sizes):
        say(f"sizes must be between 1 and --max-rows ({args.max_rows:,})")
        return 2
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if kinds == ["both"]:
        kinds = ["sqlite", "postgres"]
    unknown = [k for k in kinds if k not in ("sqlite", "postgres")]
    if unknown or not kinds:
        say(f"--db takes sqlite, postgres or both, not {args.db!r}")
        return 2
    if "postgres" in kinds and postgres_admin_url() is None:
        say("no PostgreSQL (set SPENDGATE_BENCH_POSTGRES_URL); measuring SQLite only")
        kinds.remove("postgres")
    book = PriceBook.load()
    results: list[SizeResult] = []
    bursts: list[Burst] = []
    with tempfile.TemporaryDirectory(prefix="sg-bench-analytics-") as tmp:
        args.workdir = args.workdir or Path(tmp)
        if args.burst:
            for kind in kinds:
                for batch in (1000, 5000):
                    bursts.append(run_burst(kind, args.burst, batch, args, book))
                bursts.append(run_recorder_burst(kind, args.burst, args, book))
        for rows in sizes:
            for kind in kinds:
                results.append(run_size(kind, rows, args, book))
                print(table(results, bursts), file=sys.stderr)
    report = table(results, bursts)
    print(report)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(report)
    return 0


def iter_sizes(text_value: str) -> Iterator[int]:
    """Sizes from ``100000,1M,10M``-style text."""
    for raw in text_value.split(","):
        part = raw.strip().upper().replace("_", "")
        if part:
            factor = 1_000_000 if part.endswith("M") else 1_000 if part.endswith("K") else 1
            yield int(float(part.rstrip("MK")) * factor)


if __name__ == "__main__":
    sys.exit(main())

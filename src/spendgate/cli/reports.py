"""``spendgate report``, ``spendgate tail`` and ``spendgate export``: on the database directly."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, BinaryIO

import click
from rich.console import Console
from rich.table import Table

from spendgate.cli.common import build_settings, database_option, open_store, print_json
from spendgate.exports import ExportError, chargeback, chargeback_csv, export_calls, focus_csv
from spendgate.ranges import Range, resolve
from spendgate.storage import CallFilter, Store
from spendgate.storage.analytics import Analytics, AnalyticsError
from spendgate.storage.rollups import rebuild_rollups
from spendgate.timeparse import TimeError, parse_when, parse_zone
from spendgate.timeseries import timeseries

_TIME_DEFAULTS = {"daily": ("day", "30d"), "weekly": ("week", "90d"), "monthly": ("month", "90d")}
_DIMENSION_REPORTS = {
    "models": "model",
    "keys": "key",
    "teams": "team",
    "users": "user",
    "projects": "project",
}


def _money(value: str | None) -> str:
    if value is None:
        return "-"
    return f"${Decimal(value):,.2f}"


def _count(value: int) -> str:
    return f"{value:,}"


def _console() -> Console:
    """Rich output; 120 columns when piped, so tables do not wrap into unreadable cells."""
    return Console(width=None if sys.stdout.isatty() else 120)


def _tokens(value: int) -> str:
    """Token counts compactly (12.3M), so a table fits an 80-column terminal."""
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (10_000, "K")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}" if suffix != "K" else f"{value // 1000:,}K"
    return f"{value:,}"


def _open(database_url: str | None) -> Store:
    return open_store(build_settings(database_url=database_url))


def _range(since: str | None, until: str | None, tz: str | None, default: str) -> Range:
    try:
        return resolve(None, since, until, tz, default=default)
    except TimeError as exc:
        raise click.BadParameter(str(exc)) from exc


def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (AnalyticsError, ExportError) as exc:
        raise click.ClickException(str(exc)) from exc


def _table(title: str, first: str, rows: list[dict[str, Any]], label: str = "key") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(first, no_wrap=True, min_width=min(30, max(len(str(r[label])) for r in rows)))
    for name in ("Calls", "Input", "Output", "Cache W", "Cache R", "Errors", "Cost"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            str(row[label] if row[label] is not None else "(none)"),
            _count(row["calls"]),
            _tokens(row["input_tokens"]),
            _tokens(row["output_tokens"]),
            _tokens(row["cache_creation_input_tokens"]),
            _tokens(row["cache_read_input_tokens"]),
            _count(row["errors"]),
            _money(row["cost_usd"]),
        )
    return table


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option("--since", default=None, help="Start: RFC 3339, a date, or 30d."),
            click.option("--until", default=None, help="End (exclusive); default now."),
            click.option("--tz", default=None, help="IANA time zone for days (default UTC)."),
            click.option("--team", default=None, help="Only this team."),
            click.option("--model", default=None, help="Only this model."),
            click.option("--project", default=None, help="Only this project."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
            database_option,
        )
    ):
        fn = option(fn)
    return fn


@click.group()
def report() -> None:
    """Spend reports from the database (no server needed)."""


def _time_report(kind: str) -> click.Command:
    granularity, default = _TIME_DEFAULTS[kind]

    @_common
    @click.option(
        "--breakdown",
        is_flag=False,
        flag_value="model",
        default=None,
        help="Split each row by a dimension (model when given alone; or team, user, ...).",
    )
    def command(breakdown: str | None, as_json: bool, database_url: str | None, **kw: Any) -> None:
        rng = _range(kw.pop("since"), kw.pop("until"), kw.pop("tz"), default)
        flt = CallFilter(since=rng.since, until=rng.until, **kw)
        analytics = Analytics(_open(database_url))
        answer = _run(
            timeseries, analytics, flt, granularity=granularity, zone=rng.zone, stack=breakdown
        )
        if as_json:
            print_json(answer)
            return
        rows: list[dict[str, Any]] = []
        for point in answer["data"]:
            if not point["calls"]:
                continue
            rows.append({**point, "key": point["start"][: 7 if kind == "monthly" else 10]})
            rows.extend({**s, "key": f"  {s['key'] or '(none)'}"} for s in point.get("series", []))
        total = _run(analytics.summary, flt, compare=False)
        rows.append({**total, "key": "Total"})
        _console().print(_table(f"{kind.title()} spend ({rng.zone.key})", "Period", rows))

    command.__doc__ = f"Spend per {granularity} (default: the last {default})."
    return click.command(kind)(command)


def _dimension_report(kind: str) -> click.Command:
    by = _DIMENSION_REPORTS[kind]

    @_common
    @click.option("--breakdown", default=None, help="Second dimension (model, team, user, ...).")
    @click.option("--tag", default=None, help="Only calls with this tag.")
    def command(breakdown: str | None, as_json: bool, database_url: str | None, **kw: Any) -> None:
        rng = _range(kw.pop("since"), kw.pop("until"), kw.pop("tz"), "30d")
        flt = CallFilter(since=rng.since, until=rng.until, **kw)
        answer = _run(Analytics(_open(database_url)).breakdown, flt, by, then=breakdown)
        if as_json:
            print_json(answer)
            return
        rows = answer["data"]
        for row in rows:
            name = row["key"] if row["key"] is not None else "(none)"
            if row.get("label"):
                name = f"{name} ({row['label']})"
            row["name"] = f"{name} / {row['then'] or '(none)'}" if breakdown else name
        rows.append({**answer["total"], "name": "Total"})
        title = f"Spend by {by} since {rng.since:%Y-%m-%d %H:%M} UTC"
        _console().print(_table(title, by.title(), rows, label="name"))

    command.__doc__ = f"Spend per {by} (default: the last 30 days)."
    return click.command(kind)(command)


@report.command("sessions")
@_common
@click.option("--limit", type=click.IntRange(1, 10_000), default=50)
@click.option(
    "--breakdown",
    type=click.Choice(["model"]),
    is_flag=False,
    flag_value="model",
    default=None,
    help="Split each session by model.",
)
def report_sessions(
    limit: int, breakdown: str | None, as_json: bool, database_url: str | None, **kw: Any
) -> None:
    """Claude Code sessions, newest first (default: the last 30 days)."""
    rng = _range(kw.pop("since"), kw.pop("until"), kw.pop("tz"), "30d")
    flt = CallFilter(since=rng.since, until=rng.until, **kw)
    analytics = Analytics(_open(database_url))
    rows = _run(analytics.sessions, flt, limit=limit, by_model=breakdown == "model")
    if as_json:
        print_json({"data": rows})
        return
    table = Table(title="Sessions", title_justify="left")
    for name in ("Session", "Project", "User", "Last activity", "Calls", "Output", "Cost"):
        table.add_column(name, justify="right" if name in ("Calls", "Output", "Cost") else "left")
    for r in rows:
        table.add_row(
            r["session_id"],
            r["project"] or "",
            r["user"] or "",
            r["last_at"][:16].replace("T", " "),
            _count(r["calls"]),
            _count(r["output_tokens"]),
            _money(r["cost_usd"]),
        )
        for m in r.get("by_model", []):
            table.add_row(
                f"  {m['model'] or '(none)'}",
                "",
                "",
                "",
                _count(m["calls"]),
                _count(m["output_tokens"]),
                _money(m["cost_usd"]),
            )
    _console().print(table)


for _kind in _TIME_DEFAULTS:
    report.add_command(_time_report(_kind))
for _kind in _DIMENSION_REPORTS:
    report.add_command(_dimension_report(_kind))


def _tail_line(call: dict[str, Any]) -> str:
    who = "/".join(x for x in (call["team"], call["user"], call["project"]) if x) or "-"
    status = call["status_code"] or "-"
    cost = f"${call['cost_usd']}" if call["cost_usd"] else "unpriced"
    latency = f"{call['latency_ms']:.0f}ms" if call["latency_ms"] is not None else "-"
    return (
        f"{call['created_at']}  {status}  {call['model'] or '-':<28} "
        f"in={call['input_tokens']} out={call['output_tokens']} "
        f"cache_r={call['cache_read_input_tokens']}  {cost}  {latency}  {who}"
    )


# A call is recorded when it ends but listed under when it started: a long stream
# shows up minutes after shorter calls that started later. tail keeps looking back.
TAIL_LOOKBACK = timedelta(minutes=15)


class TailWatcher:
    """New calls since the last look, each once, even when recorded late (``spendgate tail``)."""

    def __init__(self, store: Store, lookback: timedelta = TAIL_LOOKBACK) -> None:
        self.store = store
        self.lookback = lookback
        self.seen: dict[str, datetime] = {}
        self.horizon: datetime | None = None  # newest created_at seen so far

    def recent(self, lines: int) -> list[dict[str, Any]]:
        """The last ``lines`` calls, oldest first; everything older counts as seen."""
        page = self.store.list_calls(CallFilter(), limit=max(lines, 1)).data
        newest = self.store.list_calls(CallFilter(), limit=1).data
        if newest:
            self.horizon = parse_when(newest[0]["created_at"])
            for at, call_id in self.store.call_ids_since(self.horizon - self.lookback):
                self.seen[call_id] = at
        return list(reversed(page))[-lines:] if lines else []

    def poll(self) -> list[dict[str, Any]]:
        """Calls not shown yet, oldest first."""
        since = (self.horizon - self.lookback) if self.horizon else datetime(1970, 1, 1, tzinfo=UTC)
        fresh = [(at, i) for at, i in self.store.call_ids_since(since) if i not in self.seen]
        if not fresh:
            return []
        for at, call_id in fresh:
            self.seen[call_id] = at
        newest = max(at for at, _ in fresh)
        self.horizon = max(self.horizon or newest, newest)
        cutoff = self.horizon - self.lookback
        self.seen = {i: at for i, at in self.seen.items() if at >= cutoff}
        calls = self.store.list_calls(CallFilter(ids=[i for _, i in fresh]), limit=len(fresh))
        return list(reversed(calls.data))


@click.command()
@click.option("-n", "--lines", type=click.IntRange(0, 1000), default=10, help="Recent calls first.")
@click.option("--follow/--no-follow", default=True, help="Keep watching for new calls.")
@click.option("--interval", type=float, default=1.0, help="Seconds between polls.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@database_option
def tail(
    lines: int, follow: bool, interval: float, as_json: bool, database_url: str | None
) -> None:
    """Watch calls as they are recorded (like tail -f), late-recorded long streams included."""
    import orjson

    watcher = TailWatcher(_open(database_url))

    def emit(call: dict[str, Any]) -> None:
        click.echo(orjson.dumps(call).decode() if as_json else _tail_line(call))

    for call in watcher.recent(lines):
        emit(call)
    while follow:
        time.sleep(interval)
        for call in watcher.poll():
            emit(call)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "ndjson"]), default="csv")
@click.option("--chargeback", "month", default=None, help="Per-team statement for YYYY-MM.")
@click.option("--focus", is_flag=True, help="FOCUS-format CSV for finance tools.")
@click.option("-o", "--output", type=click.File("wb"), default="-", help="File (default stdout).")
@click.option("--since", default=None)
@click.option("--until", default=None)
@click.option("--tz", default=None, help="Time zone for --chargeback months and dates.")
@click.option("--model", default=None)
@click.option("--source", default=None, help="proxy, batch, manual or import.")
@click.option("--status", default=None, help="ok, error or an HTTP status code.")
@click.option("--key-id", default=None)
@click.option("--credential", default=None, help="Credential fingerprint.")
@click.option("--team", default=None)
@click.option("--user", default=None)
@click.option("--project", default=None)
@click.option("--session-id", default=None)
@click.option("--pricing-status", default=None, help="priced, unpriced, not_billable, ...")
@click.option("--endpoint", default=None, help="e.g. /v1/messages")
@click.option("--tag", default=None)
@database_option
def export(
    fmt: str,
    month: str | None,
    focus: bool,
    output: BinaryIO,
    database_url: str | None,
    since: str | None,
    until: str | None,
    tz: str | None,
    **kw: Any,
) -> None:
    """Export calls (csv, json, ndjson; streamed), a team chargeback or FOCUS CSV.

    Call exports take the request log's filters and stream in constant memory.
    """
    status = kw.get("status")
    if status is not None and status not in ("ok", "error") and not status.isdigit():
        raise click.BadParameter("use ok, error or an HTTP status code", param_hint="--status")
    store = _open(database_url)
    try:
        zone = parse_zone(tz)
        if month is not None:
            statement = chargeback(Analytics(store), month, zone)
            if fmt == "csv":
                output.writelines(chargeback_csv(statement))
            else:
                output.write(_json_bytes(statement))
            return
        if focus:
            rng = resolve(None, since, until, tz, default="30d")
            output.writelines(focus_csv(Analytics(store), rng.since, rng.until))
            return
        flt = replace(
            CallFilter(**kw),
            since=parse_when(since, tz=tz) if since else None,
            until=parse_when(until, tz=tz) if until else None,
        )
        for chunk in export_calls(store, flt, fmt):
            output.write(chunk)
    except (ExportError, TimeError, AnalyticsError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        output.flush()
        if output is not sys.stdout.buffer:
            output.close()


def _json_bytes(value: Any) -> bytes:
    import json

    return (json.dumps(value, indent=2) + "\n").encode()


@click.command("rebuild-rollups")
@database_option
def rebuild_rollups_command(database_url: str | None) -> None:
    """Recompute the analytics rollups from the raw calls (stop the gateway first)."""
    from itertools import islice

    store = _open(database_url)
    rows = store.iter_call_rows(CallFilter())
    chunks = iter(lambda: list(islice(rows, 5000)), [])
    folded = rebuild_rollups(store.engine, chunks)
    click.echo(f"rollups rebuilt from {folded:,} calls")


@click.command("prune")
@click.option("--older-than", required=True, help="Delete raw calls older than this (e.g. 400d).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@database_option
def prune_command(older_than: str, yes: bool, database_url: str | None) -> None:
    """Delete old raw calls (retention). Rollups are kept, so reports still show them."""
    try:
        cutoff = parse_when(older_than)
    except TimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from exc
    store = _open(database_url)
    count = store.count_calls(CallFilter(until=cutoff))
    if not yes:
        click.confirm(
            f"delete {count:,} calls recorded before {cutoff:%Y-%m-%d %H:%M} UTC?", abort=True
        )
    deleted = store.delete_calls(CallFilter(until=cutoff))
    click.echo(f"deleted {deleted:,} raw calls; rollups kept")

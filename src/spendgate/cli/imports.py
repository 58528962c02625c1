"""``spendgate import``: bring usage recorded elsewhere into the ledger."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from spendgate.anthropic_admin import AdminClient, AdminImportError, day_span, import_reports
from spendgate.claude_code import DEFAULT_ROOTS, priced_records, read_entries, transcript_files
from spendgate.cli.common import build_settings, database_option, open_store, print_json
from spendgate.pricing import PriceBook, PriceBookError
from spendgate.reconcile import TOKEN_CLASSES
from spendgate.reconcile import reconcile as reconcile_ledger
from spendgate.storage.analytics import Analytics
from spendgate.storage.anthropic_reports import AnthropicReports
from spendgate.timeparse import TimeError, parse_when


@click.group("import")
def import_() -> None:
    """Import usage recorded outside the gateway."""


@import_.command("claude-code")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--user", default=None, help="Attribute the calls to this user.")
@click.option("--team", default=None, help="Attribute the calls to this team.")
@database_option
def claude_code(
    paths: tuple[Path, ...], user: str | None, team: str | None, database_url: str | None
) -> None:
    """Import Claude Code transcripts (default ~/.claude/projects and ~/.config/claude/projects).

    Responses are deduplicated by message id + request id (the final line wins)
    and attributed to their project and session. Importing again adds nothing.
    """
    settings = build_settings(database_url=database_url)
    try:
        book = PriceBook.load(settings.price_files)
    except PriceBookError as exc:
        raise click.ClickException(str(exc)) from exc
    files = list(transcript_files(paths or DEFAULT_ROOTS))
    if not files:
        where = ", ".join(str(p) for p in (paths or DEFAULT_ROOTS))
        raise click.ClickException(f"no Claude Code transcripts (*.jsonl) found in {where}")
    records = priced_records(read_entries(files).values(), book, user=user, team=team)
    store = open_store(settings)
    new = sum(store.insert_calls(records[i : i + 2000]) for i in range(0, len(records), 2000))
    unpriced = sum(1 for r in records if r.pricing_status == "unpriced")
    click.echo(
        f"read {len(files)} files: {len(records)} responses, {new} new"
        + (f", {unpriced} unpriced (unknown model)" if unpriced else "")
    )


@import_.command("anthropic-admin")
@click.option("--since", default="30d", show_default=True, help="First day: a date or 30d.")
@click.option("--until", default=None, help="End (exclusive, rounded up to a day); default now.")
@click.option("--admin-key", default=None, help="Admin API key (default ANTHROPIC_ADMIN_KEY).")
@click.option("--base-url", default=None, help="API base URL (default SPENDGATE_UPSTREAM_URL).")
@click.option(
    "--cost-unit",
    type=click.Choice(["cents", "dollars"]),
    default="cents",
    show_default=True,
    help="Unit of the cost report's amounts (Anthropic documents cents).",
)
@database_option
def anthropic_admin(
    since: str,
    until: str | None,
    admin_key: str | None,
    base_url: str | None,
    cost_unit: str,
    database_url: str | None,
) -> None:
    """Pull Anthropic's usage and cost reports (Admin API) for `spendgate reconcile`.

    Days are UTC, one bucket each; importing a day again replaces it.
    """
    settings = build_settings(database_url=database_url, upstream_url=base_url)
    key = admin_key or (
        settings.anthropic_admin_key.get_secret_value() if settings.anthropic_admin_key else None
    )
    if not key:
        raise click.ClickException(
            "no Admin API key: set ANTHROPIC_ADMIN_KEY or pass --admin-key "
            "(an sk-ant-admin… key from the Anthropic console)"
        )
    start, end = _span(since, until)
    store = open_store(settings)
    client = AdminClient(settings.upstream_url, key)
    try:
        summary = import_reports(client, AnthropicReports(store.engine), start, end, unit=cost_unit)
    except AdminImportError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"imported {summary.since:%Y-%m-%d} to {summary.until:%Y-%m-%d} (UTC days): "
        f"{summary.usage_rows} usage rows, {summary.cost_rows} cost rows"
    )


def _span(since: str, until: str | None) -> tuple[datetime, datetime]:
    try:
        start = parse_when(since)
        end = parse_when(until) if until else datetime.now(UTC)
    except TimeError as exc:
        raise click.BadParameter(str(exc)) from exc
    start, end = day_span(start, end)
    if start >= end:
        raise click.BadParameter("--since must be before --until")
    return start, end


def _key_map(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        theirs, sep, ours = pair.partition("=")
        if not sep or not theirs or not ours:
            raise click.BadParameter(
                f"{pair!r}: use ANTHROPIC_KEY_ID=SPENDGATE_KEY_ID", param_hint="--key-map"
            )
        out[theirs.strip()] = ours.strip()
    return out


@click.command()
@click.option("--since", default="30d", show_default=True, help="First day: a date or 30d.")
@click.option("--until", default=None, help="End (exclusive, rounded up to a day); default now.")
@click.option(
    "--key-map",
    multiple=True,
    help="Pair an Anthropic key with a spendgate key: apikey_01…=KEY_ID (repeatable).",
)
@click.option("--no-keys", is_flag=True, help="Compare per day and model only.")
@click.option("--source", default=None, help="Only calls from this source (proxy, import, ...).")
@click.option("--differences", is_flag=True, help="Only lines that differ.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@database_option
def reconcile(
    since: str,
    until: str | None,
    key_map: tuple[str, ...],
    no_keys: bool,
    source: str | None,
    differences: bool,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Our ledger next to Anthropic's figures, per UTC day, model and key, with the difference.

    Run `spendgate import anthropic-admin` for the same days first.
    """
    start, end = _span(since, until)
    store = open_store(build_settings(database_url=database_url))
    answer = reconcile_ledger(
        Analytics(store),
        AnthropicReports(store.engine),
        start,
        end,
        key_map=_key_map(key_map),
        by_key=not no_keys,
        source=source,
    )
    if differences:
        answer["tokens"] = [line for line in answer["tokens"] if _differs(line)]
        answer["costs"] = [line for line in answer["costs"] if line["difference_usd"] != "0"]
    if as_json:
        print_json(answer)
        return
    _print_reconciliation(answer)


def _differs(line: dict[str, Any]) -> bool:
    return any(line[name]["difference"] for _, _, name in TOKEN_CLASSES)


def _print_reconciliation(answer: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 140)
    tokens = Table(title="Tokens: spendgate / Anthropic (difference)", title_justify="left")
    for name in ("Day", "Model", "Key", "Input", "Output", "Cache read", "Cache write"):
        tokens.add_column(name, justify="left" if name in ("Day", "Model", "Key") else "right")
    for line in answer["tokens"]:
        writes = [
            line["cache_creation_5m_input_tokens"][side]
            + line["cache_creation_1h_input_tokens"][side]
            for side in ("spendgate", "anthropic")
        ]
        tokens.add_row(
            line["day"],
            line["model"] or "-",
            line["key"],
            _pair(line["input_tokens"]["spendgate"], line["input_tokens"]["anthropic"]),
            _pair(line["output_tokens"]["spendgate"], line["output_tokens"]["anthropic"]),
            _pair(
                line["cache_read_input_tokens"]["spendgate"],
                line["cache_read_input_tokens"]["anthropic"],
            ),
            _pair(writes[0], writes[1]),
        )
    costs = Table(title="Cost, USD: spendgate / Anthropic (difference)", title_justify="left")
    for name in ("Day", "Model", "spendgate", "Anthropic", "Difference"):
        costs.add_column(name, justify="left" if name in ("Day", "Model") else "right")
    for line in answer["costs"]:
        costs.add_row(
            line["day"],
            line["model"] or "-",
            _usd(line["spendgate_usd"]),
            _usd(line["anthropic_usd"]),
            _usd(line["difference_usd"]),
        )
    console.print(tokens)
    console.print(costs)
    total = answer["totals"]["cost"]
    console.print(
        f"Total cost: spendgate {_usd(total['spendgate_usd'])}, Anthropic "
        f"{_usd(total['anthropic_usd'])}, difference {_usd(total['difference_usd'])}"
    )


def _pair(ours: int, theirs: int) -> str:
    diff = ours - theirs
    return f"{ours:,} / {theirs:,}" + (f" ({diff:+,})" if diff else "")


def _usd(value: str) -> str:
    return f"{Decimal(value):,.2f}"

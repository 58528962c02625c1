"""Price-book commands: ``prices list|show|check|unpriced``, ``reprice`` and ``whatif``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from spendgate.cli.common import build_settings, database_option, open_store, print_json
from spendgate.money import format_usd
from spendgate.pricing import KEEP, PriceBook, PriceBookError, PriceRow, whatif
from spendgate.ranges import resolve
from spendgate.settings import Settings
from spendgate.storage import CallFilter, Store
from spendgate.storage.reprice import reprice, unpriced_models
from spendgate.timeparse import TimeError, parse_when

_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _book(settings: Settings) -> PriceBook:
    try:
        return PriceBook.load(settings.price_files)
    except PriceBookError as exc:
        raise click.ClickException(str(exc)) from exc


def _usd(nanos: int | None, places: int = 6) -> str:
    return "unpriced" if nanos is None else "$" + format_usd(nanos, places=places)


def _filter(since: str | None, until: str | None, default: str | None, **kw: Any) -> CallFilter:
    """A call filter over ``[since, until)``; no lower bound when neither is given."""
    try:
        if since is None and default is None:
            end = parse_when(until) if until else None
            return CallFilter(until=end, **kw)
        rng = resolve(None, since, until, None, default=default or "30d")
    except TimeError as exc:
        raise click.BadParameter(str(exc)) from exc
    return CallFilter(since=rng.since, until=rng.until, **kw)


def _range_options(default_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option("--until", default=None, help="End (exclusive): RFC 3339 or a date.")(fn)
        return click.option(
            "--since", default=None, help=f"Start: RFC 3339, a date, or 30d ({default_help})."
        )(fn)

    return wrap


@click.group()
def prices() -> None:
    """The price book: built-in Anthropic list prices plus your price files."""


def _rate(row: PriceRow | None, name: str) -> str:
    if row is None:
        return "-"
    value = getattr(row.rates, name)
    return f"{value.normalize():f}"


@prices.command("list")
@click.option("--at", "at_text", default=None, help="Prices in effect at this time (default now).")
@_json_option
def prices_list(at_text: str | None, as_json: bool) -> None:
    """Every known model with the prices in effect now ($ per million tokens)."""
    book = _book(build_settings())
    try:
        at = parse_when(at_text) if at_text else datetime.now(UTC)
    except TimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from exc
    models = book.models(at)
    if as_json:
        print_json(
            {
                "book_version": book.version,
                "at": at.isoformat(),
                "models": [m.to_dict() for m in models],
            }
        )
        return
    table = Table(title=f"Prices at {at:%Y-%m-%d %H:%M} UTC ($/MTok)", title_justify="left")
    width = max((len(m.model.id) for m in models), default=5)
    table.add_column("Model", no_wrap=True, min_width=width)
    for name in ("Input", "Output", "Write 5m", "Write 1h", "Read"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("Notes")
    for m in models:
        row = m.standard
        notes = []
        if row is None:
            notes.append("retired" if m.model.retired else "no price")
        if m.fast is not None:
            notes.append(f"fast: {_rate(m.fast, 'input')}/{_rate(m.fast, 'output')}")
        if row is not None and row.tier is not None:
            notes.append(f"tier >{row.tier.prompt_tokens_over:,} tokens")
        if m.unconfirmed:
            notes.append("UNCONFIRMED")
        if row is not None and row.origin != "builtin":
            notes.append(f"from {row.origin}")
        table.add_row(
            m.model.id,
            *(_rate(row, n) for n in ("input", "output", "cache_write_5m", "cache_write_1h")),
            _rate(row, "cache_read"),
            ", ".join(notes),
        )
    Console(width=max(120, Console().width)).print(table)
    click.echo(f"book {book.version}; `spendgate prices show MODEL` for every row and source")


@prices.command("show")
@click.argument("model")
@_json_option
def prices_show(model: str, as_json: bool) -> None:
    """Every price row of MODEL (an ID or alias), with dates and sources."""
    book = _book(build_settings())
    try:
        rows = book.rows_for(model)
    except PriceBookError as exc:
        raise click.ClickException(str(exc)) from exc
    entry = book.model(model)
    assert entry is not None
    if as_json:
        print_json(
            {"model": entry.id, "aliases": list(entry.aliases), "rows": [r.to_dict() for r in rows]}
        )
        return
    click.echo(f"{entry.id}  {entry.display_name}  aliases: {', '.join(entry.aliases) or '-'}")
    if entry.note:
        click.echo(entry.note)
    for r in rows:
        until = f"{r.effective_until:%Y-%m-%d}" if r.effective_until else "now"
        flag = "  UNCONFIRMED" if r.unconfirmed else ""
        click.echo(f"\n{r.speed} {r.effective_from:%Y-%m-%d} .. {until}  ({r.origin}){flag}")
        rates = r.rates
        click.echo(
            f"  input {rates.input}  output {rates.output}  write 5m {rates.cache_write_5m}"
            f"  write 1h {rates.cache_write_1h}  read {rates.cache_read}  ($/MTok)"
        )
        if r.tier is not None:
            t = r.tier.rates
            click.echo(
                f"  {r.tier.name} (prompt > {r.tier.prompt_tokens_over:,} tokens): input "
                f"{t.input}  output {t.output}  write 5m {t.cache_write_5m}  write 1h "
                f"{t.cache_write_1h}  read {t.cache_read}"
            )
        if r.source:
            click.echo(f"  source: {r.source}")
        if r.note:
            click.echo(f"  note: {r.note}")


@prices.command("check")
@_json_option
def prices_check(as_json: bool) -> None:
    """Validate the price files; report overlapping rows and gaps. Exit 1 on errors."""
    book = _book(build_settings())
    problems = book.check()
    if as_json:
        print_json(
            {
                "book_version": book.version,
                "problems": [
                    {"severity": p.severity, "model": p.model, "message": p.message}
                    for p in problems
                ],
            }
        )
    else:
        for problem in problems:
            click.echo(str(problem))
        errors = sum(p.severity == "error" for p in problems)
        click.echo(
            f"{len(book.models())} models, {errors} errors, "
            f"{len(problems) - errors} warnings (book {book.version})"
        )
    if any(p.severity == "error" for p in problems):
        raise SystemExit(1)


@prices.command("unpriced")
@_range_options("default: all time")
@database_option
@_json_option
def prices_unpriced(
    since: str | None, until: str | None, database_url: str | None, as_json: bool
) -> None:
    """Models of recorded calls that could not be priced, with counts."""
    store = open_store(build_settings(database_url=database_url))
    found = unpriced_models(store, _filter(since, until, None))
    if as_json:
        print_json({"data": [u.to_dict() for u in found]})
        return
    if not found:
        click.echo("every recorded call is priced")
        return
    for u in found:
        click.echo(f"{u.model}\t{u.calls} calls\t{u.first_at:%Y-%m-%d} .. {u.last_at:%Y-%m-%d}")
    click.echo(
        "Add prices in a price file (SPENDGATE_PRICE_FILES, docs/pricing.md), then run "
        "`spendgate reprice`."
    )


@click.command("reprice")
@_range_options("default: all time")
@click.option("--model", default=None, help="Only calls served by this model.")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@database_option
@_json_option
def reprice_command(
    since: str | None,
    until: str | None,
    model: str | None,
    dry_run: bool,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Recompute stored costs with the current price book (idempotent)."""
    settings = build_settings(database_url=database_url)
    book = _book(settings)
    store: Store = open_store(settings)
    report = reprice(store, book, _filter(since, until, None, model=model), dry_run=dry_run)
    if as_json:
        print_json(report.to_dict())
        return
    verb = "would change" if dry_run else "changed"
    click.echo(f"examined {report.examined} calls; {verb} {report.changed} (book {book.version})")
    for name, change in sorted(report.by_model.items()):
        extra = []
        if change.newly_priced:
            extra.append(f"{change.newly_priced} newly priced")
        if change.now_unpriced:
            extra.append(f"{change.now_unpriced} now unpriced")
        click.echo(
            f"  {name}: {change.calls} calls, {_usd(change.before_nanousd)} -> "
            f"{_usd(change.after_nanousd)} "
            f"({_signed(change.after_nanousd - change.before_nanousd)})"
            + (f"; {', '.join(extra)}" if extra else "")
        )
    if report.changed:
        diff = report.after_nanousd - report.before_nanousd
        click.echo(f"total difference {_signed(diff)}")


def _signed(nanos: int) -> str:
    return ("+" if nanos >= 0 else "-") + "$" + format_usd(abs(nanos), places=6)


@click.command("whatif")
@click.option("--model", default=None, help="Price every call as if this model had served it.")
@_range_options("default: 30d")
@click.option("--batch", is_flag=True, help="As if sent through the Batches API (50 % off).")
@click.option("--fast", "fast", flag_value="fast", default=None, help="As if in fast mode.")
@click.option("--standard-speed", "fast", flag_value="standard", help="As if not in fast mode.")
@click.option("--no-us-only", is_flag=True, help="As if without US-only inference (1.1x).")
@click.option("--served-by", default=None, help="Only calls served by this model.")
@database_option
@_json_option
def whatif_command(
    model: str | None,
    since: str | None,
    until: str | None,
    batch: bool,
    fast: str | None,
    no_us_only: bool,
    served_by: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """What recorded calls would have cost under another model or modifiers."""
    settings = build_settings(database_url=database_url)
    book = _book(settings)
    if model is not None and book.resolve(model) is None:
        raise click.BadParameter(
            f"unknown model {model!r}; see `spendgate prices list`", param_hint="--model"
        )
    if model is None and not (batch or fast or no_us_only):
        raise click.UsageError("say what to compare: --model, --batch, --fast or --no-us-only")
    store = open_store(settings)
    flt = _filter(since, until, "30d", model=served_by)
    triples = (
        (row.created_at, row.model or row.model_requested, row.usage)
        for row in _billable_records(store, flt)
    )
    summary = whatif(
        book,
        triples,
        model=model,
        service_tier="batch" if batch else KEEP,
        inference_geo=None if no_us_only else KEEP,
        speed=fast if fast is not None else KEEP,
    )
    if as_json:
        print_json(summary.to_dict())
        return
    click.echo(
        f"{summary.compared} of {summary.calls} calls compared ({_describe(summary.scenario)})"
    )
    for name, row in sorted(summary.by_model.items()):
        click.echo(
            f"  {name}: {row.calls} calls, {_usd(row.actual_nanousd)} -> "
            f"{_usd(row.hypothetical_nanousd)}"
        )
    click.echo(
        f"actual {_usd(summary.actual_nanousd)}, would be {_usd(summary.hypothetical_nanousd)} "
        f"({_signed(summary.difference_nanousd)})"
    )
    skipped = summary.calls - summary.compared
    if skipped:
        click.echo(f"{skipped} calls skipped: unpriced in one of the scenarios")


def _describe(scenario: dict[str, str | None]) -> str:
    return ", ".join(f"{k}={v}" for k, v in scenario.items() if v != KEEP.value) or "as recorded"


def _billable_records(store: Store, flt: CallFilter) -> Any:
    from spendgate.storage.calls import row_to_record

    for row in store.iter_call_rows(flt):
        record = row_to_record(row)
        if record.billable and not record.refusal_without_output:
            yield record

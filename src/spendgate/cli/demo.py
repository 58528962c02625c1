"""``spendgate demo``: fill a database with realistic traffic for every view to show."""

from __future__ import annotations

import time

import click

from spendgate.cli.common import build_settings, database_option, open_store
from spendgate.demo import DEPARTMENTS, fill
from spendgate.pricing import PriceBook, PriceBookError


@click.command()
@click.option("--days", type=click.IntRange(1, 400), default=90, help="How far back.")
@click.option("--calls-per-day", type=click.IntRange(1, 1_000_000), default=300)
@click.option("--seed", type=int, default=42, help="Same seed, same data (re-runs add nothing).")
@database_option
def demo(days: int, calls_per_day: int, seed: int, database_url: str | None) -> None:
    """Record ~90 days of traffic for six departments (priced and rolled up like real calls)."""
    settings = build_settings(database_url=database_url)
    try:
        book = PriceBook.load(settings.price_files)
    except PriceBookError as exc:
        raise click.ClickException(str(exc)) from exc
    store = open_store(settings)
    started = time.perf_counter()
    written = fill(store, book, days=days, calls_per_day=calls_per_day, seed=seed)
    teams = ", ".join(d.team for d in DEPARTMENTS)
    click.echo(
        f"recorded {written:,} demo calls over {days} days for {teams} "
        f"in {time.perf_counter() - started:.1f}s; try `spendgate report daily`"
    )

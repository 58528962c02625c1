"""``spendgate db stats`` and ``spendgate db vacuum``: database housekeeping."""

from __future__ import annotations

import click

from spendgate.cli.common import build_settings, database_option, open_store, print_json
from spendgate.storage.maintenance import database_size, database_stats, vacuum


def _size(value: int | None) -> str:
    if value is None:
        return "unknown"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.1f} {unit}" if unit != "B" else f"{value} B"
        size /= 1024
    return f"{value} B"


@click.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@database_option
def stats_command(as_json: bool, database_url: str | None) -> None:
    """Rows per table, database size, oldest and newest call, rollup coverage."""
    store = open_store(build_settings(database_url=database_url))
    stats = database_stats(store)
    store.close()
    if as_json:
        print_json(stats.to_json())
        return
    doc = stats.to_json()
    click.echo(f"database   {stats.dialect}, {_size(stats.size_bytes)}")
    click.echo(f"schema     {', '.join(stats.revisions)}")
    click.echo(f"raw calls  {doc['calls']['oldest'] or '-'} .. {doc['calls']['newest'] or '-'}")
    rollups = doc["rollups"]
    click.echo(f"rollups    {rollups['from_hour'] or '-'} .. {rollups['to_hour'] or '-'} (hourly)")
    click.echo(f"lost       {stats.lost_records} record(s)")
    width = max((len(name) for name in stats.rows), default=0)
    for name, count in stats.rows.items():
        click.echo(f"  {name:<{width}}  {count:>12,}")


@click.command("vacuum")
@database_option
def vacuum_command(database_url: str | None) -> None:
    """Give space freed by pruning back to the disk and refresh query statistics.

    SQLite rewrites the whole file (it needs as much free disk again and blocks
    writers meanwhile: run it when traffic is low); PostgreSQL runs VACUUM (ANALYZE).
    """
    store = open_store(build_settings(database_url=database_url))
    before = database_size(store)
    vacuum(store)
    after = database_size(store)
    store.close()
    click.echo(f"vacuumed: {_size(before)} -> {_size(after)}")

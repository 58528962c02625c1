"""``spendgate import``: bring usage recorded elsewhere into the ledger."""

from __future__ import annotations

from pathlib import Path

import click

from spendgate.claude_code import DEFAULT_ROOTS, priced_records, read_entries, transcript_files
from spendgate.cli.common import build_settings, database_option, open_store
from spendgate.pricing import PriceBook, PriceBookError


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

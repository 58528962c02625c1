"""Entry point and the core commands: serve, db, log, requests."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from spendgate import __version__
from spendgate.cli.alerts import alerts
from spendgate.cli.common import build_settings, database_option, open_store, print_json
from spendgate.cli.database import stats_command, vacuum_command
from spendgate.cli.demo import demo
from spendgate.cli.imports import import_, reconcile
from spendgate.cli.keys import budgets, keys, teams
from spendgate.cli.limits import limits
from spendgate.cli.prices import prices, reprice_command, whatif_command
from spendgate.cli.reports import export, prune_command, rebuild_rollups_command, report, tail
from spendgate.cli.users import tokens, users
from spendgate.logs import configure_logging
from spendgate.manual import ManualCall, manual_record
from spendgate.pricing import PriceBook, PriceBookError
from spendgate.storage import CallFilter, StorageError
from spendgate.storage.migrate import current_revisions, head_revisions
from spendgate.timeparse import TimeError, parse_when


@click.group()
@click.version_option(__version__, prog_name="spendgate")
def cli() -> None:
    """spendgate: see what Claude costs, who spent it, and cap it."""


@cli.command()
@click.option("--host", default=None, help="Bind address (SPENDGATE_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (SPENDGATE_PORT, default 8080).")
@database_option
@click.option("--upstream-url", default=None, help="Anthropic base URL (SPENDGATE_UPSTREAM_URL).")
@click.option("--home", type=click.Path(path_type=Path), default=None, help="SPENDGATE_HOME.")
@click.option(
    "--allow-server-key-remote/--no-allow-server-key-remote",
    default=None,
    help="Let remote clients without a proxy key use ANTHROPIC_API_KEY.",
)
@click.option("--log-level", default=None, help="debug, info, warning or error.")
@click.option("--access-log/--no-access-log", default=None, help="One log line per request.")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None, help="Processes (SPENDGATE_WORKERS)."
)
def serve(**flags: object) -> None:
    """Run the gateway (proxy, API and dashboard)."""
    from spendgate.accounts import open_accounts
    from spendgate.safety import check_startup
    from spendgate.serving import preflight
    from spendgate.serving import serve as serve_gateway

    settings = build_settings(**flags)
    configure_logging(settings.log_level)
    try:
        check_startup(settings)
        if not settings.is_loopback:  # say it before binding, not in a start-up traceback
            open_accounts(settings, open_store(settings).engine)
        preflight(settings)  # migrate, then refuse what only the database reveals
    except (PriceBookError, ValueError, StorageError) as exc:
        raise click.ClickException(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"cannot open the database ({type(exc).__name__}); check SPENDGATE_DATABASE_URL"
        ) from exc
    click.echo(
        f"spendgate {__version__} on http://{settings.host}:{settings.port} -> "
        f"{settings.upstream_url} (point ANTHROPIC_BASE_URL here)",
        err=True,
    )
    code = serve_gateway(settings)
    if code:
        raise SystemExit(code)


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@database_option
def db_upgrade(database_url: str | None) -> None:
    """Apply pending migrations (also done at every start)."""
    settings = build_settings(database_url=database_url)
    store = open_store(settings)
    at = ", ".join(current_revisions(store.engine))
    click.echo(f"database at revision {at} (newest: {', '.join(head_revisions())})")


@cli.command("log")
@click.option("--model", required=True, help="Model id, e.g. claude-sonnet-4-5.")
@click.option("--input", "input_tokens", type=click.IntRange(min=0), default=0)
@click.option("--output", "output_tokens", type=click.IntRange(min=0), default=0)
@click.option("--cache-read", type=click.IntRange(min=0), default=0)
@click.option("--cache-write-5m", type=click.IntRange(min=0), default=0)
@click.option("--cache-write-1h", type=click.IntRange(min=0), default=0)
@click.option("--web-searches", type=click.IntRange(min=0), default=0)
@click.option("--batch", is_flag=True, help="Priced as a Message Batches call (50 %).")
@click.option("--at", "at_text", default=None, help="When (RFC 3339, date, or 2h ago as 2h).")
@click.option("--note", default=None)
@click.option("--user", default=None)
@click.option("--project", default=None)
@click.option("--team", default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the stored record as JSON.")
@database_option
def log_call(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read: int,
    cache_write_5m: int,
    cache_write_1h: int,
    web_searches: int,
    batch: bool,
    at_text: str | None,
    note: str | None,
    user: str | None,
    project: str | None,
    team: str | None,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Log a call by hand (no server needed)."""
    settings = build_settings(database_url=database_url)
    try:
        at = parse_when(at_text) if at_text else None
    except TimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from exc
    call = ManualCall(
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=cache_read,
        cache_creation_5m_input_tokens=cache_write_5m,
        cache_creation_1h_input_tokens=cache_write_1h,
        web_search_requests=web_searches,
        service_tier="batch" if batch else None,
        at=at,
        note=note,
        user=user,
        project=project,
        team=team,
    )
    try:
        record = manual_record(call, PriceBook.load(settings.price_files))
    except (ValueError, PriceBookError) as exc:
        raise click.ClickException(str(exc)) from exc
    store = open_store(settings)
    store.insert_calls([record])
    stored = store.get_call(record.id)
    if as_json:
        print_json(stored)
        return
    assert stored is not None
    cost = stored["cost_usd"]
    shown = f"${cost}" if cost is not None else "unpriced (unknown model; see `spendgate prices`)"
    click.echo(f"logged {stored['id']}: {model}, {shown}")


@cli.group()
def requests() -> None:
    """The request log."""


@requests.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=20)
@click.option("--since", default=None)
@click.option("--model", default=None)
@database_option
def requests_list(
    limit: int, since: str | None, model: str | None, database_url: str | None
) -> None:
    """Print the newest recorded calls as JSON."""
    settings = build_settings(database_url=database_url)
    try:
        flt = CallFilter(since=parse_when(since) if since else None, model=model)
    except TimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    print_json(open_store(settings).list_calls(flt, limit=limit).data)


@cli.group()
def config() -> None:
    """Configuration."""


@config.command("reference")
def config_reference() -> None:
    """Print the configuration reference (docs/configuration.md) generated from the code."""
    from spendgate.configdoc import reference

    click.echo(reference(), nl=False)


@config.command("show")
def config_show() -> None:
    """Print the effective configuration (secrets hidden)."""
    print_json(build_settings().public_summary())


cli.add_command(keys)
cli.add_command(teams)
cli.add_command(budgets)
cli.add_command(limits)
cli.add_command(alerts)
cli.add_command(users)
cli.add_command(tokens)
for _command in (report, tail, export, demo, import_, prices, reprice_command, whatif_command):
    cli.add_command(_command)
cli.add_command(reconcile)
db.add_command(rebuild_rollups_command)
db.add_command(prune_command)
db.add_command(stats_command)
db.add_command(vacuum_command)


def main() -> None:
    """Console-script entry point."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    cli(prog_name="spendgate")

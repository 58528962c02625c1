"""``spendgate keys``, ``spendgate teams`` and ``spendgate budgets``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from spendgate.budgets.admin import create_budget, update_budget
from spendgate.budgets.report import budget_report
from spendgate.cli.common import (
    build_settings,
    database_option,
    one_scope,
    open_store,
    print_json,
)
from spendgate.keys import IssuedKey, create_key, rotate_key
from spendgate.money import parse_usd
from spendgate.proxy.auth import fingerprint
from spendgate.records import utcnow
from spendgate.settings import Settings
from spendgate.storage.budgets import BudgetStore
from spendgate.storage.keys import Conflict, KeyChanges, KeyStore, NotFound
from spendgate.timeparse import TimeError, parse_when
from spendgate.vault import SecretBox, SecretError

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(func: F) -> F:
    """Turn the library's lookup and validation errors into one clear CLI line."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (NotFound, Conflict, ValueError, SecretError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _stores(database_url: str | None) -> tuple[Settings, KeyStore, BudgetStore]:
    settings = build_settings(database_url=database_url)
    store = open_store(settings)
    return settings, KeyStore(store.engine), BudgetStore(store.engine)


def _upstream_secret(env_name: str | None, from_stdin: bool) -> str | None:
    if env_name and from_stdin:
        raise click.UsageError("give --upstream-key-env or --upstream-key-stdin, not both")
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise click.ClickException(f"environment variable {env_name} is empty or not set")
        return value.strip()
    if from_stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise click.ClickException("no credential on standard input")
        return value
    return None


def _show_issued(issued: IssuedKey, as_json: bool) -> None:
    if as_json:
        print_json(issued.to_api())
        return
    row = issued.row
    click.echo(f"created key {row.id} ({row.label})")
    click.echo(f"  {issued.secret}")
    click.echo("Copy it now: it is shown only once and cannot be recovered.", err=True)


# -- teams -------------------------------------------------------------------


@click.group()
def teams() -> None:
    """Teams: keys and budgets belong to them."""


@teams.command("create")
@click.argument("name")
@click.option("--color", default=None, help="Display colour, e.g. #3b82f6.")
@click.option("--json", "as_json", is_flag=True)
@database_option
@_friendly
def teams_create(name: str, color: str | None, as_json: bool, database_url: str | None) -> None:
    """Create a team."""
    _, keys, _ = _stores(database_url)
    team = keys.create_team(name, color)
    if as_json:
        print_json(team.to_api())
    else:
        click.echo(f"created team {team.name} ({team.id})")


@teams.command("list")
@database_option
def teams_list(database_url: str | None) -> None:
    """Print every team as JSON."""
    _, keys, _ = _stores(database_url)
    print_json([t.to_api() for t in keys.list_teams()])


@teams.command("update")
@click.argument("team")
@click.option("--name", default=None, help="New name (budgets and rate limits follow it).")
@click.option("--color", default=None, help="New display colour, #rrggbb.")
@click.option("--json", "as_json", is_flag=True)
@database_option
@_friendly
def teams_update(
    team: str, name: str | None, color: str | None, as_json: bool, database_url: str | None
) -> None:
    """Rename or recolour a team (by name or id)."""
    if name is None and color is None:
        raise click.UsageError("give --name and/or --color")
    _, keys, _ = _stores(database_url)
    updated = keys.update_team(team, name=name, color=color)
    if as_json:
        print_json(updated.to_api())
    else:
        click.echo(f"updated team {updated.name} ({updated.color or 'no colour'})")


@teams.command("delete")
@click.argument("team")
@database_option
@_friendly
def teams_delete(team: str, database_url: str | None) -> None:
    """Delete a team (its keys stay, without a team)."""
    _, keys, _ = _stores(database_url)
    keys.delete_team(team)
    click.echo(f"deleted team {team}")


# -- keys --------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Proxy keys (sg-...): one per developer, team or service."""


@keys.command("create")
@click.option("--label", required=True, help="Who or what the key is for.")
@click.option("--team", default=None, help="Team name or id (see `spendgate teams list`).")
@click.option("--user", default=None, help="Default user the key's calls are attributed to.")
@click.option("--project", default=None, help="Default project.")
@click.option("--tag", "tags", multiple=True, help="Default tag (repeatable).")
@click.option("--expires", default=None, help="Expiry: RFC 3339 time or date.")
@click.option("--color", default=None, help="Display colour, #rrggbb.")
@click.option(
    "--upstream-key-env",
    default=None,
    metavar="VAR",
    help="Attach the Anthropic credential in environment variable VAR (stored encrypted).",
)
@click.option("--upstream-key-stdin", is_flag=True, help="Read that credential from stdin.")
@click.option("--json", "as_json", is_flag=True, help="Print the key (once) as JSON.")
@database_option
@_friendly
def keys_create(
    label: str,
    team: str | None,
    user: str | None,
    project: str | None,
    tags: tuple[str, ...],
    expires: str | None,
    color: str | None,
    upstream_key_env: str | None,
    upstream_key_stdin: bool,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Create a proxy key; it is printed once and stored only as a hash."""
    settings, store, _ = _stores(database_url)
    upstream = _upstream_secret(upstream_key_env, upstream_key_stdin)
    try:
        expires_at = parse_when(expires) if expires else None
    except TimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from exc
    team_id = store.find_team(team).id if team else None
    issued = create_key(
        store,
        label=label,
        team_id=team_id,
        owner=user,
        project=project,
        tags=tags,
        expires_at=expires_at,
        upstream_key=upstream,
        box=SecretBox.from_settings(settings) if upstream else None,
        color=color,
    )
    _show_issued(issued, as_json)


@keys.command("list")
@click.option("--team", default=None, help="Only this team's keys.")
@click.option("--active", is_flag=True, help="Hide revoked keys.")
@database_option
@_friendly
def keys_list(team: str | None, active: bool, database_url: str | None) -> None:
    """Print keys as JSON (never the secrets)."""
    _, store, _ = _stores(database_url)
    team_id = store.find_team(team).id if team else None
    rows = store.list_keys(team_id=team_id, include_revoked=not active)
    print_json([r.to_api() for r in rows])


@keys.command("update")
@click.argument("key_id")
@click.option("--label", default=None, help="New label.")
@click.option("--color", default=None, help="Display colour, #rrggbb.")
@click.option("--no-color", is_flag=True, help="Remove the key's colour.")
@click.option("--team", default=None, help="Team name or id.")
@click.option("--no-team", is_flag=True, help="Take the key out of its team.")
@click.option("--user", "--owner", "owner", default=None, help="Default user ('' clears).")
@click.option("--project", default=None, help="Default project ('' clears).")
@click.option("--tags", default=None, help="Comma-separated tags, replacing the key's ('' clears).")
@click.option("--expires", default=None, help="New expiry: RFC 3339 time or date.")
@click.option("--no-expiry", is_flag=True, help="The key never expires.")
@click.option("--json", "as_json", is_flag=True, help="Print the key as JSON.")
@database_option
@_friendly
def keys_update(
    key_id: str,
    label: str | None,
    color: str | None,
    no_color: bool,
    team: str | None,
    no_team: bool,
    owner: str | None,
    project: str | None,
    tags: str | None,
    expires: str | None,
    no_expiry: bool,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Change a key's label, colour, team, user, project, tags or expiry (not its secret)."""
    for flag, value, clear in (
        ("color", color, no_color),
        ("team", team, no_team),
        ("expires", expires, no_expiry),
    ):
        if value is not None and clear:
            raise click.UsageError(f"give --{flag} or its --no- flag, not both")
    changes = KeyChanges()
    if label is not None:
        changes["label"] = label
    if color is not None or no_color:
        changes["color"] = color
    if owner is not None:
        changes["owner"] = owner or None
    if project is not None:
        changes["project"] = project or None
    if tags is not None:
        changes["tags"] = [t.strip() for t in tags.split(",") if t.strip()]
    if no_expiry:
        changes["expires_at"] = None
    elif expires is not None:
        try:
            changes["expires_at"] = parse_when(expires)
        except TimeError as exc:
            raise click.BadParameter(str(exc), param_hint="--expires") from exc
    _, store, _ = _stores(database_url)
    if no_team:
        changes["team_id"] = None
    elif team is not None:
        changes["team_id"] = store.find_team(team).id
    if not changes:
        raise click.UsageError("nothing to change; see `spendgate keys update --help`")
    row = store.update_key(key_id, changes)
    if as_json:
        print_json(row.to_api())
    else:
        click.echo(f"updated key {row.id} ({row.label})")


@keys.command("revoke")
@click.argument("key_id")
@database_option
@_friendly
def keys_revoke(key_id: str, database_url: str | None) -> None:
    """Revoke a key (running gateways notice within SPENDGATE_KEY_CACHE_TTL seconds)."""
    _, store, _ = _stores(database_url)
    row = store.revoke_key(key_id)
    click.echo(f"revoked {row.id} ({row.label})")


@keys.command("rotate")
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True)
@database_option
@_friendly
def keys_rotate(key_id: str, as_json: bool, database_url: str | None) -> None:
    """Issue a new key with the same settings and revoke the old one."""
    _, store, _ = _stores(database_url)
    _show_issued(rotate_key(store, key_id), as_json)


@keys.command("set-upstream")
@click.argument("key_id")
@click.option("--upstream-key-env", default=None, metavar="VAR")
@click.option("--upstream-key-stdin", is_flag=True)
@click.option("--server", is_flag=True, help="Detach: use the gateway's ANTHROPIC_API_KEY.")
@database_option
@_friendly
def keys_set_upstream(
    key_id: str,
    upstream_key_env: str | None,
    upstream_key_stdin: bool,
    server: bool,
    database_url: str | None,
) -> None:
    """Attach an Anthropic credential to a key (encrypted), or detach it with --server."""
    settings, store, _ = _stores(database_url)
    if server:
        store.set_upstream(key_id, None, None)
        click.echo(f"key {key_id} now uses the server credential")
        return
    secret = _upstream_secret(upstream_key_env, upstream_key_stdin)
    if secret is None:
        raise click.UsageError("give --upstream-key-env VAR, --upstream-key-stdin or --server")
    box = SecretBox.from_settings(settings)
    store.set_upstream(key_id, box.encrypt(secret), fingerprint(secret))
    click.echo(f"key {key_id} now uses credential {fingerprint(secret)}")


# -- budgets -----------------------------------------------------------------


@click.group()
def budgets() -> None:
    """Hard budgets on all calls, a team, key, user, project or tag."""


@budgets.command("create")
@click.option("--global", "is_global", is_flag=True, help="Budget on all calls.")
@click.option("--team", default=None)
@click.option("--key", "key_id", default=None, help="Proxy key id.")
@click.option("--user", default=None)
@click.option("--project", default=None)
@click.option("--tag", default=None)
@click.option("--limit-usd", required=True, help="Hard limit in USD, e.g. 250 or 12.50.")
@click.option(
    "--period",
    type=click.Choice(["daily", "weekly", "monthly", "none"]),
    default="monthly",
    show_default=True,
)
@click.option("--name", default=None, help="Name shown in refusals and alerts.")
@click.option(
    "--threshold",
    "thresholds",
    type=click.IntRange(1, 1000),
    multiple=True,
    help="Soft threshold in percent (repeatable; default 50, 80, 100).",
)
@click.option("--json", "as_json", is_flag=True)
@database_option
@_friendly
def budgets_create(
    is_global: bool,
    team: str | None,
    key_id: str | None,
    user: str | None,
    project: str | None,
    tag: str | None,
    limit_usd: str,
    period: str,
    name: str | None,
    thresholds: tuple[int, ...],
    as_json: bool,
    database_url: str | None,
) -> None:
    """Create a budget on exactly one scope."""
    scope, value = one_scope(is_global, team=team, key=key_id, user=user, project=project, tag=tag)
    settings, store, budget_store = _stores(database_url)
    budget = create_budget(
        store,
        budget_store,
        scope=scope,
        value=value,
        period=period,
        limit_nanousd=parse_usd(limit_usd),
        name=name,
        **({"thresholds": thresholds} if thresholds else {}),
    )
    report = budget_report(budget_store, budget, ZoneInfo(settings.budget_timezone), utcnow())
    if as_json:
        print_json(report)
    else:
        click.echo(f"created budget {budget.id}: {budget.name}, ${report['limit_usd']} {period}")


@budgets.command("list")
@database_option
def budgets_list(database_url: str | None) -> None:
    """Print every budget with its current period's spend as JSON."""
    settings, _, budget_store = _stores(database_url)
    zone, now = ZoneInfo(settings.budget_timezone), utcnow()
    print_json([budget_report(budget_store, b, zone, now) for b in budget_store.list_budgets()])


@budgets.command("set-limit")
@click.argument("budget_id")
@click.option("--limit-usd", required=True)
@database_option
@_friendly
def budgets_set_limit(budget_id: str, limit_usd: str, database_url: str | None) -> None:
    """Change a budget's hard limit."""
    _, _, budget_store = _stores(database_url)
    budget = budget_store.set_limit(budget_id, parse_usd(limit_usd))
    click.echo(f"budget {budget.name} limit is now ${budget.to_api()['limit_usd']}")


@budgets.command("update")
@click.argument("budget_id")
@click.option("--name", default=None, help="New name (shown in refusals and alerts).")
@click.option("--limit-usd", default=None, help="New hard limit in USD.")
@click.option(
    "--thresholds", default=None, help="Soft thresholds in percent, comma-separated: 50,80,100."
)
@click.option("--json", "as_json", is_flag=True)
@database_option
@_friendly
def budgets_update(
    budget_id: str,
    name: str | None,
    limit_usd: str | None,
    thresholds: str | None,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Rename a budget, change its limit or its thresholds (scope and period stay)."""
    if name is None and limit_usd is None and thresholds is None:
        raise click.UsageError("give --name, --limit-usd and/or --thresholds")
    levels = None
    if thresholds is not None:
        try:
            levels = [int(t) for t in thresholds.split(",") if t.strip()]
        except ValueError:
            raise click.BadParameter(
                f"{thresholds!r}: write whole percentages separated by commas, e.g. 50,80,100",
                param_hint="--thresholds",
            ) from None
    settings, _, budget_store = _stores(database_url)
    budget = update_budget(
        budget_store,
        budget_id,
        name=name,
        limit_nanousd=None if limit_usd is None else parse_usd(limit_usd),
        thresholds=levels,
    )
    report = budget_report(budget_store, budget, ZoneInfo(settings.budget_timezone), utcnow())
    if as_json:
        print_json(report)
    else:
        click.echo(f"updated budget {budget.id}: {budget.name}, ${report['limit_usd']}")


@budgets.command("delete")
@click.argument("budget_id")
@database_option
@_friendly
def budgets_delete(budget_id: str, database_url: str | None) -> None:
    """Delete a budget and its counters."""
    _, _, budget_store = _stores(database_url)
    budget_store.delete_budget(budget_id)
    click.echo(f"deleted budget {budget_id}")

"""``spendgate limits``: rate limits (requests and tokens per minute)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from spendgate.cli.common import (
    build_settings,
    database_option,
    one_scope,
    open_store,
    print_json,
)
from spendgate.limits.admin import create_limit
from spendgate.limits.guard import wall_us
from spendgate.limits.model import MAX_PER_MINUTE
from spendgate.limits.report import limit_report
from spendgate.storage.keys import Conflict, KeyStore, NotFound
from spendgate.storage.limits import LimitStore
from spendgate.vault import SecretError

F = TypeVar("F", bound=Callable[..., Any])


def friendly(func: F) -> F:
    """Turn the library's lookup and validation errors into one clear CLI line."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (NotFound, Conflict, ValueError, SecretError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _stores(database_url: str | None) -> tuple[KeyStore, LimitStore]:
    store = open_store(build_settings(database_url=database_url))
    return KeyStore(store.engine), LimitStore(store.engine)


_RATE = click.IntRange(1, MAX_PER_MINUTE)


@click.group()
def limits() -> None:
    """Rate limits: requests and tokens per minute per key, team, user or project."""


@limits.command("create")
@click.option("--global", "is_global", is_flag=True, help="Every call through the gateway.")
@click.option("--key", "key_id", default=None, help="Proxy key id, or * for each key.")
@click.option("--team", default=None, help="Team name or id, or * for each team.")
@click.option("--user", default=None, help="User, or * for each user.")
@click.option("--project", default=None, help="Project, or * for each project.")
@click.option("--rpm", type=_RATE, default=None, help="Requests per minute.")
@click.option("--input-tpm", type=_RATE, default=None, help="Input tokens per minute.")
@click.option("--output-tpm", type=_RATE, default=None, help="Output tokens per minute.")
@click.option("--name", default=None, help="Name shown in refusals.")
@click.option("--json", "as_json", is_flag=True)
@database_option
@friendly
def limits_create(
    is_global: bool,
    key_id: str | None,
    team: str | None,
    user: str | None,
    project: str | None,
    rpm: int | None,
    input_tpm: int | None,
    output_tpm: int | None,
    name: str | None,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Create a rate limit on exactly one scope (quote * in the shell: --user '*')."""
    scope, value = one_scope(is_global, key=key_id, team=team, user=user, project=project)
    keys, store = _stores(database_url)
    limit = create_limit(
        keys,
        store,
        scope=scope,
        value=value,
        requests_per_minute=rpm,
        input_tokens_per_minute=input_tpm,
        output_tokens_per_minute=output_tpm,
        name=name,
    )
    if as_json:
        print_json(limit_report(store, limit, wall_us()))
    else:
        click.echo(f"created rate limit {limit.id}: {limit.name} ({limit.describe()})")


@limits.command("list")
@database_option
def limits_list(database_url: str | None) -> None:
    """Print every rate limit with its fullest buckets as JSON."""
    _, store = _stores(database_url)
    now = wall_us()
    print_json([limit_report(store, limit, now) for limit in store.list_limits()])


@limits.command("delete")
@click.argument("limit_id")
@database_option
@friendly
def limits_delete(limit_id: str, database_url: str | None) -> None:
    """Delete a rate limit and its buckets."""
    _, store = _stores(database_url)
    store.delete_limit(limit_id)
    click.echo(f"deleted rate limit {limit_id}")

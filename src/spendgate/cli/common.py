"""Shared pieces of the CLI: settings from flags, the store, output helpers."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from pydantic import ValidationError

from spendgate.settings import Settings
from spendgate.storage import StorageError, Store


def build_settings(**flags: Any) -> Settings:
    """Settings from the environment with the CLI flags that were given on top."""
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise click.ClickException(f"invalid configuration: {problems}") from exc


def open_store(settings: Settings) -> Store:
    """The configured database, migrated; a clear error when it cannot be opened."""
    try:
        return Store.open(settings.effective_database_url)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:
        raise click.ClickException(
            f"cannot open the database ({type(exc).__name__}: {exc}); check "
            "SPENDGATE_DATABASE_URL or --database-url"
        ) from exc


def print_json(value: Any) -> None:
    """JSON on stdout, one document."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


database_option = click.option(
    "--database-url", envvar=None, default=None, help="SQLAlchemy URL (SPENDGATE_DATABASE_URL)."
)


def one_scope(is_global: bool, **scopes: str | None) -> tuple[str, str]:
    """The one scope a budget or limit command was given: ``("team", "Red")``,
    ``("global", "")``; a usage error naming the options unless exactly one was."""
    given = [("global", "")] if is_global else []
    given += [(scope, value) for scope, value in scopes.items() if value is not None]
    if len(given) != 1:
        names = ", ".join(f"--{name.replace('_', '-')}" for name in ("global", *scopes))
        raise click.UsageError(f"give exactly one of {names}")
    return given[0]

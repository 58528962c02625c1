"""``spendgate users`` and ``spendgate tokens``: who may use the dashboard and the API."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from spendgate.accounts import Accounts
from spendgate.cli.common import build_settings, database_option, open_store, print_json
from spendgate.storage.accounts import AccountStore
from spendgate.storage.keys import Conflict, KeyStore, NotFound
from spendgate.timeparse import TimeError, parse_when

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(func: F) -> F:
    """Turn the library's lookup and validation errors into one clear CLI line."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (NotFound, Conflict, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _accounts(database_url: str | None) -> Accounts:
    settings = build_settings(database_url=database_url)
    engine = open_store(settings).engine
    return Accounts(
        AccountStore(engine), KeyStore(engine), session_max_age=settings.session_max_age
    )


def _password(from_stdin: bool) -> str:
    """A new password: one line of stdin, or typed twice at a prompt that does not echo."""
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise click.ClickException("no password on standard input")
        return value
    value = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return str(value)


_ROLE = click.Choice(["admin", "viewer"])
_TEAM_HELP = "Limit a viewer to this team's data (name or id; repeatable)."


# -- users -------------------------------------------------------------------


@click.group()
def users() -> None:
    """Dashboard users: admins do everything, viewers read analytics."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=_ROLE, default="admin", show_default=True)
@click.option("--team", "teams", multiple=True, help=_TEAM_HELP)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--json", "as_json", is_flag=True)
@database_option
@_friendly
def users_create(
    username: str,
    role: str,
    teams: tuple[str, ...],
    password_stdin: bool,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Create a user; the password is prompted for (never echoed) or read from stdin."""
    accounts = _accounts(database_url)
    user = accounts.create_user(username, _password(password_stdin), role=role, teams=teams)
    if as_json:
        print_json(user.to_api())
        return
    scope = f" (teams: {', '.join(user.teams)})" if user.teams is not None else ""
    click.echo(f"created {user.role} {user.username}{scope}")


@users.command("list")
@database_option
def users_list(database_url: str | None) -> None:
    """Print every user as JSON (never a password or its hash)."""
    print_json([u.to_api() for u in _accounts(database_url).list_users()])


@users.command("delete")
@click.argument("username")
@database_option
@_friendly
def users_delete(username: str, database_url: str | None) -> None:
    """Delete a user and end their sessions."""
    _accounts(database_url).delete_user(username)
    click.echo(f"deleted user {username}")


@users.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@database_option
@_friendly
def users_reset_password(username: str, password_stdin: bool, database_url: str | None) -> None:
    """Set a new password; every session of the user ends."""
    accounts = _accounts(database_url)
    accounts.store.get_user(username.strip().lower())  # fail before prompting
    user = accounts.reset_password(username, _password(password_stdin))
    click.echo(f"password of {user.username} changed; their sessions have ended")


# -- API tokens --------------------------------------------------------------


@click.group()
def tokens() -> None:
    """API tokens (sgt_...) for scripts: Authorization: Bearer sgt_..."""


@tokens.command("create")
@click.option("--name", required=True, help="Who or what the token is for.")
@click.option("--role", type=_ROLE, default="viewer", show_default=True)
@click.option("--team", "teams", multiple=True, help=_TEAM_HELP)
@click.option("--expires", default=None, help="Expiry: RFC 3339 time or date.")
@click.option("--json", "as_json", is_flag=True, help="Print the token (once) as JSON.")
@database_option
@_friendly
def tokens_create(
    name: str,
    role: str,
    teams: tuple[str, ...],
    expires: str | None,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Create an API token; it is printed once and stored only as a hash."""
    try:
        expires_at = parse_when(expires) if expires else None
    except TimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from exc
    issued = _accounts(database_url).create_token(
        name, role=role, teams=teams, expires_at=expires_at, created_by="cli"
    )
    if as_json:
        print_json(issued.to_api())
        return
    click.echo(f"created {issued.row.role} token {issued.row.id} ({issued.row.name})")
    click.echo(f"  {issued.secret}")
    click.echo("Copy it now: it is shown only once and cannot be recovered.", err=True)


@tokens.command("list")
@click.option("--active", is_flag=True, help="Hide revoked tokens.")
@database_option
def tokens_list(active: bool, database_url: str | None) -> None:
    """Print API tokens as JSON (never the secrets)."""
    rows = _accounts(database_url).list_tokens(include_revoked=not active)
    print_json([r.to_api() for r in rows])


@tokens.command("revoke")
@click.argument("token_id")
@database_option
@_friendly
def tokens_revoke(token_id: str, database_url: str | None) -> None:
    """Revoke a token; every gateway refuses it from the next request on."""
    row = _accounts(database_url).revoke_token(token_id)
    click.echo(f"revoked token {row.id} ({row.name})")

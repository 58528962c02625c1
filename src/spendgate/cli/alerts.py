"""``spendgate alerts``: channels, the alert history, and one evaluation on demand."""

from __future__ import annotations

import asyncio
import os
import sys

import click

from spendgate.alerts.channels import send_test
from spendgate.alerts.model import ALERT_KINDS
from spendgate.alerts.monitor import AlertConfig, AlertMonitor
from spendgate.cli.common import build_settings, database_option, open_store, print_json
from spendgate.cli.limits import friendly
from spendgate.settings import Settings
from spendgate.storage import Store
from spendgate.storage.alerts import AlertStore
from spendgate.vault import SecretBox


def _open(database_url: str | None) -> tuple[Settings, Store, AlertStore]:
    settings = build_settings(database_url=database_url)
    store = open_store(settings)
    return settings, store, AlertStore(store.engine, SecretBox.from_settings(settings))


def _secret(env_name: str | None, from_stdin: bool, what: str) -> str | None:
    """A secret from an environment variable or standard input, never from argv."""
    if env_name and from_stdin:
        raise click.UsageError(f"give the {what} from an environment variable or stdin, not both")
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise click.ClickException(f"environment variable {env_name} is empty or not set")
        return value.strip()
    if from_stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise click.ClickException(f"no {what} on standard input")
        return value
    return None


@click.group()
def alerts() -> None:
    """Alerts: budget thresholds, forecasts and spend spikes, sent to channels."""


@alerts.group()
def channels() -> None:
    """Where alerts go: webhooks, Slack-compatible webhooks, e-mail."""


@channels.command("add")
@click.argument("name")
@click.option("--type", "kind", type=click.Choice(["webhook", "slack", "email"]), required=True)
@click.option("--url", default=None, help="Webhook URL (visible in shell history; or --url-env).")
@click.option("--url-env", default=None, help="Read the webhook URL from this variable.")
@click.option("--signing-secret-env", default=None, help="webhook: HMAC key from this variable.")
@click.option("--smtp-host", default=None)
@click.option("--smtp-port", type=int, default=None, help="Default 587, 465 (ssl) or 25 (none).")
@click.option("--smtp-security", type=click.Choice(["starttls", "ssl", "none"]), default="starttls")
@click.option("--smtp-user", default=None)
@click.option(
    "--smtp-password-env", default=None, help="Read the SMTP password from this variable."
)
@click.option("--smtp-password-stdin", is_flag=True, help="Read the SMTP password from stdin.")
@click.option("--from", "sender", default=None, help="e-mail: the sender address.")
@click.option("--to", "recipients", multiple=True, help="e-mail: a recipient (repeatable).")
@click.option(
    "--only",
    "kinds",
    type=click.Choice(ALERT_KINDS),
    multiple=True,
    help="Only these kinds of alert (repeatable; default all).",
)
@click.option("--json", "as_json", is_flag=True)
@database_option
@friendly
def channels_add(
    name: str,
    kind: str,
    url: str | None,
    url_env: str | None,
    signing_secret_env: str | None,
    smtp_host: str | None,
    smtp_port: int | None,
    smtp_security: str,
    smtp_user: str | None,
    smtp_password_env: str | None,
    smtp_password_stdin: bool,
    sender: str | None,
    recipients: tuple[str, ...],
    kinds: tuple[str, ...],
    as_json: bool,
    database_url: str | None,
) -> None:
    """Add a channel. Secrets are stored encrypted and never shown again."""
    if url and url_env:
        raise click.UsageError("give --url or --url-env, not both")
    _, _, store = _open(database_url)
    channel = store.create_channel(
        name=name,
        kind=kind,
        url=url or _secret(url_env, False, "URL"),
        signing_secret=_secret(signing_secret_env, False, "signing secret"),
        email={
            "host": smtp_host,
            "port": smtp_port,
            "security": smtp_security,
            "username": smtp_user,
            "sender": sender,
            "recipients": list(recipients),
        }
        if kind == "email"
        else None,
        password=_secret(smtp_password_env, smtp_password_stdin, "SMTP password"),
        kinds=kinds or None,
    )
    if as_json:
        print_json(channel.to_api())
    else:
        click.echo(
            f"added {channel.kind} channel {channel.name} ({channel.id}) -> {channel.target}"
        )


@channels.command("list")
@database_option
def channels_list(database_url: str | None) -> None:
    """Print every channel as JSON (without secrets)."""
    _, _, store = _open(database_url)
    print_json([c.to_api() for c in store.list_channels()])


@channels.command("delete")
@click.argument("channel")
@database_option
@friendly
def channels_delete(channel: str, database_url: str | None) -> None:
    """Delete a channel by name or id (past deliveries stay in the history)."""
    _, _, store = _open(database_url)
    gone = store.delete_channel(channel)
    click.echo(f"deleted channel {gone.name}")


@channels.command("test")
@click.argument("channel")
@database_option
@friendly
def channels_test(channel: str, database_url: str | None) -> None:
    """Send a test alert to a channel now."""
    _, _, store = _open(database_url)
    found = store.get_channel(channel)
    error = asyncio.run(send_test(found, store.secrets(found)))
    if error is not None:
        raise click.ClickException(f"channel {found.name}: {error}")
    click.echo(f"test alert delivered to {found.name} ({found.target})")


@alerts.command("history")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--kind", type=click.Choice(ALERT_KINDS), default=None)
@database_option
def alerts_history(limit: int, kind: str | None, database_url: str | None) -> None:
    """Print fired alerts, newest first, with their deliveries, as JSON."""
    _, _, store = _open(database_url)
    print_json(
        [
            {**alert.to_api(), "deliveries": [d.to_api() for d in deliveries]}
            for alert, deliveries in store.history(limit=limit, kind=kind)
        ]
    )


@alerts.command("evaluate")
@database_option
def alerts_evaluate(database_url: str | None) -> None:
    """Evaluate the rules once, fire what is new and deliver what is due (as the gateway
    does every SPENDGATE_ALERT_INTERVAL seconds); for cron when no gateway runs."""
    settings, store, alert_store = _open(database_url)
    monitor = AlertMonitor(store, alert_store, AlertConfig.from_settings(settings))
    fired = asyncio.run(monitor.run_once())
    print_json([a.to_api() for a in fired])

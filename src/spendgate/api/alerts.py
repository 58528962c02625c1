"""``/api/alerts``: the alert history and the channels alerts go to.

Channel secrets (webhook URLs, which carry Slack's token; signing secrets; SMTP
passwords) are accepted here, stored encrypted and never returned: a channel
shows a ``target`` hint (scheme and host, or SMTP host and recipients).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, SecretStr

from spendgate.alerts.channels import send_test
from spendgate.alerts.monitor import AlertMonitor
from spendgate.api.errors import ApiError
from spendgate.api.governance import translated
from spendgate.storage.alerts import AlertStore

if TYPE_CHECKING:
    from spendgate.app import Gateway

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

AlertKindName = Literal["budget_threshold", "budget_forecast", "spend_spike"]


class SmtpIn(BaseModel):
    """Where and how an e-mail channel sends (the password is separate)."""

    host: str = Field(examples=["smtp.example.com"])
    port: int | None = Field(default=None, ge=1, le=65535, description="Default by security")
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    sender: str = Field(examples=["spendgate@example.com"])
    recipients: list[str] = Field(min_length=1, examples=[["finops@example.com"]])


class ChannelIn(BaseModel):
    """A new channel. ``url``, ``signing_secret`` and ``password`` are stored encrypted and
    never returned."""

    name: str = Field(min_length=1, max_length=200, examples=["finops-slack"])
    kind: Literal["webhook", "slack", "email"]
    url: SecretStr | None = Field(default=None, description="webhook and slack: the POST URL")
    signing_secret: SecretStr | None = Field(
        default=None, description="webhook: HMAC-SHA256 key for x-spendgate-signature"
    )
    smtp: SmtpIn | None = Field(default=None, description="email: the SMTP server")
    password: SecretStr | None = Field(default=None, description="email: the SMTP password")
    kinds: list[AlertKindName] | None = Field(
        default=None, description="Only these kinds of alert (default: all)"
    )


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    if gateway.store is None or gateway.governance is None:
        raise ApiError(503, "not_ready", "the gateway is still starting; retry in a moment")
    return gateway


def _store(request: Request) -> AlertStore:
    gateway = _gateway(request)
    if gateway.alerts is not None:
        return gateway.alerts.alerts
    assert gateway.store is not None and gateway.governance is not None
    return AlertStore(gateway.store.engine, gateway.governance.box())


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


@router.get("")
def history(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    kind: AlertKindName | None = None,
) -> list[dict[str, Any]]:
    """Fired alerts, newest first, each with its deliveries (status, attempts, last error)."""
    return [
        {**alert.to_api(), "deliveries": [d.to_api() for d in deliveries]}
        for alert, deliveries in _store(request).history(limit=limit, kind=kind)
    ]


@router.post("/evaluate")
async def evaluate(request: Request) -> dict[str, Any]:
    """Evaluate the alert rules now (as the background loop does every
    ``SPENDGATE_ALERT_INTERVAL`` seconds), fire what is new and deliver what is due."""
    gateway = _gateway(request)
    monitor = gateway.alerts
    if monitor is None:
        assert gateway.store is not None and gateway.governance is not None
        monitor = AlertMonitor.for_gateway(
            gateway.store, gateway.settings, gateway.governance.box()
        )
    fired = await monitor.run_once()
    return {"fired": [alert.to_api() for alert in fired]}


@router.get("/channels")
def list_channels(request: Request) -> list[dict[str, Any]]:
    """Every alert channel (never its URL, signing secret or password)."""
    return [c.to_api() for c in _store(request).list_channels()]


@router.post("/channels", status_code=201)
def create_channel(request: Request, body: ChannelIn) -> dict[str, Any]:
    """Add a channel; it receives alerts fired from now on."""
    with translated():
        channel = _store(request).create_channel(
            name=body.name,
            kind=body.kind,
            url=_secret(body.url),
            signing_secret=_secret(body.signing_secret),
            email=body.smtp.model_dump() if body.smtp is not None else None,
            password=_secret(body.password),
            kinds=body.kinds,
        )
    return channel.to_api()


@router.delete("/channels/{channel}")
def delete_channel(request: Request, channel: str) -> dict[str, Any]:
    """Delete a channel by id or name (its past deliveries stay in the history)."""
    with translated():
        gone = _store(request).delete_channel(channel)
    return {"deleted": gone.id}


@router.post("/channels/{channel}/test")
async def test_channel(request: Request, channel: str) -> dict[str, Any]:
    """Send a test alert to a channel now; ``ok`` false with the error if it did not arrive.
    Test alerts are not kept in the history."""
    store = _store(request)
    with translated():
        found = store.get_channel(channel)
        secrets = store.secrets(found)
    error = await send_test(found, secrets)
    return {"ok": error is None, "channel": found.name, "error": error}

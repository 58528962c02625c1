"""Sending one alert to one channel: JSON webhook, Slack-compatible webhook, SMTP e-mail.

* **webhook** -- ``POST`` of ``{"type": "spendgate.alert", "alert": {...}}``
  (the alert as ``GET /api/alerts`` shows it). With a signing secret, the
  header ``x-spendgate-signature: sha256=<hex>`` is the HMAC-SHA256 of the raw
  body under that secret, so the receiver can check where it came from.
* **slack** -- ``POST`` of ``{"text": ...}``, which Slack incoming webhooks and
  the many services compatible with them (Mattermost, Rocket.Chat, Teams
  workflows) accept.
* **email** -- one plain-text message over SMTP with the standard library's
  ``smtplib`` on a worker thread (STARTTLS, implicit TLS or plain; optional
  login). Alerts are rare, so a blocking client on a thread costs nothing and
  adds no dependency.

Any answer other than 2xx, a timeout or a refused connection is a
:class:`DeliveryError`; its message never contains the channel's secrets.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

import aiohttp
import orjson

from spendgate import __version__
from spendgate.alerts.model import Alert, Channel, ChannelSecrets
from spendgate.records import utcnow

TIMEOUT = 15.0


class DeliveryError(Exception):
    """An alert could not be delivered; the message says why (without secrets)."""


def webhook_body(alert: Alert) -> bytes:
    """The generic webhook's JSON body."""
    return orjson.dumps({"type": "spendgate.alert", "alert": alert.to_api()})


def slack_body(alert: Alert) -> bytes:
    """The Slack-compatible body: one line of text."""
    return orjson.dumps({"text": f"spendgate: {alert.message}"})


def sign(secret: str, body: bytes) -> str:
    """The ``x-spendgate-signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def email_message(alert: Alert, settings: dict[str, Any]) -> EmailMessage:
    """The e-mail for ``alert``."""
    message = EmailMessage()
    message["Subject"] = f"[spendgate] {alert.title}"
    message["From"] = settings["sender"]
    message["To"] = ", ".join(settings["recipients"])
    lines = [alert.message, ""]
    lines += [f"{name}: {value}" for name, value in alert.details.items() if value is not None]
    lines += ["", f"alert {alert.id} ({alert.kind}), sent by spendgate {__version__}"]
    message.set_content("\n".join(lines) + "\n")
    return message


def _send_email(settings: dict[str, Any], password: str | None, message: EmailMessage) -> None:
    host, port, security = settings["host"], int(settings["port"]), settings["security"]
    context = ssl.create_default_context()
    smtp: smtplib.SMTP = (
        smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
        if security == "ssl"
        else smtplib.SMTP(host, port, timeout=TIMEOUT)
    )
    with smtp:
        if security == "starttls":
            smtp.starttls(context=context)
        if settings.get("username"):
            smtp.login(settings["username"], password or "")
        smtp.send_message(message)


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> None:
    headers = {
        "content-type": "application/json",
        "user-agent": f"spendgate/{__version__}",
        **headers,
    }
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with session.post(url, data=body, headers=headers, timeout=timeout) as resp:
        if not 200 <= resp.status < 300:
            text = (await resp.text(errors="replace"))[:200]
            raise DeliveryError(f"HTTP {resp.status}: {text}")


async def deliver(
    channel: Channel,
    secrets: ChannelSecrets,
    alert: Alert,
    session: aiohttp.ClientSession,
) -> None:
    """Send ``alert`` to ``channel``; :class:`DeliveryError` if it did not arrive."""
    try:
        if channel.kind == "email":
            message = email_message(alert, channel.settings)
            await asyncio.to_thread(_send_email, channel.settings, secrets.password, message)
            return
        if not secrets.url:
            raise DeliveryError("the channel has no URL; add it again")
        if channel.kind == "slack":
            await _post(session, secrets.url, slack_body(alert), {})
            return
        body = webhook_body(alert)
        headers = {}
        if secrets.signing_secret:
            headers["x-spendgate-signature"] = sign(secrets.signing_secret, body)
        await _post(session, secrets.url, body, headers)
    except DeliveryError:
        raise
    except (aiohttp.ClientError, TimeoutError, OSError, smtplib.SMTPException) as exc:
        text = f"{type(exc).__name__}: {exc}"
        for secret in (secrets.url, secrets.password, secrets.signing_secret):
            if secret:
                text = text.replace(secret, channel.target)
        raise DeliveryError(text[:500]) from exc


def test_alert() -> Alert:
    """The alert ``spendgate alerts channels test`` sends (never kept in the history)."""
    return Alert(
        kind="budget_threshold",
        dedupe_key="test",
        subject="test",
        period_key="test",
        message="Test alert: this channel receives spendgate alerts",
        details={"test": True},
        id="test",
        created_at=utcnow(),
    )


async def send_test(channel: Channel, secrets: ChannelSecrets) -> str | None:
    """Send :func:`test_alert` to ``channel`` now; the error, or None if it arrived."""
    async with aiohttp.ClientSession(trust_env=True) as session:
        try:
            await deliver(channel, secrets, test_alert(), session)
        except DeliveryError as exc:
            return str(exc)
    return None

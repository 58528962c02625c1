"""What alerts and channels are.

An :class:`Alert` is one event worth telling someone about (a budget crossed
80 %, a budget will run out before its period ends, a day's spend spiked). Its
``dedupe_key`` names the event and its period, so it fires once however often
and by however many gateways it is evaluated. A :class:`Channel` is where
alerts go: a generic JSON webhook, a Slack-compatible incoming webhook, or
e-mail over SMTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

AlertKind = Literal["budget_threshold", "budget_forecast", "spend_spike"]
ChannelKind = Literal["webhook", "slack", "email"]
DeliveryStatus = Literal["pending", "sent", "failed"]
ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)
CHANNEL_KINDS: tuple[str, ...] = get_args(ChannelKind)
SMTP_SECURITY = ("starttls", "ssl", "none")


def iso(when: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``."""
    return None if when is None else when.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Alert:
    """One alert, before or after it was fired (``id`` and ``created_at`` set once stored)."""

    kind: AlertKind
    dedupe_key: str
    subject: str
    period_key: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    created_at: datetime | None = None

    @property
    def title(self) -> str:
        """A one-line summary (e-mail subject)."""
        return self.message.split(": ", 1)[0] if ": " in self.message else self.message[:80]

    def to_api(self) -> dict[str, Any]:
        """The public JSON shape (also the webhook payload's ``alert``)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "subject": self.subject,
            "period": self.period_key,
            "message": self.message,
            "details": self.details,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class ChannelSecrets:
    """The parts of a channel that are never shown: stored encrypted."""

    url: str | None = None  # webhook and Slack: the URL often carries the token
    signing_secret: str | None = None  # webhook: HMAC-SHA256 of the body
    password: str | None = None  # e-mail: SMTP password


@dataclass(frozen=True)
class Channel:
    """Where alerts go. ``settings`` holds the non-secret SMTP options (host, port,
    security, username, sender, recipients); ``kinds`` limits which alerts it gets."""

    id: str
    name: str
    kind: ChannelKind
    target: str
    settings: dict[str, Any] = field(default_factory=dict)
    kinds: tuple[str, ...] | None = None
    created_at: datetime | None = None

    def wants(self, alert: Alert) -> bool:
        """Whether this channel receives ``alert``."""
        return self.kinds is None or alert.kind in self.kinds

    def to_api(self) -> dict[str, Any]:
        """The public JSON shape: no URL token, no signing secret, no password."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "target": self.target,
            "settings": self.settings,
            "kinds": list(self.kinds) if self.kinds is not None else None,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class Delivery:
    """One alert to one channel: its status and the attempts made."""

    alert_id: str
    channel_id: str
    channel_name: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None = None
    sent_at: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        """The public JSON shape."""
        return {
            "channel_id": self.channel_id,
            "channel": self.channel_name,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at) if self.status == "pending" else None,
            "last_error": self.last_error,
            "sent_at": iso(self.sent_at),
        }

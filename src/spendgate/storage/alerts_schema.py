"""Tables of alert channels, fired alerts and their deliveries (on the shared ``metadata``).

``alerts.dedupe_key`` is unique: an alert is fired by inserting it, so when
several gateways evaluate the same rule only one insert wins and only that
alert is delivered. A channel's secrets (URL, signing secret, SMTP password)
are one Fernet token in ``secret_enc``; ``target`` is a non-secret hint.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from spendgate.storage.schema import UTCMicros, metadata

alert_channels = Table(
    "alert_channels",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("target", String(300), nullable=False),
    Column("settings", Text, nullable=False),
    Column("secret_enc", Text, nullable=False),
    Column("kinds", Text),
    Column("created_at", UTCMicros(), nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("dedupe_key", String(300), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("period_key", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("created_at", UTCMicros(), nullable=False),
    Index("ix_alerts_created", "created_at"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("alert_id", String(36), ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
    Column("channel_id", String(36), primary_key=True),
    Column("channel_name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCMicros(), nullable=False),
    Column("last_error", Text),
    Column("sent_at", UTCMicros()),
    Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
)

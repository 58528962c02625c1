"""rate limits and their buckets; alert channels, alerts and deliveries

Revision ID: 0005
Revises: 0004

Frozen column lists, as in every migration: a later change to
``storage/limits_schema.py`` or ``storage/alerts_schema.py`` needs a new one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from spendgate.storage.schema import UTCMicros

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_value", sa.String(200), nullable=False),
        sa.Column("requests_per_minute", sa.BigInteger),
        sa.Column("input_tokens_per_minute", sa.BigInteger),
        sa.Column("output_tokens_per_minute", sa.BigInteger),
        sa.Column("created_at", UTCMicros(), nullable=False),
    )
    op.create_table(
        "rate_limit_buckets",
        sa.Column("limit_id", sa.String(36), primary_key=True),
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("refused", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "alert_channels",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("secret_enc", sa.Text, nullable=False),
        sa.Column("kinds", sa.Text),
        sa.Column("created_at", UTCMicros(), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dedupe_key", sa.String(300), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("period_key", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("created_at", UTCMicros(), nullable=False),
    )
    op.create_index("ix_alerts_created", "alerts", ["created_at"])
    op.create_table(
        "alert_deliveries",
        sa.Column(
            "alert_id",
            sa.String(36),
            sa.ForeignKey("alerts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("channel_id", sa.String(36), primary_key=True),
        sa.Column("channel_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCMicros(), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", UTCMicros()),
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_due", "alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alerts_created", "alerts")
    op.drop_table("alerts")
    op.drop_table("alert_channels")
    op.drop_table("rate_limit_buckets")
    op.drop_table("rate_limits")

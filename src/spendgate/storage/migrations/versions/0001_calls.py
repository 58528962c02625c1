"""calls and loss_events

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from spendgate.storage.schema import UTCMicros

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", UTCMicros(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("endpoint", sa.String(512), nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("billable", sa.Boolean, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("request_id", sa.String(128)),
        sa.Column("message_id", sa.String(128)),
        sa.Column("model_requested", sa.String(128)),
        sa.Column("model", sa.String(128)),
        sa.Column("stop_reason", sa.String(64)),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("error_type", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("first_byte_at", UTCMicros()),
        sa.Column("ended_at", UTCMicros()),
        sa.Column("latency_ms", sa.Float),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cache_read_input_tokens", sa.BigInteger, nullable=False),
        sa.Column("cache_creation_5m_input_tokens", sa.BigInteger, nullable=False),
        sa.Column("cache_creation_1h_input_tokens", sa.BigInteger, nullable=False),
        sa.Column("web_search_requests", sa.Integer, nullable=False),
        sa.Column("web_fetch_requests", sa.Integer, nullable=False),
        sa.Column("thinking_tokens", sa.BigInteger, nullable=False),
        sa.Column("service_tier", sa.String(32)),
        sa.Column("inference_geo", sa.String(32)),
        sa.Column("speed", sa.String(16)),
        sa.Column("usage", sa.Text),
        sa.Column("cost_nanousd", sa.BigInteger),
        sa.Column("cache_savings_nanousd", sa.BigInteger),
        sa.Column("cost_breakdown", sa.Text),
        sa.Column("pricing_status", sa.String(20), nullable=False),
        sa.Column("price_book_version", sa.String(80)),
        sa.Column("credential_fingerprint", sa.String(64)),
        sa.Column("credential_kind", sa.String(16)),
        sa.Column("key_id", sa.String(36)),
        sa.Column("key_label", sa.String(200)),
        sa.Column("team", sa.String(200)),
        sa.Column("user_name", sa.String(200)),
        sa.Column("project", sa.String(200)),
        sa.Column("tags", sa.Text),
        sa.Column("session_id", sa.String(200)),
        sa.Column("agent_id", sa.String(200)),
        sa.Column("user_agent", sa.String(512)),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_calls_created", "calls", ["created_at", "id"])
    op.create_index("ix_calls_model_created", "calls", ["model", "created_at"])
    op.create_index("ix_calls_key_created", "calls", ["key_id", "created_at"])
    op.create_index("ix_calls_status_created", "calls", ["pricing_status", "created_at"])
    op.create_table(
        "loss_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCMicros(), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("loss_events")
    op.drop_table("calls")

"""teams, proxy_keys, budgets, budget_usage

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from spendgate.storage.schema import UTCMicros

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("color", sa.String(16)),
        sa.Column("created_at", UTCMicros(), nullable=False),
    )
    op.create_table(
        "proxy_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("team_id", sa.String(36), sa.ForeignKey("teams.id", ondelete="SET NULL")),
        sa.Column("owner", sa.String(200)),
        sa.Column("project", sa.String(200)),
        sa.Column("tags", sa.Text),
        sa.Column("upstream_key_enc", sa.Text),
        sa.Column("upstream_fingerprint", sa.String(64)),
        sa.Column("created_at", UTCMicros(), nullable=False),
        sa.Column("expires_at", UTCMicros()),
        sa.Column("revoked_at", UTCMicros()),
        sa.Column("rotated_to", sa.String(36)),
    )
    op.create_index("ix_proxy_keys_team", "proxy_keys", ["team_id"])
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_value", sa.String(200), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("limit_nanousd", sa.BigInteger, nullable=False),
        sa.Column("thresholds", sa.Text),
        sa.Column("created_at", UTCMicros(), nullable=False),
    )
    op.create_table(
        "budget_usage",
        sa.Column(
            "budget_id",
            sa.String(36),
            sa.ForeignKey("budgets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("period_key", sa.String(32), primary_key=True),
        sa.Column("spent_nanousd", sa.BigInteger, nullable=False),
        sa.Column("reserved_nanousd", sa.BigInteger, nullable=False),
        sa.Column("calls", sa.BigInteger, nullable=False),
        sa.Column("refused", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("budget_usage")
    op.drop_table("budgets")
    op.drop_index("ix_proxy_keys_team", "proxy_keys")
    op.drop_table("proxy_keys")
    op.drop_table("teams")

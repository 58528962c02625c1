"""batches: who created each Message Batch and the budget reservation it holds

Revision ID: 0007
Revises: 0006

The column list is frozen here: a later change to ``storage/batches_schema.py``
needs a new migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from spendgate.storage.schema import UTCMicros

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("batch_id", sa.String(100), unique=True),
        sa.Column("created_at", UTCMicros(), nullable=False),
        sa.Column("key_id", sa.String(36)),
        sa.Column("key_label", sa.String(200)),
        sa.Column("team", sa.String(200)),
        sa.Column("user", sa.String(200)),
        sa.Column("project", sa.String(200)),
        sa.Column("tags", sa.Text),
        sa.Column("credential_fingerprint", sa.String(64)),
        sa.Column("credential_kind", sa.String(16)),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("claims", sa.Text),
        sa.Column("reserved_nanousd", sa.BigInteger, nullable=False),
        sa.Column("spent_nanousd", sa.BigInteger),
        sa.Column("settled_at", UTCMicros()),
        sa.Column("released_at", UTCMicros()),
    )
    op.create_index("ix_batches_created_at", "batches", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_batches_created_at", table_name="batches")
    op.drop_table("batches")

"""proxy_keys.color: a display colour per key, like the teams'

Revision ID: 0008
Revises: 0007

Frozen here like every migration: a later change to the column in
``storage/keys_schema.py`` needs a new migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("proxy_keys", sa.Column("color", sa.String(16)))


def downgrade() -> None:
    # SQLite before 3.35 cannot drop a column in place: batch mode copies the table.
    with op.batch_alter_table("proxy_keys") as batch:
        batch.drop_column("color")

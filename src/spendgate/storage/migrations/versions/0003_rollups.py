"""rollup tables: hourly, narrow hourly and daily, tags hourly, sessions daily

Revision ID: 0003
Revises: 0002

The column lists are frozen here on purpose: a later change to
``storage/rollups_schema.py`` needs a new migration, not an edit of this one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_MEASURES = [
    "calls",
    "errors",
    "unpriced_calls",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "web_search_requests",
    "web_fetch_requests",
    "thinking_tokens",
    "cost_nanousd",
    "cost_input_nanousd",
    "cost_output_nanousd",
    "cost_cache_write_5m_nanousd",
    "cost_cache_write_1h_nanousd",
    "cost_cache_read_nanousd",
    "cost_web_search_nanousd",
    "cost_other_nanousd",
    "cache_savings_nanousd",
    "latency_count",
    "latency_sum_ms",
    "ttft_count",
    "ttft_sum_ms",
]
_MEASURES += [f"lat_h{i:02d}" for i in range(24)] + [f"ttft_h{i:02d}" for i in range(24)]
_HOURLY_DIMS = [
    "model",
    "key_id",
    "key_label",
    "team",
    "user_name",
    "project",
    "endpoint",
    "source",
    "status_code",
    "error_type",
    "service_tier",
    "inference_geo",
    "speed",
    "context_window",
]
_TAG_DIMS = ["tag", "model", "key_id", "team", "user_name", "project"]
_SESSION_DIMS = ["session_id", "model", "key_id", "team", "user_name", "project"]
_SESSION_MEASURES = [
    "calls",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cost_nanousd",
]


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)


def _dims(names: list[str]) -> list[sa.Column[object]]:
    cols: list[sa.Column[object]] = []
    for name in names:
        if name == "status_code":
            cols.append(sa.Column(name, sa.Integer, nullable=False, server_default="0"))
        else:
            cols.append(sa.Column(name, sa.String(200), nullable=False, server_default=""))
    return cols


def _measures(names: list[str]) -> list[sa.Column[object]]:
    return [sa.Column(n, sa.BigInteger, nullable=False, server_default="0") for n in names]


def upgrade() -> None:
    op.create_table(
        "rollup_hourly",
        _id(),
        sa.Column("hour", sa.BigInteger, nullable=False),
        *_dims(_HOURLY_DIMS),
        *_measures(_MEASURES),
        sa.UniqueConstraint("hour", *_HOURLY_DIMS, name="uq_rollup_hourly_dims"),
    )
    op.create_index("ix_rollup_hourly_team_hour", "rollup_hourly", ["team", "hour"])
    op.create_index("ix_rollup_hourly_model_hour", "rollup_hourly", ["model", "hour"])
    for name, time_col in (("rollup_narrow_hourly", "hour"), ("rollup_narrow_daily", "day")):
        op.create_table(
            name,
            _id(),
            sa.Column(time_col, sa.BigInteger, nullable=False),
            *_dims(["model", "team"]),
            *_measures(_MEASURES),
            sa.UniqueConstraint(time_col, "model", "team", name=f"uq_{name}_dims"),
        )
    op.create_table(
        "rollup_tags_hourly",
        _id(),
        sa.Column("hour", sa.BigInteger, nullable=False),
        *_dims(_TAG_DIMS),
        *_measures(_MEASURES),
        sa.UniqueConstraint("hour", *_TAG_DIMS, name="uq_rollup_tags_hourly_dims"),
    )
    op.create_table(
        "rollup_sessions_daily",
        _id(),
        sa.Column("day", sa.BigInteger, nullable=False),
        *_dims(_SESSION_DIMS),
        *_measures(_SESSION_MEASURES),
        sa.Column("first_at", sa.BigInteger, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("day", *_SESSION_DIMS, name="uq_rollup_sessions_daily_dims"),
    )
    op.create_index("ix_rollup_sessions_session", "rollup_sessions_daily", ["session_id"])


def downgrade() -> None:
    op.drop_table("rollup_sessions_daily")
    op.drop_table("rollup_tags_hourly")
    op.drop_table("rollup_narrow_daily")
    op.drop_table("rollup_narrow_hourly")
    op.drop_table("rollup_hourly")

"""daily rollups (attribution, tags), backfilled from the hourly ones; figures
imported from Anthropic's Admin API (usage and cost per day)

Revision ID: 0006
Revises: 0005

Column lists are frozen here: a later change to ``storage/rollups_schema.py`` or
``storage/anthropic_schema.py`` needs a new migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from spendgate.storage.schema import UTCMicros

revision = "0006"
down_revision = "0005"
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
_DAILY_DIMS = ["model", "key_id", "key_label", "team", "user_name", "project"]
_TAG_DIMS = ["tag", "model", "key_id", "team", "user_name", "project"]
_TAG_DAILY_MEASURES = [
    "calls",
    "errors",
    "unpriced_calls",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "web_search_requests",
    "cost_nanousd",
    "cache_savings_nanousd",
]
_DAY_US = 86_400_000_000
_USAGE_DIMS = ["model", "api_key_id", "workspace_id", "service_tier", "context_window"]
_USAGE_MEASURES = [
    "uncached_input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "web_search_requests",
]
_COST_DIMS = [
    "workspace_id",
    "description",
    "model",
    "cost_type",
    "token_type",
    "service_tier",
    "context_window",
]


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)


def _dims(names: list[str]) -> list[sa.Column[str]]:
    return [sa.Column(n, sa.String(200), nullable=False, server_default="") for n in names]


def _measures(names: list[str]) -> list[sa.Column[int]]:
    return [sa.Column(n, sa.BigInteger, nullable=False, server_default="0") for n in names]


def _daily_rollups() -> None:
    op.create_table(
        "rollup_daily",
        _id(),
        sa.Column("day", sa.BigInteger, nullable=False),
        *_dims(_DAILY_DIMS),
        *_measures(_MEASURES),
        sa.UniqueConstraint("day", *_DAILY_DIMS, name="uq_rollup_daily_dims"),
    )
    op.create_index("ix_rollup_daily_user_day", "rollup_daily", ["user_name", "day"])
    op.create_index("ix_rollup_daily_key_day", "rollup_daily", ["key_id", "day"])
    op.create_index("ix_rollup_daily_project_day", "rollup_daily", ["project", "day"])
    op.create_table(
        "rollup_tags_daily",
        _id(),
        sa.Column("day", sa.BigInteger, nullable=False),
        *_dims(_TAG_DIMS),
        *_measures(_TAG_DAILY_MEASURES),
        sa.UniqueConstraint("day", *_TAG_DIMS, name="uq_rollup_tags_daily_dims"),
    )
    op.create_index("ix_rollup_tags_daily_tag_day", "rollup_tags_daily", ["tag", "day"])
    # Fold what the hourly rollups already hold (their dimensions are NOT NULL).
    for target, source, dims, measures in (
        ("rollup_daily", "rollup_hourly", _DAILY_DIMS, _MEASURES),
        ("rollup_tags_daily", "rollup_tags_hourly", _TAG_DIMS, _TAG_DAILY_MEASURES),
    ):
        day = f"(hour - hour % {_DAY_US})"
        op.execute(
            f"INSERT INTO {target} (day, {', '.join(dims)}, {', '.join(measures)}) "
            f"SELECT {day}, {', '.join(dims)}, {', '.join(f'SUM({m})' for m in measures)} "
            f"FROM {source} GROUP BY {day}, {', '.join(dims)}"
        )


def upgrade() -> None:
    _daily_rollups()
    op.create_table(
        "anthropic_usage_daily",
        _id(),
        sa.Column("day", sa.BigInteger, nullable=False),
        *_dims(_USAGE_DIMS),
        *_measures(_USAGE_MEASURES),
        sa.Column("imported_at", UTCMicros(), nullable=False),
        sa.UniqueConstraint("day", *_USAGE_DIMS, name="uq_anthropic_usage_daily"),
    )
    op.create_table(
        "anthropic_cost_daily",
        _id(),
        sa.Column("day", sa.BigInteger, nullable=False),
        *_dims(_COST_DIMS),
        sa.Column("amount_nanousd", sa.BigInteger, nullable=False),
        sa.Column("imported_at", UTCMicros(), nullable=False),
        sa.UniqueConstraint("day", *_COST_DIMS, name="uq_anthropic_cost_daily"),
    )


def downgrade() -> None:
    op.drop_table("anthropic_cost_daily")
    op.drop_table("anthropic_usage_daily")
    op.drop_table("rollup_tags_daily")
    op.drop_table("rollup_daily")

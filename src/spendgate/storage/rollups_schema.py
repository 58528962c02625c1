"""Rollup tables: additive hourly aggregates the writer maintains with every insert.

Every measure is a sum, so rows from concurrent writers merge with
``INSERT ... ON CONFLICT (dims) DO UPDATE SET m = m + excluded.m`` and the same
hour can be written by any number of processes. Dimensions are ``NOT NULL``
(``''`` or ``0`` when missing) so they can be part of the unique key.

Latency and time-to-first-token are kept as fixed log-spaced histograms (one
column per bucket), which are additive too; percentiles are read from them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, UniqueConstraint

from spendgate.storage.schema import metadata

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US

# Histogram: bucket 0 is [0, 50 ms); bucket i (1..N-2) is [50·√2^(i-1), 50·√2^i) ms;
# the last bucket is everything above ~102 s. Each bucket spans a factor of √2,
# so a percentile read from it is within about ±19 % of the true value.
HIST_BUCKETS = 24
HIST_BASE_MS = 50.0
HIST_RATIO = 2**0.5

LATENCY_BUCKETS = tuple(f"lat_h{i:02d}" for i in range(HIST_BUCKETS))
TTFT_BUCKETS = tuple(f"ttft_h{i:02d}" for i in range(HIST_BUCKETS))

# Additive measures shared by the hourly and tag rollups, in a fixed order.
MEASURES: tuple[str, ...] = (
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
    *LATENCY_BUCKETS,
    *TTFT_BUCKETS,
)

# Dimensions of the main hourly rollup (besides the hour itself).
HOURLY_DIMS: tuple[str, ...] = (
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
)
TAG_DIMS: tuple[str, ...] = ("tag", "model", "key_id", "team", "user_name", "project")
SESSION_DIMS: tuple[str, ...] = ("session_id", "model", "key_id", "team", "user_name", "project")
SESSION_MEASURES: tuple[str, ...] = (
    "calls",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cost_nanousd",
)

_INT_DIMS = {"status_code"}


def _dim_columns(dims: tuple[str, ...]) -> list[Column[object]]:
    cols: list[Column[object]] = []
    for name in dims:
        if name in _INT_DIMS:
            cols.append(Column(name, Integer, nullable=False, server_default="0"))
        else:
            cols.append(Column(name, String(200), nullable=False, server_default=""))
    return cols


def _measure_columns(names: tuple[str, ...]) -> list[Column[object]]:
    return [Column(n, BigInteger, nullable=False, server_default="0") for n in names]


rollup_hourly = Table(
    "rollup_hourly",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("hour", BigInteger, nullable=False),  # µs since epoch, start of the UTC hour
    *_dim_columns(HOURLY_DIMS),
    *_measure_columns(MEASURES),
    UniqueConstraint("hour", *HOURLY_DIMS, name="uq_rollup_hourly_dims"),
    Index("ix_rollup_hourly_team_hour", "team", "hour"),
    Index("ix_rollup_hourly_model_hour", "model", "hour"),
)

rollup_tags_hourly = Table(
    "rollup_tags_hourly",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("hour", BigInteger, nullable=False),
    *_dim_columns(TAG_DIMS),
    *_measure_columns(MEASURES),
    UniqueConstraint("hour", *TAG_DIMS, name="uq_rollup_tags_hourly_dims"),
)

# Narrow rollups (model x team) for the questions dashboards ask most: totals,
# spend over time by model or team, breakdowns by model or team. A few hundred
# rows per day however many calls, so 90-day answers read thousands of rows.
NARROW_DIMS: tuple[str, ...] = ("model", "team")

rollup_narrow_hourly = Table(
    "rollup_narrow_hourly",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("hour", BigInteger, nullable=False),
    *_dim_columns(NARROW_DIMS),
    *_measure_columns(MEASURES),
    UniqueConstraint("hour", *NARROW_DIMS, name="uq_rollup_narrow_hourly_dims"),
)

rollup_narrow_daily = Table(
    "rollup_narrow_daily",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("day", BigInteger, nullable=False),  # µs since epoch, start of the UTC day
    *_dim_columns(NARROW_DIMS),
    *_measure_columns(MEASURES),
    UniqueConstraint("day", *NARROW_DIMS, name="uq_rollup_narrow_daily_dims"),
)

rollup_sessions_daily = Table(
    "rollup_sessions_daily",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("day", BigInteger, nullable=False),  # µs since epoch, start of the UTC day
    *_dim_columns(SESSION_DIMS),
    *_measure_columns(SESSION_MEASURES),
    Column("first_at", BigInteger, nullable=False),
    Column("last_at", BigInteger, nullable=False),
    UniqueConstraint("day", *SESSION_DIMS, name="uq_rollup_sessions_daily_dims"),
    Index("ix_rollup_sessions_session", "session_id"),
)

# Daily rollups of the attribution dimensions (who spent it), so breakdowns by key,
# user or project over weeks read a few thousand rows, not an hourly row per
# combination. Partial days come from the hourly rollups.
DAILY_DIMS: tuple[str, ...] = ("model", "key_id", "key_label", "team", "user_name", "project")

rollup_daily = Table(
    "rollup_daily",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("day", BigInteger, nullable=False),  # µs since epoch, start of the UTC day
    *_dim_columns(DAILY_DIMS),
    *_measure_columns(MEASURES),
    UniqueConstraint("day", *DAILY_DIMS, name="uq_rollup_daily_dims"),
    Index("ix_rollup_daily_user_day", "user_name", "day"),
    Index("ix_rollup_daily_key_day", "key_id", "day"),
    Index("ix_rollup_daily_project_day", "project", "day"),
)

# Tag rollups keep the measures breakdowns and timeseries show (no histograms, no
# cost components): a call has as many tag rows as tags, so they are kept lean to
# write. rollup_tags_hourly still has the other columns (from migration 0003); they
# are no longer written and never read.
TAG_MEASURES: tuple[str, ...] = (
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
)

rollup_tags_daily = Table(
    "rollup_tags_daily",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("day", BigInteger, nullable=False),
    *_dim_columns(TAG_DIMS),
    *_measure_columns(TAG_MEASURES),
    UniqueConstraint("day", *TAG_DIMS, name="uq_rollup_tags_daily_dims"),
    Index("ix_rollup_tags_daily_tag_day", "tag", "day"),
)
TAG_DAILY_MEASURES = TAG_MEASURES

# How far the daily rollups go. Every hour before ``daily_through`` (µs, on an hour)
# is in them; no hour from it on is. The writer keeps recent hours in the hourly
# rollups only and folds each into the daily ones once it has closed
# (``rollups.fold_daily``), so a call costs one upsert per rollup it is read from
# rather than two; readers take whole days from the daily rollups only before the
# day of ``daily_through`` (``cubes.segments``). One row, ``id`` 1.
rollup_state = Table(
    "rollup_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("daily_through", BigInteger, nullable=False),
)

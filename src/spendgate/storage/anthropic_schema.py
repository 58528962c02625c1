"""Tables of figures imported from Anthropic's Admin API (usage and cost reports).

One row per UTC day and the dimensions Anthropic groups by. Missing dimensions
are ``''`` so they can be part of the unique key. Costs are integer nano-dollars
like everything else spendgate stores. ``spendgate reconcile`` puts these next to
the ledger.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, Table, UniqueConstraint

from spendgate.storage.schema import UTCMicros, metadata

USAGE_DIMS: tuple[str, ...] = (
    "model",
    "api_key_id",
    "workspace_id",
    "service_tier",
    "context_window",
)
USAGE_MEASURES: tuple[str, ...] = (
    "uncached_input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "web_search_requests",
)
COST_DIMS: tuple[str, ...] = (
    "workspace_id",
    "description",
    "model",
    "cost_type",
    "token_type",
    "service_tier",
    "context_window",
)

anthropic_usage_daily = Table(
    "anthropic_usage_daily",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("day", BigInteger, nullable=False),  # µs since epoch, start of the UTC day
    *(Column(name, String(200), nullable=False, server_default="") for name in USAGE_DIMS),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in USAGE_MEASURES),
    Column("imported_at", UTCMicros(), nullable=False),
    UniqueConstraint("day", *USAGE_DIMS, name="uq_anthropic_usage_daily"),
)

anthropic_cost_daily = Table(
    "anthropic_cost_daily",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("day", BigInteger, nullable=False),
    *(Column(name, String(200), nullable=False, server_default="") for name in COST_DIMS),
    Column("amount_nanousd", BigInteger, nullable=False),
    Column("imported_at", UTCMicros(), nullable=False),
    UniqueConstraint("day", *COST_DIMS, name="uq_anthropic_cost_daily"),
)

"""Table definitions (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Times are stored as integer microseconds since the Unix epoch (UTC) and money as
integer nano-dollars (1e-9 USD): exact, index-friendly and identical on both
databases. Migrations in ``storage/migrations`` create these tables; keep the two
in step.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """A timezone-aware datetime as integer microseconds since the epoch."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: spendgate stores times in UTC, pass an aware datetime")
    return (value - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """Integer microseconds since the epoch as an aware UTC datetime."""
    seconds, micros = divmod(value, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)


class UTCMicros(TypeDecorator[datetime]):
    """An aware datetime stored as BIGINT microseconds since the epoch."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        return None if value is None else to_micros(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_micros(int(value))


calls = Table(
    "calls",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", UTCMicros(), nullable=False),
    Column("source", String(16), nullable=False),
    Column("method", String(10), nullable=False),
    Column("endpoint", String(512), nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("billable", Boolean, nullable=False),
    Column("status_code", Integer),
    Column("request_id", String(128)),
    Column("message_id", String(128)),
    Column("model_requested", String(128)),
    Column("model", String(128)),
    Column("stop_reason", String(64)),
    Column("complete", Boolean, nullable=False),
    Column("error_type", String(64)),
    Column("error_message", Text),
    Column("first_byte_at", UTCMicros()),
    Column("ended_at", UTCMicros()),
    Column("latency_ms", Float),
    Column("ttft_ms", Float),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cache_read_input_tokens", BigInteger, nullable=False),
    Column("cache_creation_5m_input_tokens", BigInteger, nullable=False),
    Column("cache_creation_1h_input_tokens", BigInteger, nullable=False),
    Column("web_search_requests", Integer, nullable=False),
    Column("web_fetch_requests", Integer, nullable=False),
    Column("thinking_tokens", BigInteger, nullable=False),
    Column("service_tier", String(32)),
    Column("inference_geo", String(32)),
    Column("speed", String(16)),
    Column("usage", Text),
    Column("cost_nanousd", BigInteger),
    Column("cache_savings_nanousd", BigInteger),
    Column("cost_breakdown", Text),
    Column("pricing_status", String(20), nullable=False),
    Column("price_book_version", String(80)),
    Column("credential_fingerprint", String(64)),
    Column("credential_kind", String(16)),
    Column("key_id", String(36)),
    Column("key_label", String(200)),
    Column("team", String(200)),
    Column("user_name", String(200)),
    Column("project", String(200)),
    Column("tags", Text),
    Column("session_id", String(200)),
    Column("agent_id", String(200)),
    Column("user_agent", String(512)),
    Column("note", Text),
    Index("ix_calls_created", "created_at", "id"),
    Index("ix_calls_model_created", "model", "created_at"),
    Index("ix_calls_key_created", "key_id", "created_at"),
    Index("ix_calls_status_created", "pricing_status", "created_at"),
)

# Records that could be written neither to the database nor to the spool, and
# records dropped for any other reason: counted, never silent.
loss_events = Table(
    "loss_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCMicros(), nullable=False),
    Column("count", Integer, nullable=False),
    Column("reason", Text, nullable=False),
)

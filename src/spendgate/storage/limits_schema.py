"""Tables of rate limits and their token buckets (on the shared ``metadata``).

A limit is one row with up to three rates (requests, input tokens, output
tokens per minute). Its live state is one bucket row per limit and subject
(the key id, team, user or project the calls come from): a level per metric,
in units x microseconds (see :mod:`spendgate.storage.limits`), and the moment
the levels were last brought up to date, in microseconds since the epoch.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from spendgate.storage.schema import UTCMicros, metadata

rate_limits = Table(
    "rate_limits",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("scope_value", String(200), nullable=False),
    Column("requests_per_minute", BigInteger),
    Column("input_tokens_per_minute", BigInteger),
    Column("output_tokens_per_minute", BigInteger),
    Column("created_at", UTCMicros(), nullable=False),
)

rate_limit_buckets = Table(
    "rate_limit_buckets",
    metadata,
    Column("limit_id", String(36), primary_key=True),
    Column("subject", String(200), primary_key=True),
    Column("at_us", BigInteger, nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("refused", BigInteger, nullable=False),
)

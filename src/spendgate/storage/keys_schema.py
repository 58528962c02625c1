"""Tables of teams, proxy keys and budgets (on the shared ``metadata``).

Proxy keys are stored as a SHA-256 hash only; an attached upstream credential
as Fernet ciphertext. Budget counters live in ``budget_usage``: one row per
budget and calendar period, with the settled spend and the reservations of
calls still in flight, both in integer nano-dollars.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text

from spendgate.storage.schema import UTCMicros, metadata

teams = Table(
    "teams",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("color", String(16)),
    Column("created_at", UTCMicros(), nullable=False),
)

proxy_keys = Table(
    "proxy_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),
    Column("label", String(200), nullable=False),
    Column("color", String(16)),
    Column("team_id", String(36), ForeignKey("teams.id", ondelete="SET NULL")),
    Column("owner", String(200)),
    Column("project", String(200)),
    Column("tags", Text),
    Column("upstream_key_enc", Text),
    Column("upstream_fingerprint", String(64)),
    Column("created_at", UTCMicros(), nullable=False),
    Column("expires_at", UTCMicros()),
    Column("revoked_at", UTCMicros()),
    Column("rotated_to", String(36)),
    Index("ix_proxy_keys_team", "team_id"),
)

budgets = Table(
    "budgets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("scope_value", String(200), nullable=False),
    Column("period", String(16), nullable=False),
    Column("limit_nanousd", BigInteger, nullable=False),
    Column("thresholds", Text),
    Column("created_at", UTCMicros(), nullable=False),
)

budget_usage = Table(
    "budget_usage",
    metadata,
    Column(
        "budget_id",
        String(36),
        ForeignKey("budgets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("period_key", String(32), primary_key=True),
    Column("spent_nanousd", BigInteger, nullable=False),
    Column("reserved_nanousd", BigInteger, nullable=False),
    Column("calls", BigInteger, nullable=False),
    Column("refused", BigInteger, nullable=False),
)

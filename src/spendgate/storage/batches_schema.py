"""The ``batches`` table (on the shared ``metadata``): who created each Message Batch.

One row per ``POST /v1/messages/batches`` that passed the gateway. The row is
written *before* the batch is forwarded, together with its budget reservation
(``batch_id`` is filled in once Anthropic has answered), so the reservation
is never held without a row that can release it. ``claims`` is a JSON list of
``[budget_id, period_key]`` the reservation sits on; ``reserved_nanousd`` is
what is still held (0 once settled or released).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from spendgate.storage.schema import UTCMicros, metadata

batches = Table(
    "batches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("batch_id", String(100), unique=True),
    Column("created_at", UTCMicros(), nullable=False),
    Column("key_id", String(36)),
    Column("key_label", String(200)),
    Column("team", String(200)),
    Column("user", String(200)),
    Column("project", String(200)),
    Column("tags", Text),
    Column("credential_fingerprint", String(64)),
    Column("credential_kind", String(16)),
    Column("requests", Integer, nullable=False),
    Column("claims", Text),
    Column("reserved_nanousd", BigInteger, nullable=False),
    Column("spent_nanousd", BigInteger),
    Column("settled_at", UTCMicros()),
    Column("released_at", UTCMicros()),
    Index("ix_batches_created_at", "created_at"),
)

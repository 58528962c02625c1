"""Tables of admin users, API tokens and dashboard sessions (on the shared ``metadata``).

Passwords are stored as argon2id hashes; API tokens and session ids as SHA-256
hashes (both are 256-bit random secrets, so a fast hash is enough and lets a
lookup use the index). ``teams`` is a JSON list of team ids for a team-scoped
viewer, NULL for someone who sees every team.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text

from spendgate.storage.schema import UTCMicros, metadata

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("teams", Text),
    Column("created_at", UTCMicros(), nullable=False),
    Column("password_changed_at", UTCMicros(), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("teams", Text),
    Column("created_by", String(64)),
    Column("created_at", UTCMicros(), nullable=False),
    Column("expires_at", UTCMicros()),
    Column("revoked_at", UTCMicros()),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCMicros(), nullable=False),
    Column("expires_at", UTCMicros(), nullable=False),
    Index("ix_sessions_user", "user_id"),
    Index("ix_sessions_expires", "expires_at"),
)

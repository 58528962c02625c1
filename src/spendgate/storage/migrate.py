"""Apply Alembic migrations, safely when several replicas start at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every spendgate process.
_ADVISORY_LOCK_ID = 0x5E9D_6A7E


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revisions() -> tuple[str, ...]:
    """The newest migrations this version of spendgate knows (one per feature branch)."""
    return tuple(sorted(ScriptDirectory.from_config(_config()).get_heads()))


def current_revisions(engine: Engine) -> tuple[str, ...]:
    """The migrations the database is at (empty for an empty database)."""
    with engine.connect() as conn:
        return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema.

    Features add their tables as separate branches off the first revision, so
    several heads are normal; all of them are applied.

    On PostgreSQL an advisory lock serialises replicas that start together; the
    second one finds the work done and does nothing.
    """
    config = _config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        config.attributes["connection"] = conn
        command.upgrade(config, "heads")

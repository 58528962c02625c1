"""Database housekeeping questions: how big, how far back, vacuum."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect, select, text

from spendgate.storage.migrate import current_revisions
from spendgate.storage.rollups_schema import rollup_hourly
from spendgate.storage.schema import calls
from spendgate.storage.store import Store


@dataclass(frozen=True)
class DatabaseStats:
    """What ``spendgate db stats`` shows."""

    dialect: str
    size_bytes: int | None
    rows: dict[str, int]
    oldest_call: datetime | None
    newest_call: datetime | None
    rollups_from: datetime | None
    rollups_to: datetime | None
    lost_records: int
    revisions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON shape (times as RFC 3339)."""

        def iso(when: datetime | None) -> str | None:
            return when.isoformat() if when is not None else None

        return {
            "dialect": self.dialect,
            "size_bytes": self.size_bytes,
            "rows": self.rows,
            "calls": {"oldest": iso(self.oldest_call), "newest": iso(self.newest_call)},
            "rollups": {"from_hour": iso(self.rollups_from), "to_hour": iso(self.rollups_to)},
            "lost_records": self.lost_records,
            "revisions": list(self.revisions),
        }


def call_time_range(store: Store) -> tuple[datetime | None, datetime | None]:
    """When the oldest and the newest stored raw call were made."""
    with store.engine.connect() as conn:
        row = conn.execute(select(func.min(calls.c.created_at), func.max(calls.c.created_at)))
        oldest, newest = row.one()
    return oldest, newest


def _hour(micros: int | None) -> datetime | None:
    return datetime.fromtimestamp(micros / 1_000_000, UTC) if micros is not None else None


def database_size(store: Store) -> int | None:
    """Bytes the database takes on disk (SQLite: file plus WAL)."""
    with store.engine.connect() as conn:
        if store.is_sqlite:
            pages = conn.execute(text("PRAGMA page_count")).scalar() or 0
            page_size = conn.execute(text("PRAGMA page_size")).scalar() or 0
            size = int(pages) * int(page_size)
            database = store.engine.url.database
            if database and database != ":memory:":
                wal = Path(database + "-wal")
                size += wal.stat().st_size if wal.exists() else 0
            return size
        if store.dialect == "postgresql":
            value = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
            return int(value) if value is not None else None
    return None


def database_stats(store: Store) -> DatabaseStats:
    """Rows per table, size, the span of raw calls and of hourly rollups."""
    engine = store.engine
    preparer = engine.dialect.identifier_preparer
    rows: dict[str, int] = {}
    with engine.connect() as conn:
        for name in sorted(inspect(conn).get_table_names()):
            quoted = preparer.quote(name)
            rows[name] = int(conn.execute(text(f"SELECT count(*) FROM {quoted}")).scalar() or 0)
        first, last = conn.execute(
            select(func.min(rollup_hourly.c.hour), func.max(rollup_hourly.c.hour))
        ).one()
    oldest, newest = call_time_range(store)
    return DatabaseStats(
        dialect=store.dialect,
        size_bytes=database_size(store),
        rows=rows,
        oldest_call=oldest,
        newest_call=newest,
        rollups_from=_hour(first),
        rollups_to=_hour(last),
        lost_records=store.lost_total(),
        revisions=current_revisions(engine),
    )


def vacuum(store: Store) -> None:
    """Give freed pages back and refresh planner statistics (outside any transaction)."""
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if store.is_sqlite:
            conn.execute(text("VACUUM"))
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            conn.execute(text("PRAGMA optimize"))
        else:
            conn.execute(text("VACUUM (ANALYZE)"))

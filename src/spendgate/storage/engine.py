"""Database engines for SQLite and PostgreSQL, from one URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeGuard

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool


class StorageError(Exception):
    """The database cannot be used; the message says what to do."""


def normalize_url(url: str) -> str:
    """Pick the drivers we ship: stdlib sqlite3 and psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url: str) -> bool:
    """Whether a database URL names SQLite."""
    return normalize_url(url).startswith("sqlite")


# SQLite page cache per connection, in KiB. The writer touches the newest pages of
# every index and rollup on each batch: 32 MiB keeps them in memory at 10 M calls.
# Other connections (API reads, keys, budgets, limits) get 4 MiB (SQLite's default
# is 2 MiB): the operating system's file cache serves the rest. Each is a ceiling,
# filled only as pages are read, but a pooled connection keeps what it filled.
WRITER_CACHE_KIB = 32 * 1024
READER_CACHE_KIB = 4 * 1024


def _names_file(database: str | None) -> TypeGuard[str]:
    """Whether an SQLite URL's database part is a file (not an in-memory database)."""
    return database not in (None, "", ":memory:")


def is_sqlite_file(url: str) -> bool:
    """Whether a database URL names an SQLite file (not an in-memory database)."""
    if not is_sqlite(url):
        return False
    try:
        database = make_url(normalize_url(url)).database
    except ArgumentError:
        return False  # make_engine says what is wrong with it
    return _names_file(database)


def _sqlite_pragmas(cache_kib: int) -> Any:
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers (API, CLI reports) run while the writer writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        # Checkpoint every ~40 MiB of WAL instead of every 4 MiB: a batch rewrites the
        # same rollup and index pages, which are then copied into the database once
        # per checkpoint rather than after nearly every batch.
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return pragmas


_PG_CONNECT_DEFAULTS: dict[str, int] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    sqlite_cache_kib: int = WRITER_CACHE_KIB,
    sqlite_pool_size: int | None = None,
) -> Engine:
    """An engine for ``url``; creates the SQLite file's directory if needed.

    ``pool_size`` is PostgreSQL's pool (as many again may overflow). On SQLite,
    ``sqlite_cache_kib`` is each connection's page cache (see :data:`WRITER_CACHE_KIB`)
    and ``sqlite_pool_size`` the pool, with as many again allowed to overflow
    (SQLAlchemy's 5 + 10 when None), newest connection first.
    """
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(
            f"SPENDGATE_DATABASE_URL is not a database URL ({exc}); use e.g. "
            "sqlite:////home/me/spendgate.db or postgresql://user:pass@host/dbname"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        pool: dict[str, Any] = {"poolclass": NullPool}
        if _names_file(database):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            # Newest connection first: each pooled connection has a page cache of
            # its own, and a queue handed every checkout to the least recently used
            # one, so every cache warmed up with the same pages (a gateway's RSS
            # grew by 30 MiB a minute under load until five caches were full).
            pool = {"pool_use_lifo": True}
            if sqlite_pool_size is not None:
                pool.update(pool_size=sqlite_pool_size, max_overflow=sqlite_pool_size)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, **pool
        )
        event.listen(engine, "connect", _sqlite_pragmas(sqlite_cache_kib))
        return engine
    if parsed.get_backend_name() == "postgresql":
        # A dead or black-holed database must fail a write in seconds (the
        # recorder then spools), never hang it; the URL's own settings win.
        connect_args = {
            name: value for name, value in _PG_CONNECT_DEFAULTS.items() if name not in parsed.query
        }
        return create_engine(
            url,
            connect_args=connect_args,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_recycle=1800,
        )
    raise StorageError(
        f"unsupported database {parsed.get_backend_name()!r} in SPENDGATE_DATABASE_URL; "
        "spendgate runs on SQLite (sqlite:///path) or PostgreSQL (postgresql://...)"
    )

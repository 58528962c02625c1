"""The store: one typed method per question the product asks of the database."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from operator import is_not, itemgetter
from typing import Any

import orjson
from psycopg.errors import InsufficientPrivilege, UndefinedTable
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Connection,
    Engine,
    Float,
    Integer,
    String,
    Text,
    TypeDecorator,
    and_,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeEngine

from spendgate.records import CallRecord
from spendgate.storage import migrate
from spendgate.storage.calls import (
    CALL_COLUMNS,
    Cursor,
    fill_breakdowns,
    row_to_api,
    values_to_row,
)
from spendgate.storage.engine import (
    READER_CACHE_KIB,
    WRITER_CACHE_KIB,
    is_sqlite,
    is_sqlite_file,
    make_engine,
)
from spendgate.storage.rollups import (
    Aggregates,
    Folded,
    apply_rollups,
    call_item,
    daily_through,
    fold_daily,
    parsed_row,
    write_aggregates,
)
from spendgate.storage.rollups_schema import HOUR_US
from spendgate.storage.schema import calls, loss_events, to_micros

log = logging.getLogger("spendgate.storage")
# Readers re-read the daily rollups' mark after this many seconds; a writer that folds
# after a failed fold waits this long.
_MARK_MAX_AGE = 30.0
_FOLD_RETRY_SECONDS = 60.0
# Called between slices of a batch's Python work (the writer process naps there).
Pace = Callable[[], None]
# Calls per slice: each costs ~10-25 µs of Python, the slice a few hundred.
_PACE_ITEMS = 16
# Rows per insert statement between two paces, inside the transaction.
_PACE_ROWS = 8
# PostgreSQL's calls are copied and moved this many at a time at least (~1 ms of the
# server's work): in slices of 8 or 16 they cost more CPU and did not lower the c=1
# p99 (docs/benchmarks.md), so a batch of what one flush gathers moves in one go.
_PACE_ROWS_POSTGRES = 64


def _now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class CallFilter:
    """Which calls a question is about. Empty fields do not filter."""

    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    source: str | None = None
    status: str | None = None  # "ok", "error", or an HTTP status code
    key_id: str | None = None
    credential: str | None = None
    team: str | None = None
    user: str | None = None
    project: str | None = None
    session_id: str | None = None
    pricing_status: str | None = None
    endpoint: str | None = None
    tag: str | None = None
    ids: Sequence[str] = field(default_factory=tuple)

    def clauses(self) -> list[ColumnElement[bool]]:
        """SQL conditions for this filter on the ``calls`` table."""
        c = calls.c
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(c.created_at >= self.since)
        if self.until is not None:
            out.append(c.created_at < self.until)
        for column, value in (
            (c.model, self.model),
            (c.source, self.source),
            (c.key_id, self.key_id),
            (c.credential_fingerprint, self.credential),
            (c.team, self.team),
            (c.user_name, self.user),
            (c.project, self.project),
            (c.session_id, self.session_id),
            (c.pricing_status, self.pricing_status),
            (c.endpoint, self.endpoint),
        ):
            if value is not None:
                out.append(column == value)
        if self.status == "ok":
            out.append(and_(c.status_code < 400, c.error_type.is_(None)))
        elif self.status == "error":
            out.append(or_(c.status_code >= 400, c.error_type.is_not(None)))
        elif self.status is not None:
            out.append(c.status_code == int(self.status))
        if self.tag is not None:
            # Tags are a small JSON list (orjson); match the element as it is encoded there,
            # quotes and backslashes escaped, LIKE wildcards (% and _) taken literally.
            out.append(c.tags.contains(orjson.dumps(self.tag).decode(), autoescape=True))
        if self.ids:
            out.append(c.id.in_(list(self.ids)))
        return out


@dataclass(frozen=True)
class Page:
    """One page of the request log."""

    data: list[dict[str, Any]]
    next_cursor: str | None


class Store:
    """All database access. Thread-safe: each method takes its own connection."""

    def __init__(self, engine: Engine, *, writer_engine: Engine | None = None) -> None:
        self.engine = engine
        # Where calls are inserted and rollups folded: on SQLite a connection of its
        # own with the large page cache (the other connections get a small one).
        self.writer_engine = writer_engine or engine
        self.dialect = engine.dialect.name
        # The daily rollups' mark as last seen (None: not read yet) and when; a mark
        # older than the database's is still correct for readers, only slower.
        self._daily_through: int | None = None
        self._daily_read_at = 0.0
        self._fold_not_before = 0.0
        # Wall clock in µs since the epoch: which hours have closed (tests set it).
        self.clock: Callable[[], int] = _now_us
        # PostgreSQL: calls go in by COPY through a temporary table, unless the role
        # may not make one (then row by row, see insert_items).
        self.staging = self.dialect == "postgresql"

    @classmethod
    def open(cls, url: str, *, pool_size: int = 10, upgrade: bool = True) -> Store:
        """Connect to ``url`` and, unless told not to, apply pending migrations."""
        if is_sqlite_file(url):
            # One writer at a time is all SQLite has: one pooled connection (overflow
            # for the rare second caller, e.g. a hand-logged call during a batch).
            writer = make_engine(url, sqlite_pool_size=1, sqlite_cache_kib=WRITER_CACHE_KIB)
            readers = make_engine(url, sqlite_cache_kib=READER_CACHE_KIB)
            store = cls(readers, writer_engine=writer)
        else:
            store = cls(make_engine(url, pool_size=pool_size))
        if upgrade:
            store.upgrade()
        return store

    @property
    def is_sqlite(self) -> bool:
        """Whether this store runs on SQLite."""
        return is_sqlite(str(self.engine.url))

    def upgrade(self) -> None:
        """Apply pending migrations."""
        migrate.upgrade(self.engine)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()
        if self.writer_engine is not self.engine:
            self.writer_engine.dispose()

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    # -- writing ---------------------------------------------------------

    def _insert_ignoring_duplicates(self) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert(calls).on_conflict_do_nothing(index_elements=["id"])
        return sqlite.insert(calls).on_conflict_do_nothing(index_elements=["id"])

    def insert_calls(self, records: Sequence[CallRecord]) -> int:
        """Insert records in one transaction; records already stored (same id) are skipped.

        Returns how many were new. Idempotent, so a batch replayed from the spool
        after a crash can never be counted twice.
        """
        return self.insert_items([call_item(r) for r in records])

    def insert_items(self, items: Sequence[Folded], *, pace: Pace | None = None) -> int:
        """Insert calls given as :func:`call_item` tuples (what the writer process
        receives); duplicates are skipped. Returns how many were new.

        Most of the Python work (the breakdowns' JSON, the rollups' sums per group)
        is done before the transaction, so the write lock is held for less than it.
        ``pace`` is called between slices of that work and between the insert's
        statements (the writer process naps there, see
        :mod:`spendgate.recording.process`): a nap in the transaction holds its locks
        ~70 µs longer."""
        items = list(items)
        if not items:
            return 0
        ahead = Aggregates()
        for start in range(0, len(items), _PACE_ITEMS):
            part = items[start : start + _PACE_ITEMS]
            fill_breakdowns(part)
            ahead.add_all(part)
            if pace is not None:
                pace()
        ahead.settle()
        stage = False
        while True:
            info: dict[Any, Any] = {}
            try:
                with self.writer_engine.begin() as conn:
                    info = conn.info
                    new = self._insert(conn, items, ahead, pace, stage=stage)
                break
            except UndefinedTable:  # PostgreSQL: a session without the staging table
                info.pop(_STAGE, None)
                if stage:  # it was made in this transaction: something else is missing
                    raise
                stage = True
            except _CannotStage as exc:  # written again, row by row
                self.staging = False
                log.warning(
                    "the database role may not create temporary tables (%s), so calls "
                    "are inserted row by row, at two to three times the database's CPU a call; "
                    "to copy them in batches: GRANT TEMPORARY ON DATABASE <database> TO "
                    "<role>, and restart",
                    exc,
                )
        if self.staging:
            info[_STAGE] = True  # committed: the session has the table now
        self._fold_if_due()
        return new

    def insert_rows(self, rows: list[dict[str, Any]]) -> int:
        """Insert ready ``calls`` rows (the spool's replay path); duplicates are skipped."""
        return self.insert_items([parsed_row(row) for row in rows])

    def _insert(
        self,
        conn: Connection,
        items: list[Folded],
        ahead: Aggregates,
        pace: Pace | None,
        *,
        stage: bool = False,
    ) -> int:
        if self.dialect == "sqlite":
            new = _insert_sqlite(conn, items, pace)
        elif self.staging:
            # Made on a connection's first batch (noted once that commits), and
            # again if a pooler hands over another session (UndefinedTable, above).
            stage = stage or _STAGE not in conn.info
            new = _insert_postgres(conn, items, pace, stage=stage)
        elif self.dialect == "postgresql":
            new = _insert_postgres_rows(conn, items, pace)
        else:
            stmt = self._insert_ignoring_duplicates().returning(calls.c.id)
            rows = [values_to_row(values) for values, _, _ in items]
            new = _first_of(items, {row[0] for row in conn.execute(stmt, rows)})
        if pace is not None:
            pace()  # before the rollups' upserts take their rows' locks
        if len(new) == len(items):
            write_aggregates(conn, ahead)
        elif new:  # some were stored already (a replayed batch): sum only the new ones
            apply_rollups(conn, new)
        return len(new)

    # -- the daily rollups' mark ---------------------------------------------

    def daily_through(self, max_age: float = _MARK_MAX_AGE) -> int:
        """Where the daily rollups stop (``rollup_state``), read at most ``max_age``
        seconds ago: the analytics planner takes whole days from them only before it."""
        now = time.monotonic()
        if self._daily_through is None or now - self._daily_read_at > max_age:
            with self.engine.connect() as conn:
                self._note_mark(daily_through(conn), now)
        assert self._daily_through is not None
        return self._daily_through

    def fold_daily(self, now: datetime | None = None) -> int:
        """Fold every hour that closed before the previous hour began into the daily
        rollups (the writer does this by itself); returns the mark."""
        at = to_micros(now) if now is not None else self.clock()
        through = at - at % HOUR_US - HOUR_US
        with self.writer_engine.begin() as conn:
            mark = fold_daily(conn, through)
        self._note_mark(mark, time.monotonic())
        return mark

    def _note_mark(self, mark: int, at: float) -> None:
        # A mark read by a slower thread may be older than one noted already: lower
        # is still correct for readers (whole days stop earlier), never higher.
        self._daily_through = mark
        self._daily_read_at = at

    def _fold_if_due(self) -> None:
        """After a write: fold closed hours into the daily rollups once an hour."""
        now_us = self.clock()
        due = now_us - now_us % HOUR_US - HOUR_US
        if self._daily_through is not None and due <= self._daily_through:
            return
        if time.monotonic() < self._fold_not_before:
            return
        try:
            self.fold_daily()
        except Exception as exc:  # the calls are written; fold on a later batch
            log.warning("could not fold closed hours into the daily rollups: %s", exc)
            self._fold_not_before = time.monotonic() + _FOLD_RETRY_SECONDS

    def record_loss(self, count: int, reason: str, at: datetime) -> None:
        """Remember that ``count`` records could not be kept, and why."""
        with self.engine.begin() as conn:
            conn.execute(loss_events.insert().values(at=at, count=count, reason=reason))

    def lost_total(self) -> int:
        """All records ever counted as lost."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.coalesce(func.sum(loss_events.c.count), 0))).scalar()
        return int(value or 0)

    # -- the request log ---------------------------------------------------

    def list_calls(self, flt: CallFilter, *, limit: int = 50, cursor: str | None = None) -> Page:
        """Newest-first calls matching ``flt``, ``limit`` at a time (keyset pagination)."""
        conditions = flt.clauses()
        if cursor:
            pos = Cursor.decode(cursor)
            conditions.append(tuple_(calls.c.created_at, calls.c.id) < (pos.created_at, pos.id))
        stmt = (
            select(calls)
            .where(*conditions)
            .order_by(calls.c.created_at.desc(), calls.c.id.desc())
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = Cursor(rows[-1]["created_at"], rows[-1]["id"]).encode() if more else None
        return Page([row_to_api(r) for r in rows], next_cursor)

    def get_call(self, call_id: str) -> dict[str, Any] | None:
        """One call in the public shape, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(calls).where(calls.c.id == call_id)).first()
        return row_to_api(dict(row._mapping)) if row else None

    def iter_call_rows(self, flt: CallFilter, *, chunk: int = 2000) -> Iterator[dict[str, Any]]:
        """Every matching stored row, oldest first, in constant memory (exports, repricing)."""
        conditions = flt.clauses()
        last: tuple[datetime, str] | None = None
        while True:
            where = list(conditions)
            if last is not None:
                where.append(tuple_(calls.c.created_at, calls.c.id) > last)
            stmt = select(calls).where(*where).order_by(calls.c.created_at, calls.c.id).limit(chunk)
            with self.engine.connect() as conn:
                result = conn.execute(stmt)
                keys = list(result.keys())
                rows = [dict(zip(keys, r, strict=True)) for r in result]
            yield from rows
            if len(rows) < chunk:
                return
            last = (rows[-1]["created_at"], rows[-1]["id"])

    def call_ids_since(self, since: datetime) -> list[tuple[datetime, str]]:
        """``(created_at, id)`` of every call made at or after ``since``, oldest first.

        Reads only the ``(created_at, id)`` index, so watching the newest calls
        (``spendgate tail``) stays cheap however long each row is.
        """
        stmt = (
            select(calls.c.created_at, calls.c.id)
            .where(calls.c.created_at >= since)
            .order_by(calls.c.created_at, calls.c.id)
        )
        with self.engine.connect() as conn:
            return [(row[0], row[1]) for row in conn.execute(stmt)]

    def count_calls(self, flt: CallFilter) -> int:
        """How many calls match ``flt``."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.count()).select_from(calls).where(*flt.clauses()))
            return int(value.scalar() or 0)

    def delete_calls(self, flt: CallFilter) -> int:
        """Delete matching calls; returns how many rows went."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(calls).where(*flt.clauses()))
            return int(result.rowcount or 0)


# Python's sqlite3 binds None and bool parameters through its adapter lookup, about
# 0.6 µs each (an int or str costs a tenth of that), and a call row has some twenty
# of them. So SQLite rows are inserted per pattern of NULL columns, with those
# columns left out (none has a default: they come back NULL), and booleans as 0/1.
# Only nullable columns can make a pattern (a NULL in a NOT NULL column fails the
# insert either way).
_NULLABLE_AT = tuple(i for i, c in enumerate(calls.c) if c.nullable)
_NULLABLE = itemgetter(*_NULLABLE_AT)
_NONES = (None,) * len(_NULLABLE_AT)
# stream, billable, complete (unpacked here so a new boolean column fails at import).
_BOOL_1, _BOOL_2, _BOOL_3 = (i for i, c in enumerate(calls.c) if isinstance(c.type, Boolean))


@lru_cache(maxsize=512)
def _sqlite_insert(present: tuple[bool, ...]) -> tuple[str, Callable[[list[Any]], Any]]:
    """The insert for rows whose nullable columns are present (True) or NULL (False),
    and the getter of those rows' parameters."""
    left_out = {at for at, there in zip(_NULLABLE_AT, present, strict=True) if not there}
    kept = [i for i in range(len(CALL_COLUMNS)) if i not in left_out]
    columns = [CALL_COLUMNS[i] for i in kept]
    sql = (
        f"INSERT INTO calls ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        "ON CONFLICT (id) DO NOTHING"
    )
    # itemgetter of one index returns the value, not a 1-tuple: a row has many columns.
    return sql, itemgetter(*kept)


def _first_of(items: list[Folded], ids: set[Any]) -> list[Folded]:
    """The calls whose id is in ``ids``, each id once (a batch may repeat a record)."""
    out = []
    for item in items:
        call_id = item[0][0]
        if call_id in ids:
            out.append(item)
            ids.discard(call_id)
    return out


# PostgreSQL takes a batch's calls by binary COPY into a temporary table, and moves
# them into ``calls`` with INSERT ... SELECT, in slices when paced. The
# row-per-statement ``executemany`` this replaced cost the server ~40 µs a row against
# ~15, and psycopg ~20 µs against ~3 (docs/benchmarks.md, "PostgreSQL's calls by
# COPY"). COPY cannot skip a call stored already; the move does (ON CONFLICT), and
# returns the ids it added. A COPY straight into ``calls`` (and a second try without
# the stored ids) measured no better on the c=1 p99, in one run worse.
#
# The table's columns have the types the COPY sends, wide enough for any value
# (whole numbers as bigint, strings as text), so the move's assignment to ``calls``
# refuses what does not fit (an integer out of range, a string too long), as a row
# insert did: binary COPY into an integer column would wrap a larger number. The
# name carries a digest of the layout, so a session that outlives a migration (a
# pooler's server connection) never copies into an older one. Each commit empties
# the table (nothing vacuums a temporary table: deleted rows would stay).
# ``batch_row`` numbers a batch's rows, for the slices.


def _copy_type(column_type: TypeEngine[Any]) -> str:
    """The binary COPY's type for a column; a type not listed fails at import."""
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    try:
        return _COPY_TYPES[type(column_type)]
    except KeyError:
        raise TypeError(f"no COPY type for a {column_type!r} column") from None


_COPY_TYPES: dict[type[TypeEngine[Any]], str] = {
    Boolean: "bool",
    Float: "float8",
    BigInteger: "int8",
    Integer: "int8",
    Text: "text",
    String: "text",
}
_STAGED = (*((str(c.name), _copy_type(c.type)) for c in calls.c), ("batch_row", "int4"))
_POSTGRES_COPY_TYPES = tuple(kind for _, kind in _STAGED)
_STAGE = "spendgate_calls_in_" + hashlib.sha256(repr(_STAGED).encode()).hexdigest()[:12]
_POSTGRES_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} "
    f"({', '.join(f'{name} {kind}' for name, kind in _STAGED)}) ON COMMIT DELETE ROWS"
)
_POSTGRES_COPY = (
    f"COPY {_STAGE} ({', '.join(name for name, _ in _STAGED)}) FROM STDIN (FORMAT BINARY)"
)
_POSTGRES_MOVE = (
    f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) SELECT {', '.join(CALL_COLUMNS)} "
    f"FROM {_STAGE} WHERE batch_row >= %s AND batch_row < %s "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)
# A paced batch moves in at most this many slices: each move scans the whole table.
_MOST_MOVES = 8


class _CannotStage(Exception):
    """The role may not create the staging table: the batch goes in row by row."""


def _insert_postgres(
    conn: Connection, items: list[Folded], pace: Pace | None, *, stage: bool = False
) -> list[Folded]:
    """Copy the batch's calls into the staging table and move them; returns the rows
    that were new. ``stage`` first makes the table: it lasts as long as the session,
    and a missing one fails the transaction with ``UndefinedTable`` (the caller tries
    again with ``stage``). With ``pace``, slices of ``_PACE_ROWS_POSTGRES`` rows or
    more, and a pace between them in the COPY and between the moves, so the server's
    work comes in slices too."""
    step = len(items) or 1
    if pace is not None:
        step = max(_PACE_ROWS_POSTGRES, -(-len(items) // _MOST_MOVES))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if stage:
            try:
                cursor.execute(_POSTGRES_STAGE)
            except InsufficientPrivilege as exc:  # no TEMPORARY privilege on the database
                raise _CannotStage(str(exc).strip()) from exc
        with cursor.copy(_POSTGRES_COPY) as copy:
            copy.set_types(_POSTGRES_COPY_TYPES)
            for n, (values, _, _) in enumerate(items):
                if n and n % step == 0 and pace is not None:
                    pace()
                copy.write_row((*values, n))
        inserted: set[Any] = set()
        for start in range(0, len(items), step):
            if start and pace is not None:
                pace()
            cursor.execute(_POSTGRES_MOVE, (start, start + step))
            inserted.update(row[0] for row in cursor.fetchall())
        return _first_of(items, inserted)
    finally:
        cursor.close()


_POSTGRES_INSERT = (
    f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(CALL_COLUMNS))}) ON CONFLICT (id) DO NOTHING RETURNING id"
)


def _insert_postgres_rows(conn: Connection, items: list[Folded], pace: Pace | None) -> list[Folded]:
    """For a role that may not create the staging table: psycopg's pipelined
    ``executemany`` of one short statement (parsed once; SQLAlchemy's insert costs
    ~250 µs a row in Python), a row each: paced, 2.5 times the server's CPU of the COPY
    and 3.5 times the writer's (docs/benchmarks.md, "Evening round").
    Returns the rows that were new. With ``pace``, ``_PACE_ROWS`` rows per pipeline
    and a pace between them."""
    step = len(items) if pace is None else _PACE_ROWS
    inserted: set[Any] = set()
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(items), step):
            if start and pace is not None:
                pace()
            rows = [values for values, _, _ in items[start : start + step]]
            cursor.executemany(_POSTGRES_INSERT, rows, returning=True)
            while True:
                found = cursor.fetchone()
                if found is not None:
                    inserted.add(found[0])
                if not cursor.nextset():
                    break
        return _first_of(items, inserted)
    finally:
        cursor.close()


def _insert_sqlite(conn: Connection, items: list[Folded], pace: Pace | None) -> list[Folded]:
    """Insert with a plain ``executemany`` per pattern of NULL columns (SQLAlchemy's
    per-row parameter processing costs more than SQLite's insert); returns the rows
    that were new. With ``pace``, ``_PACE_ROWS`` rows per statement and a pace between
    statements (a row and its four indexes cost ~20 µs when the writer wakes for a
    batch).

    SQLite has one writer at a time and gives each new row the next rowid, so the
    rows these statements added are the newest ``rowcount`` rowids of the table.
    """
    by_pattern: dict[tuple[bool, ...], list[list[Any]]] = {}
    for values, _, _ in items:
        # What SQLite stores for a bool anyway; the rollups read them the same.
        values[_BOOL_1] = 1 if values[_BOOL_1] else 0
        values[_BOOL_2] = 1 if values[_BOOL_2] else 0
        values[_BOOL_3] = 1 if values[_BOOL_3] else 0
        present = tuple(map(is_not, _NULLABLE(values), _NONES))
        group = by_pattern.get(present)
        if group is None:
            by_pattern[present] = [values]
        else:
            group.append(values)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        added = statements = 0
        step = len(items) if pace is None else _PACE_ROWS
        for present, rows in by_pattern.items():
            sql, params = _sqlite_insert(present)
            for start in range(0, len(rows), step):
                if statements and pace is not None:
                    pace()
                cursor.executemany(sql, map(params, rows[start : start + step]))
                added += cursor.rowcount
                statements += 1
        if added == len(items) and len({values[0] for values, _, _ in items}) == added:
            return items
        if added <= 0:
            return []
        cursor.execute("SELECT id FROM calls ORDER BY rowid DESC LIMIT ?", (added,))
        return _first_of(items, {row[0] for row in cursor.fetchall()})
    finally:
        cursor.close()

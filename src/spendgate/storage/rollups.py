"""Folding call rows into the rollup tables, in the writer's insert transaction.

:func:`aggregate` turns ``calls`` rows into additive rollup rows (also used by
analytics for the partial hours at the edges of a range); :func:`write_aggregates`
upserts them in the writer's transaction. The store folds a batch before that
transaction and upserts only what the rows really inserted add up to, so nothing
is counted twice.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from operator import add, itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, text, update

from spendgate.records import CallRecord
from spendgate.storage.calls import CALL_COLUMNS, record_values, row_values
from spendgate.storage.rollups_schema import (
    DAILY_DIMS,
    DAY_US,
    HIST_BASE_MS,
    HIST_BUCKETS,
    HIST_RATIO,
    HOUR_US,
    HOURLY_DIMS,
    LATENCY_BUCKETS,
    MEASURES,
    NARROW_DIMS,
    SESSION_DIMS,
    SESSION_MEASURES,
    TAG_DIMS,
    TAG_MEASURES,
    TTFT_BUCKETS,
    rollup_daily,
    rollup_hourly,
    rollup_narrow_daily,
    rollup_narrow_hourly,
    rollup_sessions_daily,
    rollup_state,
    rollup_tags_daily,
    rollup_tags_hourly,
)

ROLLUP_TABLES = (
    rollup_hourly,
    rollup_narrow_hourly,
    rollup_narrow_daily,
    rollup_daily,
    rollup_tags_hourly,
    rollup_tags_daily,
    rollup_sessions_daily,
)
# Components of ``cost_breakdown`` (nano-dollars) with a column of their own;
# anything else lands in ``cost_other_nanousd`` so the components always sum to the total.
COMPONENTS: dict[str, str] = {
    "input": "cost_input_nanousd",
    "output": "cost_output_nanousd",
    "cache_write_5m": "cost_cache_write_5m_nanousd",
    "cache_write_1h": "cost_cache_write_1h_nanousd",
    "cache_read": "cost_cache_read_nanousd",
    "web_search": "cost_web_search_nanousd",
}
LONG_CONTEXT_TOKENS = 200_000

Key = tuple[Any, ...]
# A ``daily_through`` mark past every hour: the daily rollups hold everything (a
# ``rollup_state`` table without its row is written and read as before the mark).
ALWAYS = 2**62


# Upper bounds of histogram buckets 0..N-2 (the last bucket is open): bucket i holds
# [BOUNDS[i-1], BOUNDS[i]); percentiles are read back with the same bounds.
BOUNDS: tuple[float, ...] = tuple(HIST_BASE_MS * HIST_RATIO**k for k in range(HIST_BUCKETS - 1))

# Positions in a measure vector (one int per name in MEASURES, in that order).
_AT = {name: i for i, name in enumerate(MEASURES)}
_CALLS, _ERRORS, _UNPRICED = _AT["calls"], _AT["errors"], _AT["unpriced_calls"]
_COST, _SAVINGS, _OTHER = (
    _AT["cost_nanousd"],
    _AT["cache_savings_nanousd"],
    _AT["cost_other_nanousd"],
)
_TOKENS: tuple[tuple[str, int], ...] = tuple(
    (name, _AT[name])
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_5m_input_tokens",
        "cache_creation_1h_input_tokens",
        "web_search_requests",
        "web_fetch_requests",
        "thinking_tokens",
    )
)
_PARTS: tuple[tuple[str, int], ...] = tuple((name, _AT[col]) for name, col in COMPONENTS.items())
_TIMINGS = (
    ("latency_ms", _AT["latency_count"], _AT["latency_sum_ms"], _AT[LATENCY_BUCKETS[0]]),
    ("ttft_ms", _AT["ttft_count"], _AT["ttft_sum_ms"], _AT[TTFT_BUCKETS[0]]),
)
# Session vectors: SESSION_MEASURES, then first_at and last_at (not additive: min / max).
SESSION_COLUMNS: tuple[str, ...] = (*SESSION_MEASURES, "first_at", "last_at")
_S_FROM: tuple[tuple[int, int], ...] = tuple(
    (i, _AT[name]) for i, name in enumerate(SESSION_MEASURES) if name in _AT
)
_S_CREATION = SESSION_MEASURES.index("cache_creation_input_tokens")
_S_FIRST, _S_LAST = len(SESSION_MEASURES), len(SESSION_MEASURES) + 1
_C5M, _C1H = _AT["cache_creation_5m_input_tokens"], _AT["cache_creation_1h_input_tokens"]

# One call as the writer folds it: its ``calls`` values (``CALL_COLUMNS`` order, times
# in microseconds), its cost breakdown and its tags, both as objects.
Folded = tuple[list[Any], Any, Any]


def _loads(value: Any) -> Any:
    if value is None or value == "":
        return None
    return orjson.loads(value) if isinstance(value, str | bytes) else value


# Positions in a ``calls`` values list (``CALL_COLUMNS`` order).
_C = {name: i for i, name in enumerate(CALL_COLUMNS)}
_V_AT, _V_STATUS, _V_ERROR = _C["created_at"], _C["status_code"], _C["error_type"]
_V_COST, _V_BILLABLE, _V_SAVINGS = _C["cost_nanousd"], _C["billable"], _C["cache_savings_nanousd"]
_V_SESSION = _C["session_id"]
_V_TOKENS: tuple[tuple[int, int], ...] = tuple((_C[name], at) for name, at in _TOKENS)
_V_PROMPT = itemgetter(
    _C["input_tokens"],
    _C["cache_read_input_tokens"],
    _C["cache_creation_5m_input_tokens"],
    _C["cache_creation_1h_input_tokens"],
)
_V_TIMINGS = tuple((_C[name], count, total, first) for name, count, total, first in _TIMINGS)
# The dimensions of HOURLY_DIMS as stored in ``calls`` (all but the context window).
_V_DIMS = itemgetter(*(_C[d] for d in HOURLY_DIMS[:-1]))
_STATUS_DIM = HOURLY_DIMS.index("status_code")
assert HOURLY_DIMS[-1] == "context_window"


def _add_measures(entry: list[int], v: list[Any], breakdown: Any) -> None:
    """Add the measures of the call whose ``calls`` values are ``v`` to ``entry``."""
    entry[_CALLS] += 1
    status = v[_V_STATUS]
    if (status is not None and status >= 400) or v[_V_ERROR] is not None:
        entry[_ERRORS] += 1
    cost = v[_V_COST]
    if cost is None:
        billable = v[_V_BILLABLE]
        if billable is None or billable:  # None: the column was not read
            entry[_UNPRICED] += 1
        cost = 0
    for i, at in _V_TOKENS:
        value = v[i]
        if value:
            entry[at] += value
    known = 0
    if isinstance(breakdown, dict):
        for name, at in _PARTS:
            value = breakdown.get(name)
            if value and type(value) is int:  # not bool, not float
                entry[at] += value
                known += value
    entry[_COST] += cost
    # The components always sum to the total: whatever has no column of its own.
    entry[_OTHER] += cost - known
    savings = v[_V_SAVINGS]
    if savings:
        entry[_SAVINGS] += savings
    for i, count, total, first_bucket in _V_TIMINGS:
        value = v[i]
        if value is not None and value >= 0:
            entry[count] += 1
            entry[total] += round(value)
            entry[first_bucket + bisect_right(BOUNDS, value)] += 1


def _long_context(v: list[Any]) -> bool:
    """Whether the call's prompt was over 200K tokens (its context-window dimension)."""
    prompt: int = sum(filter(None, _V_PROMPT(v)))
    return prompt > LONG_CONTEXT_TOKENS


def _dims(raw: tuple[Any, ...], long_context: bool) -> tuple[Any, ...]:
    """The rollup dimensions in HOURLY_DIMS order (``''`` / ``0`` when missing) from the
    stored values of all but the last, and whether the prompt was over 200K tokens."""
    dims: list[Any] = [d or "" for d in raw]
    dims[_STATUS_DIM] = int(raw[_STATUS_DIM] or 0)
    dims.append("200k-1M" if long_context else "0-200k")
    return tuple(dims)


def call_item(record: CallRecord) -> Folded:
    """A record as the writer hands calls over: insert parameters straight from the
    record, and the breakdown and tags as objects (the breakdown's column is filled
    from the object at insert, by :func:`~spendgate.storage.calls.fill_breakdowns`)."""
    return record_values(record), record.cost_breakdown, record.attribution.tags


def parsed_row(row: Mapping[str, Any]) -> Folded:
    """A ``calls`` row as the writer hands calls over: its values, its cost breakdown
    and its tags, parsed."""
    return row_values(row), _loads(row.get("cost_breakdown")), _loads(row.get("tags"))


_ZEROS = [0] * len(MEASURES)
_MODEL_AT, _TEAM_AT = 1 + HOURLY_DIMS.index("model"), 1 + HOURLY_DIMS.index("team")
_TAG_PICK = tuple(1 + HOURLY_DIMS.index(d) for d in TAG_DIMS if d != "tag")
_SESSION_PICK = tuple(1 + HOURLY_DIMS.index(d) for d in SESSION_DIMS if d != "session_id")
_DAILY_PICK = tuple(1 + HOURLY_DIMS.index(d) for d in DAILY_DIMS)
_TAG_AT = tuple(_AT[name] for name in TAG_MEASURES)
assert TAG_DIMS[0] == "tag" and SESSION_DIMS[0] == "session_id"
# A group vector: MEASURES, then the first and last call time (min / max).
_G_FIRST, _G_LAST = len(MEASURES), len(MEASURES) + 1
_NO_TAGS: frozenset[str] = frozenset()


def _fold(target: dict[Key, list[int]], key: Key, vec: list[int]) -> None:
    entry = target.get(key)
    if entry is None:
        target[key] = list(vec)
    else:
        target[key] = list(map(add, entry, vec))


@dataclass
class Aggregates:
    """Rollup rows keyed by (time bucket, dims...), ready to upsert or to read.

    ``hourly`` and ``tags`` map keys to measure vectors (MEASURES order);
    ``sessions`` to session vectors (SESSION_COLUMNS order). Calls are first
    folded into one vector per (hour, dimensions, tags, session), then spread
    over the three by :meth:`settle` (called by everything that reads them), so
    each call's measures are added once, not once per table.
    """

    hourly: dict[Key, list[int]] = field(default_factory=dict)
    tags: dict[Key, list[int]] = field(default_factory=dict)
    sessions: dict[Key, list[int]] = field(default_factory=dict)
    _groups: dict[Key, list[int]] = field(default_factory=dict, repr=False, compare=False)

    def add_row(self, row: Mapping[str, Any]) -> None:
        """Fold one ``calls`` row in."""
        self.add_values(*parsed_row(row))

    def add_values(self, v: list[Any], breakdown: Any, tags: Any) -> None:
        """Fold one call in: its ``calls`` values (``CALL_COLUMNS`` order, times in
        microseconds), its cost breakdown and its tags as objects."""
        at = v[_V_AT]
        tagset = (
            frozenset([t[:200] for t in tags if isinstance(t, str) and t]) if tags else _NO_TAGS
        )
        # Grouped by the stored values; ``_dims`` normalises them once per group.
        key = (at - at % HOUR_US, _V_DIMS(v), _long_context(v), tagset, v[_V_SESSION] or "")
        entry = self._groups.get(key)
        if entry is None:
            entry = self._groups[key] = [*_ZEROS, at, at]
        elif at < entry[_G_FIRST]:
            entry[_G_FIRST] = at
        elif at > entry[_G_LAST]:
            entry[_G_LAST] = at
        _add_measures(entry, v, breakdown)

    def add_all(self, items: Iterable[Folded]) -> None:
        """Fold calls in, each as :func:`call_item` gives it."""
        add = self.add_values
        for values, breakdown, tags in items:
            add(values, breakdown, tags)

    def settle(self) -> None:
        """Spread the calls folded so far over the hourly, tag and session rows."""
        groups, self._groups = self._groups, {}
        hourly, found, sessions = self.hourly, self.tags, self.sessions
        for (hour, raw, long_context, tagset, session), vec in groups.items():
            key = (hour, *_dims(raw, long_context))
            measures = vec[:_G_FIRST]
            _fold(hourly, key, measures)
            if tagset:
                base = tuple(key[i] for i in _TAG_PICK)
                for tag in tagset:
                    _fold(found, (hour, tag, *base), measures)
            if session:
                skey = (hour - hour % DAY_US, session, *(key[i] for i in _SESSION_PICK))
                svec = [0] * len(SESSION_COLUMNS)
                for si, mi in _S_FROM:
                    svec[si] = vec[mi]
                svec[_S_CREATION] += vec[_C5M] + vec[_C1H]
                entry = sessions.get(skey)
                if entry is None:
                    svec[_S_FIRST], svec[_S_LAST] = vec[_G_FIRST], vec[_G_LAST]
                    sessions[skey] = svec
                else:
                    for i in range(_S_FIRST):
                        entry[i] += svec[i]
                    entry[_S_FIRST] = min(entry[_S_FIRST], vec[_G_FIRST])
                    entry[_S_LAST] = max(entry[_S_LAST], vec[_G_LAST])

    def narrow(self, before: int = ALWAYS) -> tuple[dict[Key, list[int]], dict[Key, list[int]]]:
        """The model x team rollups (hourly, daily), folded from the hourly entries;
        the daily one only from the hours before ``before``."""
        self.settle()
        hourly: dict[Key, list[int]] = {}
        for key, vec in self.hourly.items():
            _fold(hourly, (key[0], key[_MODEL_AT], key[_TEAM_AT]), vec)
        daily: dict[Key, list[int]] = {}
        for key, vec in hourly.items():
            if key[0] < before:
                _fold(daily, (key[0] - key[0] % DAY_US, key[1], key[2]), vec)
        return hourly, daily

    def daily(self, before: int = ALWAYS) -> tuple[dict[Key, list[int]], dict[Key, list[int]]]:
        """The daily attribution and tag rollups, folded from the hourly entries of
        the hours before ``before``."""
        self.settle()
        daily: dict[Key, list[int]] = {}
        for key, vec in self.hourly.items():
            if key[0] < before:
                _fold(daily, (key[0] - key[0] % DAY_US, *(key[i] for i in _DAILY_PICK)), vec)
        tags: dict[Key, list[int]] = {}
        for key, vec in self.tags.items():
            if key[0] < before:
                slim = [vec[i] for i in _TAG_AT]
                _fold(tags, (key[0] - key[0] % DAY_US, *key[1:]), slim)
        return daily, tags

    def subtract(self, other: Aggregates) -> None:
        """Take ``other``'s rows out of these (additive measures; first/last are kept)."""
        self.settle()
        other.settle()
        for mine, theirs in ((self.hourly, other.hourly), (self.tags, other.tags)):
            for key, vec in theirs.items():
                _fold(mine, key, [-v for v in vec])
        for key, svec in other.sessions.items():
            negated = [-v for v in svec[:_S_FIRST]] + svec[_S_FIRST:]
            entry = self.sessions.get(key)
            if entry is None:
                self.sessions[key] = negated
            else:
                additive = list(map(add, entry[:_S_FIRST], negated[:_S_FIRST]))
                self.sessions[key] = additive + entry[_S_FIRST:]


def aggregate(rows: Iterable[Mapping[str, Any]]) -> Aggregates:
    """Rollup rows for ``rows`` (``calls`` rows as the store writes them)."""
    agg = Aggregates()
    for row in rows:
        agg.add_row(row)
    agg.settle()
    return agg


@lru_cache(maxsize=32)
def _upsert_sql(
    dialect: str, table: str, time_col: str, dims: tuple[str, ...], measures: tuple[str, ...]
) -> str:
    """``INSERT ... ON CONFLICT (time, dims) DO UPDATE SET m = m + excluded.m`` (SQLite and PG).

    On SQLite one row of parameters per rollup row (``executemany``); on PostgreSQL
    the batch's rows as one JSON array of arrays, unpacked by the server, so a batch
    is one statement per table with one parameter.
    """
    columns = (time_col, *dims, *measures)
    least, greatest = ("LEAST", "GREATEST") if dialect == "postgresql" else ("min", "max")
    sets = []
    for m in measures:
        if m == "first_at":
            sets.append(f"first_at = {least}({table}.first_at, excluded.first_at)")
        elif m == "last_at":
            sets.append(f"last_at = {greatest}({table}.last_at, excluded.last_at)")
        else:
            sets.append(f"{m} = {table}.{m} + excluded.{m}")
    if dialect == "postgresql":
        # ->> gives each value as text; numbers are cast from that text, so a bigint
        # never passes through a float.
        fields = ", ".join(
            f"r->>{i}" if _PG_TYPES.get(c) == "text" else f"(r->>{i})::{_PG_TYPES.get(c, 'bigint')}"
            for i, c in enumerate(columns)
        )
        source = (
            f"SELECT {fields} FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(r, n) "
            "ORDER BY n"
        )
    else:
        source = f"VALUES ({', '.join(['?'] * len(columns))})"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) {source} "
        f"ON CONFLICT ({', '.join((time_col, *dims))}) DO UPDATE SET {', '.join(sets)}"
    )


# Dimension columns are text except the status code; the time and measures are bigint.
_PG_TYPES: dict[str, str] = {
    **{d: "text" for d in (*HOURLY_DIMS, *TAG_DIMS, *SESSION_DIMS)},
    "status_code": "integer",
}


def _upsert(
    conn: Connection,
    table: Table,
    time_col: str,
    dims: tuple[str, ...],
    measures: tuple[str, ...],
    entries: dict[Key, list[int]],
) -> None:
    if not entries:
        return
    # Plain DBAPI calls: SQLAlchemy's per-row parameter processing for ~80 columns
    # would cost more than the upsert itself. Table and column names are our own
    # constants, values are bound parameters.
    dialect = conn.dialect.name
    sql = _upsert_sql(dialect, table.name, time_col, dims, measures)
    # A stable order keeps concurrent writers locking rows in the same order (no deadlocks).
    params = [(*key, *entries[key]) for key in sorted(entries)]
    if dialect == "postgresql":
        # One statement per table and batch: a pipelined executemany still costs the
        # server a statement per rollup row, several per call. Keys are unique within
        # a batch (folded above), so no row is updated twice by one statement. One
        # parameter: psycopg parses a statement's placeholders anew each time it has
        # more than 50, and an array literal per column cost more than the JSON.
        conn.exec_driver_sql(sql, (orjson.dumps(params).decode(),))
    else:
        conn.exec_driver_sql(sql, params)


def write_aggregates(conn: Connection, agg: Aggregates) -> None:
    """Add ``agg`` to the rollup tables (in the caller's transaction).

    Hours before the daily rollups' mark go into them too; later hours only into the
    hourly rollups, from which :func:`fold_daily` moves them once they have closed.
    """
    agg.settle()
    # The hourly upsert comes first: on SQLite it takes the write lock, so the mark
    # read next cannot move before this transaction commits.
    _upsert(conn, rollup_hourly, "hour", HOURLY_DIMS, MEASURES, agg.hourly)
    before = daily_through(conn, share=True)
    narrow_hourly, narrow_daily = agg.narrow(before)
    _upsert(conn, rollup_narrow_hourly, "hour", NARROW_DIMS, MEASURES, narrow_hourly)
    _upsert(conn, rollup_narrow_daily, "day", NARROW_DIMS, MEASURES, narrow_daily)
    tags = {key: [vec[i] for i in _TAG_AT] for key, vec in agg.tags.items()}
    _upsert(conn, rollup_tags_hourly, "hour", TAG_DIMS, TAG_MEASURES, tags)
    daily, tags_daily = agg.daily(before)
    _upsert(conn, rollup_daily, "day", DAILY_DIMS, MEASURES, daily)
    _upsert(conn, rollup_tags_daily, "day", TAG_DIMS, TAG_MEASURES, tags_daily)
    _upsert(conn, rollup_sessions_daily, "day", SESSION_DIMS, SESSION_COLUMNS, agg.sessions)


def daily_through(conn: Connection, *, share: bool = False) -> int:
    """The daily rollups' mark (``rollup_state``): every hour before it is in them, no
    hour from it on is; :data:`ALWAYS` when the database has no mark.

    With ``share`` (inside a write transaction) PostgreSQL share-locks the row, so a
    concurrent :func:`fold_daily` waits for this transaction and then sees its rows;
    on SQLite the write lock the transaction already holds does the same.
    """
    # Read once per writer batch: through the driver's own cursor, which costs a
    # tenth of a SQLAlchemy statement's execution context and result (~150 µs a
    # batch, 3-4 µs a call at the batches a 0.02 s flush gathers).
    sql = _MARK_SQL
    if share and conn.dialect.name == "postgresql":
        sql += " FOR SHARE"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return ALWAYS if row is None or row[0] is None else int(row[0])


_MARK_SQL = f"SELECT daily_through FROM {rollup_state.name} WHERE id = 1"


# Each daily rollup and the hourly rollup it is folded from, with the columns they share.
_DAILY_FROM: tuple[tuple[Table, Table, tuple[str, ...], tuple[str, ...]], ...] = (
    (rollup_daily, rollup_hourly, DAILY_DIMS, MEASURES),
    (rollup_narrow_daily, rollup_narrow_hourly, NARROW_DIMS, MEASURES),
    (rollup_tags_daily, rollup_tags_hourly, TAG_DIMS, TAG_MEASURES),
)


def fold_hours(conn: Connection, since: int, until: int | None) -> None:
    """Add the hourly rollups of ``[since, until)`` to the daily ones, in SQL."""
    day = f"(hour - hour % {DAY_US})"
    for daily, hourly, dims, measures in _DAILY_FROM:
        bounds = "hour >= :since" + ("" if until is None else " AND hour < :until")
        sets = ", ".join(f"{m} = {daily.name}.{m} + excluded.{m}" for m in measures)
        # Table and column names are our own constants; the bounds are parameters.
        conn.execute(
            text(
                f"INSERT INTO {daily.name} (day, {', '.join(dims)}, {', '.join(measures)}) "
                f"SELECT {day}, {', '.join(dims)}, {', '.join(f'SUM({m})' for m in measures)} "
                f"FROM {hourly.name} WHERE {bounds} GROUP BY {day}, {', '.join(dims)} "
                f"ON CONFLICT (day, {', '.join(dims)}) DO UPDATE SET {sets}"
            ),
            {"since": since, "until": until},
        )


def fold_daily(conn: Connection, through: int) -> int:
    """Move the daily rollups' mark up to ``through`` (an hour start), folding the hours
    it passes from the hourly rollups; returns the mark. Its own transaction.

    The state is locked before the mark is read, so every writer that read the old
    mark has committed (its hours are folded) and none reads it again until the fold
    commits. On PostgreSQL that is ``LOCK TABLE ... IN EXCLUSIVE MODE``: it conflicts
    with the writers' ``FOR SHARE`` and, unlike a row lock, queues ahead of writers
    that come later, so a steady overlap of writers cannot starve the fold (they wait
    for it, about as long as one fold takes). It gives up after ``FOLD_LOCK_TIMEOUT``
    and the caller tries again later. On SQLite a write that changes nothing takes
    the database's write lock.
    """
    state = rollup_state.c
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{FOLD_LOCK_TIMEOUT}s'")
        conn.exec_driver_sql("LOCK TABLE rollup_state IN EXCLUSIVE MODE")
    else:
        conn.execute(
            update(rollup_state).where(state.id == 1).values(daily_through=state.daily_through)
        )
    current = daily_through(conn)
    if current == ALWAYS or through <= current:
        return current
    fold_hours(conn, current, through)
    conn.execute(update(rollup_state).where(state.id == 1).values(daily_through=through))
    return through


# Seconds a fold waits for the writers in flight on PostgreSQL before it gives up.
FOLD_LOCK_TIMEOUT = 10


def apply_rollups(conn: Connection, inserted: Iterable[Folded]) -> None:
    """Fold calls into the rollups (in the caller's transaction)."""
    agg = Aggregates()
    agg.add_all(inserted)
    write_aggregates(conn, agg)


def rebuild_rollups(engine: Engine, chunks: Iterable[list[dict[str, Any]]]) -> int:
    """Empty the rollups and fold ``chunks`` of calls rows back in; returns the rows folded.

    For databases that held calls before the rollups existed, or after raw calls
    were edited by hand. Run it while no writer is recording: calls written
    during a rebuild could be counted twice.
    """
    with engine.begin() as conn:
        for table in ROLLUP_TABLES:
            conn.execute(table.delete())
    folded = 0
    for rows in chunks:
        with engine.begin() as conn:
            apply_rollups(conn, [parsed_row(row) for row in rows])
        folded += len(rows)
    return folded

"""Folding call rows into the rollup tables, inside the writer's insert transaction.

:func:`aggregate` turns ``calls`` rows into additive rollup rows (also used by
analytics for the partial hours at the edges of a range); :func:`apply_rollups`
is the ``Store.after_insert_hooks`` entry that upserts them. The store only
hands the hook rows that were really inserted, so nothing is counted twice.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from operator import add
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table

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
    rollup_tags_daily,
    rollup_tags_hourly,
)
from spendgate.storage.schema import to_micros

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
# Position in MEASURES -> position in a session vector (both cache writes add to creation).
_S_OF: dict[int, int] = {mi: si for si, mi in _S_FROM} | {_C5M: _S_CREATION, _C1H: _S_CREATION}

Sparse = list[tuple[int, int]]  # (position in MEASURES, value), non-zero values only

# Rows handed over by ``Store.insert_calls`` also carry the cost breakdown as the dict
# it was serialised from, under this key (not a column), so it is not parsed back.
PARSED_BREAKDOWN = "_cost_breakdown"
# ... and the tags as the list they were serialised from.
PARSED_TAGS = "_tags"


def histogram_bucket(ms: float) -> int:
    """The histogram bucket a duration in milliseconds falls in."""
    return bisect_right(BOUNDS, ms)


def is_error(row: Mapping[str, Any]) -> bool:
    """The same rule as ``CallFilter(status="error")``."""
    status = row.get("status_code")
    return (status is not None and status >= 400) or row.get("error_type") is not None


def _micros(value: Any) -> int:
    return to_micros(value) if isinstance(value, datetime) else int(value)


def _loads(value: Any) -> Any:
    if value is None or value == "":
        return None
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def sparse_measures(row: Mapping[str, Any]) -> Sparse:
    """The additive measures one call contributes, as (position, value) pairs."""
    get = row.get
    cost = get("cost_nanousd")
    status = get("status_code")
    out: Sparse = [(_CALLS, 1)]
    if (status is not None and status >= 400) or get("error_type") is not None:
        out.append((_ERRORS, 1))
    if cost is None:
        if get("billable", True):
            out.append((_UNPRICED, 1))
        cost = 0
    out += [(at, value) for name, at in _TOKENS if (value := get(name))]
    known = 0
    breakdown = get(PARSED_BREAKDOWN) or _loads(get("cost_breakdown"))
    if isinstance(breakdown, dict):
        for name, at in _PARTS:
            value = breakdown.get(name)
            if value and type(value) is int:  # not bool, not float
                out.append((at, value))
                known += value
    if cost:
        out.append((_COST, cost))
    if cost != known:
        out.append((_OTHER, cost - known))
    savings = get("cache_savings_nanousd")
    if savings:
        out.append((_SAVINGS, savings))
    for name, count, total, first_bucket in _TIMINGS:
        value = get(name)
        if value is not None and value >= 0:
            out += (
                (count, 1),
                (total, round(value)),
                (first_bucket + bisect_right(BOUNDS, value), 1),
            )
    return out


def measures_of(row: Mapping[str, Any]) -> dict[str, int]:
    """The additive measures one call contributes (zeros left out: most are zero)."""
    out: dict[str, int] = {}
    for at, value in sparse_measures(row):
        name = MEASURES[at]
        out[name] = out.get(name, 0) + value
    return {name: value for name, value in out.items() if value}


def _context_window(row: Mapping[str, Any]) -> str:
    prompt = (
        (row.get("input_tokens") or 0)
        + (row.get("cache_read_input_tokens") or 0)
        + (row.get("cache_creation_5m_input_tokens") or 0)
        + (row.get("cache_creation_1h_input_tokens") or 0)
    )
    return "200k-1M" if prompt > LONG_CONTEXT_TOKENS else "0-200k"


def _dim_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The rollup dimensions of one call in HOURLY_DIMS order (``''`` / ``0`` when missing)."""
    get = row.get
    return (
        get("model") or "",
        get("key_id") or "",
        get("key_label") or "",
        get("team") or "",
        get("user_name") or "",
        get("project") or "",
        get("endpoint") or "",
        get("source") or "",
        int(get("status_code") or 0),
        get("error_type") or "",
        get("service_tier") or "",
        get("inference_geo") or "",
        get("speed") or "",
        _context_window(row),
    )


def hourly_dims(row: Mapping[str, Any]) -> dict[str, Any]:
    """The rollup dimensions of one call (``''`` / ``0`` for missing values)."""
    return dict(zip(HOURLY_DIMS, _dim_values(row), strict=True))


def vector(measures: Mapping[str, int]) -> list[int]:
    """A measure vector (MEASURES order) from named measures."""
    return [int(measures.get(name, 0)) for name in MEASURES]


def named(vec: list[int]) -> dict[str, int]:
    """Named measures from a measure vector."""
    return dict(zip(MEASURES, vec, strict=True))


_ZEROS = [0] * len(MEASURES)
_MODEL_AT, _TEAM_AT = 1 + HOURLY_DIMS.index("model"), 1 + HOURLY_DIMS.index("team")
_TAG_PICK = tuple(1 + HOURLY_DIMS.index(d) for d in TAG_DIMS if d != "tag")
_SESSION_PICK = tuple(1 + HOURLY_DIMS.index(d) for d in SESSION_DIMS if d != "session_id")
_DAILY_PICK = tuple(1 + HOURLY_DIMS.index(d) for d in DAILY_DIMS)
_TAG_AT = tuple(_AT[name] for name in TAG_MEASURES)
assert TAG_DIMS[0] == "tag" and SESSION_DIMS[0] == "session_id"


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
    ``sessions`` to session vectors (SESSION_COLUMNS order).
    """

    hourly: dict[Key, list[int]] = field(default_factory=dict)
    tags: dict[Key, list[int]] = field(default_factory=dict)
    sessions: dict[Key, list[int]] = field(default_factory=dict)

    def narrow(self) -> tuple[dict[Key, list[int]], dict[Key, list[int]]]:
        """The model x team rollups (hourly, daily), folded from the hourly entries."""
        hourly: dict[Key, list[int]] = {}
        for key, vec in self.hourly.items():
            _fold(hourly, (key[0], key[_MODEL_AT], key[_TEAM_AT]), vec)
        daily: dict[Key, list[int]] = {}
        for key, vec in hourly.items():
            _fold(daily, (key[0] - key[0] % DAY_US, key[1], key[2]), vec)
        return hourly, daily

    def daily(self) -> tuple[dict[Key, list[int]], dict[Key, list[int]]]:
        """The daily attribution and tag rollups, folded from the hourly entries."""
        daily: dict[Key, list[int]] = {}
        for key, vec in self.hourly.items():
            _fold(daily, (key[0] - key[0] % DAY_US, *(key[i] for i in _DAILY_PICK)), vec)
        tags: dict[Key, list[int]] = {}
        for key, vec in self.tags.items():
            slim = [vec[i] for i in _TAG_AT]
            _fold(tags, (key[0] - key[0] % DAY_US, *key[1:]), slim)
        return daily, tags

    def add_row(self, row: Mapping[str, Any]) -> None:
        """Fold one ``calls`` row in."""
        at = _micros(row["created_at"])
        hour = at - at % HOUR_US
        key = (hour, *_dim_values(row))
        sparse = sparse_measures(row)
        hourly = self.hourly
        entry = hourly.get(key)
        if entry is None:
            entry = hourly[key] = list(_ZEROS)
        for i, value in sparse:
            entry[i] += value
        tags = row.get(PARSED_TAGS)
        if tags is None:
            tags = _loads(row.get("tags"))
        if tags:
            base = tuple(key[i] for i in _TAG_PICK)
            found = self.tags
            for tag in {t[:200] for t in tags if isinstance(t, str) and t}:
                tkey = (hour, tag, *base)
                tentry = found.get(tkey)
                if tentry is None:
                    tentry = found[tkey] = list(_ZEROS)
                for i, value in sparse:
                    tentry[i] += value
        session = row.get("session_id")
        if session:
            skey = (at - at % DAY_US, session, *(key[i] for i in _SESSION_PICK))
            sentry = self.sessions.get(skey)
            if sentry is None:
                sentry = self.sessions[skey] = [0] * len(SESSION_MEASURES) + [at, at]
            else:
                sentry[_S_FIRST] = min(sentry[_S_FIRST], at)
                sentry[_S_LAST] = max(sentry[_S_LAST], at)
            # The session measures are a few of the call's sparse ones (creation summed).
            for i, value in sparse:
                si = _S_OF.get(i)
                if si is not None:
                    sentry[si] += value

    def subtract(self, other: Aggregates) -> None:
        """Take ``other``'s rows out of these (additive measures; first/last are kept)."""
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
    return agg


@lru_cache(maxsize=32)
def _upsert_sql(
    dialect: str, table: str, time_col: str, dims: tuple[str, ...], measures: tuple[str, ...]
) -> str:
    """``INSERT ... ON CONFLICT (time, dims) DO UPDATE SET m = m + excluded.m`` (SQLite and PG).

    On SQLite one row of parameters per rollup row (``executemany``); on PostgreSQL
    one array per column, unnested, so a batch is one statement per table.
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
        arrays = ", ".join(f"%s::{_PG_ARRAY_TYPES.get(c, 'bigint[]')}" for c in columns)
        source = f"SELECT * FROM unnest({arrays})"
    else:
        source = f"VALUES ({', '.join(['?'] * len(columns))})"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) {source} "
        f"ON CONFLICT ({', '.join((time_col, *dims))}) DO UPDATE SET {', '.join(sets)}"
    )


# Dimension columns are text except the status code; the time and measures are bigint.
_PG_ARRAY_TYPES: dict[str, str] = {
    **{d: "text[]" for d in (*HOURLY_DIMS, *TAG_DIMS, *SESSION_DIMS)},
    "status_code": "integer[]",
}


# Arrays go to PostgreSQL as array literals: adapting a Python list of ints costs
# psycopg several times more than joining their decimal strings.
def _pg_int_array(values: tuple[int, ...]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _pg_text_array(values: tuple[str, ...]) -> str:
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


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
        # a batch (folded above), so no row is updated twice by one statement.
        names = (time_col, *dims, *measures)
        arrays = tuple(
            _pg_text_array(col) if _PG_ARRAY_TYPES.get(name) == "text[]" else _pg_int_array(col)
            for name, col in zip(names, zip(*params, strict=True), strict=True)
        )
        conn.exec_driver_sql(sql, arrays)
    else:
        conn.exec_driver_sql(sql, params)


def write_aggregates(conn: Connection, agg: Aggregates) -> None:
    """Add ``agg`` to the rollup tables (in the caller's transaction)."""
    _upsert(conn, rollup_hourly, "hour", HOURLY_DIMS, MEASURES, agg.hourly)
    narrow_hourly, narrow_daily = agg.narrow()
    _upsert(conn, rollup_narrow_hourly, "hour", NARROW_DIMS, MEASURES, narrow_hourly)
    _upsert(conn, rollup_narrow_daily, "day", NARROW_DIMS, MEASURES, narrow_daily)
    tags = {key: [vec[i] for i in _TAG_AT] for key, vec in agg.tags.items()}
    _upsert(conn, rollup_tags_hourly, "hour", TAG_DIMS, TAG_MEASURES, tags)
    daily, tags_daily = agg.daily()
    _upsert(conn, rollup_daily, "day", DAILY_DIMS, MEASURES, daily)
    _upsert(conn, rollup_tags_daily, "day", TAG_DIMS, TAG_MEASURES, tags_daily)
    _upsert(conn, rollup_sessions_daily, "day", SESSION_DIMS, SESSION_COLUMNS, agg.sessions)


def apply_rollups(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """``Store.after_insert_hooks`` entry: fold newly inserted calls into the rollups."""
    write_aggregates(conn, aggregate(rows))


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
            apply_rollups(conn, rows)
        folded += len(rows)
    return folded

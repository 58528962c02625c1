"""Folding call rows into the rollup tables, inside the writer's insert transaction.

:func:`aggregate` turns ``calls`` rows into additive rollup rows (also used by
analytics for the partial hours at the edges of a range); :func:`apply_rollups`
is the ``Store.after_insert_hooks`` entry that upserts them. The store only
hands the hook rows that were really inserted, so nothing is counted twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table

from spendgate.storage.rollups_schema import (
    DAY_US,
    HIST_BASE_MS,
    HIST_BUCKETS,
    HOUR_US,
    HOURLY_DIMS,
    LATENCY_BUCKETS,
    MEASURES,
    NARROW_DIMS,
    SESSION_DIMS,
    SESSION_MEASURES,
    TAG_DIMS,
    TTFT_BUCKETS,
    rollup_hourly,
    rollup_narrow_daily,
    rollup_narrow_hourly,
    rollup_sessions_daily,
    rollup_tags_hourly,
)
from spendgate.storage.schema import to_micros

ROLLUP_TABLES = (
    rollup_hourly,
    rollup_narrow_hourly,
    rollup_narrow_daily,
    rollup_tags_hourly,
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


def histogram_bucket(ms: float) -> int:
    """The histogram bucket a duration in milliseconds falls in."""
    if ms < HIST_BASE_MS:
        return 0
    index = 1 + math.floor(2 * math.log2(ms / HIST_BASE_MS))
    return min(max(index, 1), HIST_BUCKETS - 1)


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


def _components(row: Mapping[str, Any], total: int) -> dict[str, int]:
    out = dict.fromkeys(COMPONENTS.values(), 0)
    breakdown = _loads(row.get("cost_breakdown"))
    known = 0
    if isinstance(breakdown, dict):
        for name, column in COMPONENTS.items():
            value = breakdown.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                out[column] = value
                known += value
    out["cost_other_nanousd"] = total - known
    return out


def measures_of(row: Mapping[str, Any]) -> dict[str, int]:
    """The additive measures one call contributes (zeros left out: most are zero)."""
    cost = row.get("cost_nanousd")
    m: dict[str, int] = {}
    m["calls"] = 1
    m["errors"] = int(is_error(row))
    m["unpriced_calls"] = int(cost is None and bool(row.get("billable", True)))
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_5m_input_tokens",
        "cache_creation_1h_input_tokens",
        "web_search_requests",
        "web_fetch_requests",
        "thinking_tokens",
    ):
        m[name] = int(row.get(name) or 0)
    m["cost_nanousd"] = int(cost or 0)
    m["cache_savings_nanousd"] = int(row.get("cache_savings_nanousd") or 0)
    m.update(_components(row, m["cost_nanousd"]))
    for value, count, total, buckets in (
        (row.get("latency_ms"), "latency_count", "latency_sum_ms", LATENCY_BUCKETS),
        (row.get("ttft_ms"), "ttft_count", "ttft_sum_ms", TTFT_BUCKETS),
    ):
        if value is not None and value >= 0:
            m[count] = 1
            m[total] = round(value)
            m[buckets[histogram_bucket(float(value))]] = 1
    return {name: value for name, value in m.items() if value}


def _context_window(row: Mapping[str, Any]) -> str:
    prompt = sum(
        int(row.get(n) or 0)
        for n in (
            "input_tokens",
            "cache_read_input_tokens",
            "cache_creation_5m_input_tokens",
            "cache_creation_1h_input_tokens",
        )
    )
    return "200k-1M" if prompt > LONG_CONTEXT_TOKENS else "0-200k"


def hourly_dims(row: Mapping[str, Any]) -> dict[str, Any]:
    """The rollup dimensions of one call (``''`` / ``0`` for missing values)."""
    return {
        "model": row.get("model") or "",
        "key_id": row.get("key_id") or "",
        "key_label": row.get("key_label") or "",
        "team": row.get("team") or "",
        "user_name": row.get("user_name") or "",
        "project": row.get("project") or "",
        "endpoint": row.get("endpoint") or "",
        "source": row.get("source") or "",
        "status_code": int(row.get("status_code") or 0),
        "error_type": row.get("error_type") or "",
        "service_tier": row.get("service_tier") or "",
        "inference_geo": row.get("inference_geo") or "",
        "speed": row.get("speed") or "",
        "context_window": _context_window(row),
    }


def _add(target: dict[str, int], source: Mapping[str, int]) -> None:
    for name, value in source.items():
        target[name] = target.get(name, 0) + value


@dataclass
class Aggregates:
    """Rollup rows keyed by (time bucket, dims...), ready to upsert or to read."""

    hourly: dict[Key, dict[str, int]] = field(default_factory=dict)
    tags: dict[Key, dict[str, int]] = field(default_factory=dict)
    sessions: dict[Key, dict[str, int]] = field(default_factory=dict)

    def narrow(self) -> tuple[dict[Key, dict[str, int]], dict[Key, dict[str, int]]]:
        """The model x team rollups (hourly, daily), folded from the hourly entries."""
        model_at, team_at = 1 + HOURLY_DIMS.index("model"), 1 + HOURLY_DIMS.index("team")
        hourly: dict[Key, dict[str, int]] = {}
        for key, m in self.hourly.items():
            _add(hourly.setdefault((key[0], key[model_at], key[team_at]), {}), m)
        daily: dict[Key, dict[str, int]] = {}
        for key, m in hourly.items():
            _add(daily.setdefault((key[0] - key[0] % DAY_US, *key[1:]), {}), m)
        return hourly, daily

    def add_row(self, row: Mapping[str, Any]) -> None:
        """Fold one ``calls`` row in."""
        at = _micros(row["created_at"])
        hour = at - at % HOUR_US
        dims = hourly_dims(row)
        m = measures_of(row)
        key = (hour, *(dims[d] for d in HOURLY_DIMS))
        _add(self.hourly.setdefault(key, {}), m)
        tags = _loads(row.get("tags")) or []
        for tag in sorted({t for t in tags if isinstance(t, str) and t}):
            tag_dims = {**dims, "tag": tag[:200]}
            _add(self.tags.setdefault((hour, *(tag_dims[d] for d in TAG_DIMS)), {}), m)
        session = row.get("session_id")
        if session:
            sdims = {**dims, "session_id": session}
            skey = (at - at % DAY_US, *(sdims[d] for d in SESSION_DIMS))
            entry = self.sessions.setdefault(skey, {"first_at": at, "last_at": at})
            entry["first_at"] = min(entry["first_at"], at)
            entry["last_at"] = max(entry["last_at"], at)
            creation = m.get("cache_creation_5m_input_tokens", 0) + m.get(
                "cache_creation_1h_input_tokens", 0
            )
            _add(entry, {n: m[n] for n in SESSION_MEASURES if n in m})
            _add(entry, {"cache_creation_input_tokens": creation})


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
    """``INSERT ... ON CONFLICT (time, dims) DO UPDATE SET m = m + excluded.m`` (SQLite and PG)."""
    columns = (time_col, *dims, *measures)
    mark = "%s" if dialect == "postgresql" else "?"
    least, greatest = ("LEAST", "GREATEST") if dialect == "postgresql" else ("min", "max")
    sets = []
    for m in measures:
        if m == "first_at":
            sets.append(f"first_at = {least}({table}.first_at, excluded.first_at)")
        elif m == "last_at":
            sets.append(f"last_at = {greatest}({table}.last_at, excluded.last_at)")
        else:
            sets.append(f"{m} = {table}.{m} + excluded.{m}")
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))}) "
        f"ON CONFLICT ({', '.join((time_col, *dims))}) DO UPDATE SET {', '.join(sets)}"
    )


def _upsert(
    conn: Connection,
    table: Table,
    time_col: str,
    dims: tuple[str, ...],
    measures: tuple[str, ...],
    entries: dict[Key, dict[str, int]],
) -> None:
    if not entries:
        return
    # Plain DBAPI executemany: SQLAlchemy's per-row parameter processing for ~80
    # columns would cost more than the upsert itself. Table and column names are
    # our own constants, values are bound parameters.
    sql = _upsert_sql(conn.dialect.name, table.name, time_col, dims, measures)
    # A stable order keeps concurrent writers locking rows in the same order (no deadlocks).
    params = [(*key, *(entries[key].get(m, 0) for m in measures)) for key in sorted(entries)]
    conn.exec_driver_sql(sql, params)


def write_aggregates(conn: Connection, agg: Aggregates) -> None:
    """Add ``agg`` to the rollup tables (in the caller's transaction)."""
    _upsert(conn, rollup_hourly, "hour", HOURLY_DIMS, MEASURES, agg.hourly)
    narrow_hourly, narrow_daily = agg.narrow()
    _upsert(conn, rollup_narrow_hourly, "hour", NARROW_DIMS, MEASURES, narrow_hourly)
    _upsert(conn, rollup_narrow_daily, "day", NARROW_DIMS, MEASURES, narrow_daily)
    _upsert(conn, rollup_tags_hourly, "hour", TAG_DIMS, MEASURES, agg.tags)
    session_measures = (*SESSION_MEASURES, "first_at", "last_at")
    _upsert(conn, rollup_sessions_daily, "day", SESSION_DIMS, session_measures, agg.sessions)


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

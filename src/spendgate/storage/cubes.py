"""Which rollup answers a question, and how a time range splits over rollups and raw calls.

Each rollup table is a :class:`Cube`: a grain (hour or day), the dimensions and
the measures it keeps. :func:`plan` picks, for a question's dimensions, filters
and measures, the smallest daily cube (for whole UTC days) and the smallest
hourly cube (for the rest); :func:`segments` splits ``[since, until)`` into
daily spans, hourly spans and the partial hours at its edges, which are read
from raw ``calls`` (summed by the database with :data:`SQL_MEASURES` when those
are all that is asked, otherwise folded by the writer's own code).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, func, or_

from spendgate.storage.rollups import LONG_CONTEXT_TOKENS
from spendgate.storage.rollups_schema import (
    DAILY_DIMS,
    DAY_US,
    HOUR_US,
    HOURLY_DIMS,
    MEASURES,
    NARROW_DIMS,
    TAG_DIMS,
    TAG_MEASURES,
    rollup_daily,
    rollup_hourly,
    rollup_narrow_daily,
    rollup_narrow_hourly,
    rollup_tags_daily,
    rollup_tags_hourly,
)
from spendgate.storage.schema import calls, to_micros
from spendgate.storage.store import CallFilter

FILTER_COLUMNS = (
    ("model", "model"),
    ("key_id", "key_id"),
    ("team", "team"),
    ("user", "user_name"),
    ("project", "project"),
    ("endpoint", "endpoint"),
    ("source", "source"),
)


# The calls columns the rollup code reads (the breakdown and tags only when needed).
RAW_COLUMNS = tuple(
    calls.c[name]
    for name in (
        "created_at",
        *(d for d in HOURLY_DIMS if d != "context_window"),
        "billable",
        "cost_nanousd",
        "cache_savings_nanousd",
        "latency_ms",
        "ttft_ms",
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
COMPONENT_MEASURES = frozenset(
    {
        "cost_input_nanousd",
        "cost_output_nanousd",
        "cost_cache_write_5m_nanousd",
        "cost_cache_write_1h_nanousd",
        "cost_cache_read_nanousd",
        "cost_web_search_nanousd",
        "cost_other_nanousd",
    }
)


def raw_dim(col: str) -> Any:
    """A rollup dimension computed from a ``calls`` row, as ``rollups.hourly_dims`` does."""
    c = calls.c
    if col == "status_code":
        return func.coalesce(c.status_code, 0)
    if col == "context_window":
        prompt = (
            c.input_tokens
            + c.cache_read_input_tokens
            + c.cache_creation_5m_input_tokens
            + c.cache_creation_1h_input_tokens
        )
        return case((prompt > LONG_CONTEXT_TOKENS, "200k-1M"), else_="0-200k")
    return func.coalesce(c[col], "")


def _is_error() -> Any:
    return or_(calls.c.status_code >= 400, calls.c.error_type.is_not(None))


# Measures a partial hour can be summed for in SQL with exactly the rollups' rules
# (the rest -- histograms, cost components -- are folded in Python).
SQL_MEASURES: dict[str, Any] = {
    "calls": func.count(),
    "errors": func.sum(case((_is_error(), 1), else_=0)),
    "unpriced_calls": func.sum(
        case((and_(calls.c.cost_nanousd.is_(None), calls.c.billable), 1), else_=0)
    ),
    **{
        name: func.sum(calls.c[name])
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
    },
    "cost_nanousd": func.sum(func.coalesce(calls.c.cost_nanousd, 0)),
    "cache_savings_nanousd": func.sum(func.coalesce(calls.c.cache_savings_nanousd, 0)),
}


class AnalyticsError(ValueError):
    """A question the rollups cannot answer as asked; the message says what to change."""


@dataclass(frozen=True)
class Cube:
    """One rollup table: its time column and grain, the dimensions and measures it keeps."""

    table: Table
    time_col: str
    grain: int
    dims: tuple[str, ...]
    measures: tuple[str, ...] = MEASURES
    tagged: bool = False

    def answers(self, needed: set[str], measures: tuple[str, ...], tagged: bool) -> bool:
        """Whether this cube keeps every dimension and measure a question needs."""
        return (
            self.tagged == tagged
            and needed <= set(self.dims)
            and set(measures) <= set(self.measures)
        )


FULL = Cube(rollup_hourly, "hour", HOUR_US, HOURLY_DIMS)
TAGS = Cube(rollup_tags_hourly, "hour", HOUR_US, TAG_DIMS, TAG_MEASURES, tagged=True)
NARROW_HOURLY = Cube(rollup_narrow_hourly, "hour", HOUR_US, NARROW_DIMS)
NARROW_DAILY = Cube(rollup_narrow_daily, "day", DAY_US, NARROW_DIMS)
DAILY = Cube(rollup_daily, "day", DAY_US, DAILY_DIMS)
TAGS_DAILY = Cube(rollup_tags_daily, "day", DAY_US, TAG_DIMS, TAG_MEASURES, tagged=True)
# Smallest first: the first cube that answers a question is the one read.
HOURLY_CUBES = (NARROW_HOURLY, FULL, TAGS)
DAILY_CUBES = (NARROW_DAILY, DAILY, TAGS_DAILY)


@dataclass(frozen=True)
class Plan:
    hourly: Cube
    daily: Cube | None


def plan(flt: CallFilter, group: tuple[str, ...], measures: tuple[str, ...] = ()) -> Plan:
    unsupported = [
        name
        for name, value in (
            ("credential", flt.credential),
            ("pricing_status", flt.pricing_status),
            ("session_id", flt.session_id),
        )
        if value is not None
    ]
    if flt.ids or unsupported:
        raise AnalyticsError(
            f"analytics cannot filter by {', '.join(unsupported) or 'ids'}; "
            "use the request log (/api/requests) for that"
        )
    needed = set(group) | {col for attr, col in FILTER_COLUMNS if getattr(flt, attr) is not None}
    if flt.status is not None:
        needed |= {"status_code", "error_type"}
    tagged = flt.tag is not None or "tag" in group
    if tagged:
        needed.discard("tag")
        missing = needed - set(TAG_DIMS)
        if missing:
            raise AnalyticsError(
                f"with a tag filter or tag breakdown, {', '.join(sorted(missing))} is not "
                "available; tags can be combined with model, key, team, user and project"
            )
        needed.add("tag")
    hourly = next((c for c in HOURLY_CUBES if c.answers(needed, measures, tagged)), None)
    if hourly is None:
        raise AnalyticsError(
            "latency, time-to-first-token and cost components are not kept per tag; "
            "ask for tokens, cost, calls or errors, or filter by key, user or project instead"
        )
    daily = next((c for c in DAILY_CUBES if c.answers(needed, measures, tagged)), None)
    return Plan(hourly, daily)


def _status_ok(status_code: Any, error_type: Any) -> Any:
    return and_(status_code > 0, status_code < 400, error_type == "")


def status_clause(status: str, sc: Any, et: Any) -> Any:
    if status == "ok":
        return _status_ok(sc, et)
    if status == "error":
        return or_(sc >= 400, et != "")
    return sc == int(status)


def sql_filters(table: Table, flt: CallFilter) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    for attr, col in FILTER_COLUMNS:
        value = getattr(flt, attr)
        if value is not None:
            out.append(table.c[col] == value)
    if flt.tag is not None:
        out.append(table.c.tag == flt.tag)
    if flt.status is not None:
        out.append(status_clause(flt.status, table.c.status_code, table.c.error_type))
    return out


def matches(dims: Mapping[str, Any], flt: CallFilter) -> bool:
    for attr, col in FILTER_COLUMNS:
        value = getattr(flt, attr)
        if value is not None and dims[col] != value:
            return False
    if flt.tag is not None and dims["tag"] != flt.tag:
        return False
    if flt.status is not None:
        sc, et = dims["status_code"], dims["error_type"]
        if flt.status == "ok":
            return bool(0 < sc < 400 and et == "")
        if flt.status == "error":
            return bool(sc >= 400 or et != "")
        return bool(sc == int(flt.status))
    return True


def _floor(us: int | None, grain: int) -> int | None:
    return None if us is None else us - us % grain


def _ceil(us: int | None, grain: int) -> int | None:
    return None if us is None else us + (-us % grain)


def micros_of(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


Segment = tuple[Cube | None, int | None, int | None]  # None cube: raw calls


def segments(
    plan: Plan,
    since: int | None,
    until: int | None,
    grain: int | None,
    daily_through: int | None = None,
) -> list[Segment]:
    """Split [since, until) into raw edges, hourly rollup spans and daily rollup spans.

    Days are read from a daily rollup only if they end by the start of the day of
    ``daily_through`` (the daily rollups' mark, ``rollup_state``): from that day on
    the daily rows may lack hours that are only in the hourly rollups yet.
    """
    h_lo, h_hi = _ceil(since, HOUR_US), _floor(until, HOUR_US)
    if h_lo is not None and h_hi is not None and h_lo >= h_hi:
        return [(None, since, until)]
    out: list[Segment] = []
    if since is not None and h_lo is not None and since < h_lo:
        out.append((None, since, h_lo))
    if until is not None and h_hi is not None and h_hi < until:
        out.append((None, h_hi, until))
    daily = plan.daily if grain in (None, DAY_US) else None
    d_lo, d_hi = _ceil(h_lo, DAY_US), _floor(h_hi, DAY_US)
    if daily_through is not None:
        whole = daily_through - daily_through % DAY_US
        d_hi = whole if d_hi is None else min(d_hi, whole)
    if daily is None or (d_lo is not None and d_hi is not None and d_lo >= d_hi):
        return [*out, (plan.hourly, h_lo, h_hi)]
    out.append((daily, d_lo, d_hi))
    if h_lo is not None and d_lo is not None and h_lo < d_lo:
        out.append((plan.hourly, h_lo, d_lo))
    if d_hi is not None and (h_hi is None or d_hi < h_hi):
        out.append((plan.hourly, d_hi, h_hi))
    return out


@lru_cache(maxsize=64)
def sums(cube: Cube, measures: tuple[str, ...]) -> tuple[Any, ...]:
    """``SUM(m) AS m`` for each measure (built once: 70 expressions are not free)."""
    return tuple(func.sum(cube.table.c[m]).label(m) for m in measures)

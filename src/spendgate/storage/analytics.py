"""Analytics answered from the rollup tables: summary, timeseries, breakdowns, sessions.

:mod:`spendgate.storage.cubes` says which rollups answer a question and how its
range splits; whole days and hours are summed from those rollups, and the
partial hours at either end of a range that does not start or stop on the hour
from the raw ``calls`` rows of those hours, with the database's sums or the very
same code the writer uses, so the answer equals a sum over raw calls exactly while
scanning at most two hours of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, cast

from sqlalchemy import BigInteger, ColumnElement, func, select, type_coerce

from spendgate.money import NANO, format_usd, from_nanos
from spendgate.storage.cubes import (
    COMPONENT_MEASURES,
    FILTER_COLUMNS,
    RAW_COLUMNS,
    SQL_MEASURES,
    TAGS,
    AnalyticsError,
    Cube,
    matches,
    micros_of,
    plan,
    raw_dim,
    segments,
    sql_filters,
    status_clause,
    sums,
)
from spendgate.storage.rollups import ALWAYS, Key, aggregate
from spendgate.storage.rollups_schema import (
    DAY_US,
    HIST_BASE_MS,
    HIST_BUCKETS,
    HIST_RATIO,
    HOUR_US,
    HOURLY_DIMS,
    LATENCY_BUCKETS,
    MEASURES,
    SESSION_DIMS,
    SESSION_MEASURES,
    TAG_DIMS,
    TAG_MEASURES,
    TTFT_BUCKETS,
    rollup_sessions_daily,
)
from spendgate.storage.schema import calls, from_micros, to_micros
from spendgate.storage.store import CallFilter, Store

__all__ = [
    "DIMENSIONS",
    "PRESENT_MEASURES",
    "Analytics",
    "AnalyticsError",
    "Measures",
    "add_measures",
    "empty",
    "percentile",
    "present",
]

Measures = dict[str, int]

# Public dimension names (API, CLI) → rollup column.
DIMENSIONS: dict[str, str] = {
    "model": "model",
    "key": "key_id",
    "team": "team",
    "user": "user_name",
    "project": "project",
    "tag": "tag",
    "endpoint": "endpoint",
    "status": "status_code",
    "source": "source",
    "service_tier": "service_tier",
    "error_type": "error_type",
    "context_window": "context_window",
}


def add_measures(target: Measures, source: Mapping[str, int]) -> None:
    """``target += source``, measure by measure."""
    get = target.get
    for name, value in source.items():
        target[name] = get(name, 0) + value


# The measures ``present`` shows without ``detail`` (timeseries points, breakdown rows).
PRESENT_MEASURES: tuple[str, ...] = (
    "calls",
    "errors",
    "cost_nanousd",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cache_savings_nanousd",
)


def empty() -> Measures:
    """All measures at zero."""
    return dict.fromkeys(MEASURES, 0)


class Analytics:
    """Named analytics questions over one store's rollups."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- plumbing -------------------------------------------------------------

    def grouped(
        self,
        flt: CallFilter,
        group: tuple[str, ...],
        *,
        grain: int | None = None,
        measures: tuple[str, ...] = MEASURES,
    ) -> dict[Key, Measures]:
        """``measures`` for ``flt`` grouped by rollup columns ``group``.

        With ``grain`` (``HOUR_US`` or ``DAY_US``) each key starts with the UTC
        bucket start in µs. The smallest rollup that keeps the needed dimensions
        answers; whole days come from a daily rollup where there is one.
        """
        chosen = plan(flt, group, measures)
        out: dict[Key, Measures] = {}
        since, until = micros_of(flt.since), self._open_end(micros_of(flt.until))
        mark: int | None = None
        if chosen.daily is not None:
            mark = self.store.daily_through()
            if mark >= ALWAYS:  # a database without a mark: the daily rollups hold all
                mark = None
        for cube, lo, hi in segments(chosen, since, until, grain, mark):
            if cube is None:
                assert lo is not None and hi is not None
                self._add_raw(out, chosen.hourly, flt, group, grain, lo, hi, measures)
            else:
                self._add_rollup(out, cube, flt, group, grain, lo, hi, measures)
        for entry in out.values():  # raw edges only carry the measures that are non-zero
            for name in measures:
                entry.setdefault(name, 0)
        return out

    def _open_end(self, until: int | None) -> int | None:
        """A range that ends now (or later) ends at the top of the hour instead.

        The rest of the current hour is still to come, so it holds no calls and its
        hourly rollup row is exact for the range; reading the hour's raw calls
        instead (alert rules, forecasts and explicit ranges ask "until now") costs
        a row per call so far this hour: at 200 calls a second, 700,000 rows folded
        in Python once a minute. Presets end at the top of the hour for the same
        reason (:func:`spendgate.ranges.next_hour`).
        """
        if until is None or until % HOUR_US == 0 or until < self.store.clock():
            return until
        return until - until % HOUR_US + HOUR_US

    def _add_rollup(
        self,
        out: dict[Key, Measures],
        cube: Cube,
        flt: CallFilter,
        group: tuple[str, ...],
        grain: int | None,
        lo: int | None,
        hi: int | None,
        measures: tuple[str, ...],
    ) -> None:
        t = cube.table
        at = t.c[cube.time_col]
        cols: list[Any] = [t.c[g] for g in group]
        if grain is not None:
            cols.insert(0, at if grain == cube.grain else (at // grain) * grain)
        where = sql_filters(t, flt)
        if lo is not None:
            where.append(at >= lo)
        if hi is not None:
            where.append(at < hi)
        stmt = select(*cols, *sums(cube, measures)).where(*where)
        if cols:
            stmt = stmt.group_by(*cols)
        width = len(cols)
        with self.store.engine.connect() as conn:
            for row in conn.execute(stmt):
                if row[width] is None:  # SUM over no rows
                    continue
                key = tuple(row[:width])
                # int(): PostgreSQL sums BIGINTs as NUMERIC.
                values = {m: int(v or 0) for m, v in zip(measures, row[width:], strict=True)}
                entry = out.get(key)
                if entry is None:
                    out[key] = values
                else:
                    add_measures(entry, values)

    def _add_raw(
        self,
        out: dict[Key, Measures],
        cube: Cube,
        flt: CallFilter,
        group: tuple[str, ...],
        grain: int | None,
        since: int,
        until: int,
        measures: tuple[str, ...],
    ) -> None:
        """Aggregate the raw calls of a partial hour, exactly as the rollups would."""
        if cube is not TAGS and set(measures) <= SQL_MEASURES.keys():
            self._add_raw_sql(out, flt, group, grain, since, until, measures)
            return
        window = CallFilter(
            since=from_micros(since),
            until=from_micros(until),
            # Exact column equalities only narrow the read; matches decides below.
            status=flt.status,
            model=flt.model or None,
            key_id=flt.key_id or None,
            team=flt.team or None,
            user=flt.user or None,
            project=flt.project or None,
            endpoint=flt.endpoint or None,
            source=flt.source or None,
        )
        columns = list(RAW_COLUMNS)
        if not COMPONENT_MEASURES.isdisjoint(measures):
            columns.append(calls.c.cost_breakdown)
        if cube is TAGS:
            columns.append(calls.c.tags)
        stmt = select(*columns).where(*window.clauses())
        with self.store.engine.connect() as conn:
            rows = cast(Iterable[Mapping[str, Any]], conn.execute(stmt).mappings())
            agg = aggregate(rows)
        entries = agg.tags if cube is TAGS else agg.hourly
        dims_of = TAG_DIMS if cube is TAGS else HOURLY_DIMS
        for key, vec in entries.items():
            dims = dict(zip(dims_of, key[1:], strict=True))
            if not matches(dims, flt):
                continue
            at = () if grain is None else (key[0] - key[0] % grain,)
            named = {name: value for name, value in zip(MEASURES, vec, strict=True) if value}
            add_measures(out.setdefault(at + tuple(dims[g] for g in group), {}), named)

    def _add_raw_sql(
        self,
        out: dict[Key, Measures],
        flt: CallFilter,
        group: tuple[str, ...],
        grain: int | None,
        since: int,
        until: int,
        measures: tuple[str, ...],
    ) -> None:
        """The simple sums of a partial hour, computed by the database (no rows fetched)."""
        at = type_coerce(calls.c.created_at, BigInteger)
        cols: list[Any] = [raw_dim(g) for g in group]
        if grain is not None:
            cols.insert(0, at - at % grain)
        where: list[ColumnElement[bool]] = [at >= since, at < until]
        for attr, col in FILTER_COLUMNS:
            value = getattr(flt, attr)
            if value is not None:
                where.append(raw_dim(col) == value)
        if flt.status is not None:
            where.append(status_clause(flt.status, raw_dim("status_code"), raw_dim("error_type")))
        sums = [SQL_MEASURES[m].label(m) for m in measures]
        stmt = select(*cols, *sums).where(*where)
        if cols:
            stmt = stmt.group_by(*cols)
        width = len(cols)
        with self.store.engine.connect() as conn:
            for row in conn.execute(stmt):
                if not any(row[width:]):  # no calls in the hour: one row of NULL sums
                    continue
                values = {m: int(v or 0) for m, v in zip(measures, row[width:], strict=True)}
                add_measures(out.setdefault(tuple(row[:width]), {}), values)

    def totals(self, flt: CallFilter, measures: tuple[str, ...] = MEASURES) -> Measures:
        """``measures`` (default: all) for ``flt`` as one set of sums."""
        return self.grouped(flt, (), measures=measures).get((), dict.fromkeys(measures, 0))

    # -- questions ------------------------------------------------------------

    def summary(self, flt: CallFilter, *, compare: bool = True) -> dict[str, Any]:
        """Spend, calls, tokens, latency and errors for a range, with the previous period.

        With a tag filter, latency percentiles and cost components are null: tag
        rollups keep tokens, cost, calls and errors only.
        """
        kept = TAG_MEASURES if flt.tag is not None else MEASURES
        current = present(self.totals(flt, kept), detail=True, kept=kept)
        result: dict[str, Any] = {
            "since": _iso(flt.since),
            "until": _iso(flt.until),
            **current,
        }
        if compare and flt.since is not None and flt.until is not None:
            span = flt.until - flt.since
            before = replace(flt, since=flt.since - span, until=flt.since)
            prev = present(self.totals(before, PRESENT_MEASURES))
            result["previous"] = {"since": _iso(flt.since - span), "until": _iso(flt.since), **prev}
            result["change"] = {
                "cost_pct": _pct_change(prev["cost_usd"], current["cost_usd"]),
                "calls_pct": _pct_change(prev["calls"], current["calls"]),
            }
        return result

    def breakdown(
        self, flt: CallFilter, by: str, *, then: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """Measures per value of dimension ``by`` (and optionally ``then``), costliest first."""
        cols = tuple(_dimension(d) for d in (by, then) if d is not None)
        group = cols + (("key_label",) if "key_id" in cols and not _tagged(flt, cols) else ())
        data = self.grouped(flt, group, measures=PRESENT_MEASURES)
        total = empty()
        merged: dict[Key, tuple[str, Measures]] = {}
        for key, measures in data.items():
            add_measures(total, measures)
            ident = key[: len(cols)]
            label = key[len(cols)] if len(key) > len(cols) else ""
            _, acc = merged.setdefault(ident, (label, {}))
            if label and not merged[ident][0]:
                merged[ident] = (label, acc)
            add_measures(acc, measures)
        rows = []
        for ident, (label, measures) in merged.items():
            item: dict[str, Any] = {"key": _key_text(cols[0], ident[0])}
            if then is not None:
                item["then"] = _key_text(cols[1], ident[1])
            if label:
                item["label"] = label
            item.update(present(measures))
            item["share"] = _share(measures["cost_nanousd"], total["cost_nanousd"])
            rows.append((measures["cost_nanousd"], measures["calls"], item))
        rows.sort(key=lambda r: (-r[0], -r[1], str(r[2]["key"])))
        return {
            "by": by,
            "then": then,
            "since": _iso(flt.since),
            "until": _iso(flt.until),
            "data": [r[2] for r in rows[:limit]],
            "total": present(total),
        }

    def series(
        self, flt: CallFilter, stack: str | None = None, *, grain: int = HOUR_US
    ) -> dict[Key, Measures]:
        """Measures per UTC hour or day (and per value of ``stack``), for timeseries."""
        group = () if stack is None else (_dimension(stack),)
        return self.grouped(flt, group, grain=grain, measures=PRESENT_MEASURES)

    def sessions(
        self, flt: CallFilter, *, limit: int = 100, by_model: bool = False
    ) -> list[dict[str, Any]]:
        """Claude Code (and other) sessions, newest first, at UTC-day precision.

        With ``by_model``, each session also lists its spend per model.
        """
        t = rollup_sessions_daily
        where: list[ColumnElement[bool]] = [t.c.session_id != ""]
        if flt.since is not None:
            where.append(t.c.day >= to_micros(flt.since) - to_micros(flt.since) % DAY_US)
        if flt.until is not None:
            where.append(t.c.day < to_micros(flt.until))
        for attr, col in FILTER_COLUMNS:
            value = getattr(flt, attr)
            if value is not None and col in SESSION_DIMS:
                where.append(t.c[col] == value)
        if flt.session_id is not None:
            where.append(t.c.session_id == flt.session_id)
        sums = [func.sum(t.c[m]).label(m) for m in SESSION_MEASURES]
        stmt = (
            select(
                t.c.session_id,
                func.max(t.c.project).label("project"),
                func.max(t.c.user_name).label("user"),
                func.max(t.c.team).label("team"),
                func.min(t.c.first_at).label("first_at"),
                func.max(t.c.last_at).label("last_at"),
                func.count(func.distinct(t.c.model)).label("models"),
                *sums,
            )
            .where(*where)
            .group_by(t.c.session_id)
            .order_by(func.max(t.c.last_at).desc())
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
        sessions = [_session_json(r) for r in rows]
        if by_model and sessions:
            self._session_models(sessions, where)
        return sessions

    def _session_models(self, sessions: list[dict[str, Any]], where: list[Any]) -> None:
        t = rollup_sessions_daily
        ids = [s["session_id"] for s in sessions]
        sums = [func.sum(t.c[m]).label(m) for m in SESSION_MEASURES]
        stmt = (
            select(t.c.session_id, t.c.model, *sums)
            .where(*where, t.c.session_id.in_(ids))
            .group_by(t.c.session_id, t.c.model)
        )
        models: dict[str, list[dict[str, Any]]] = {}
        with self.store.engine.connect() as conn:
            for r in conn.execute(stmt):
                m = r._mapping
                models.setdefault(m["session_id"], []).append(
                    {
                        "model": m["model"] or None,
                        **{name: int(m[name] or 0) for name in SESSION_MEASURES[:-1]},
                        "cost_usd": format_usd(int(m["cost_nanousd"] or 0)),
                    }
                )
        for session in sessions:
            found = models.get(session["session_id"], [])
            session["by_model"] = sorted(found, key=lambda x: Decimal(x["cost_usd"]), reverse=True)


def _session_json(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "session_id": r["session_id"],
        "project": r["project"] or None,
        "user": r["user"] or None,
        "team": r["team"] or None,
        "first_at": _iso(from_micros(int(r["first_at"]))),
        "last_at": _iso(from_micros(int(r["last_at"]))),
        "models": int(r["models"]),
        "calls": int(r["calls"]),
        "errors": int(r["errors"]),
        "input_tokens": int(r["input_tokens"]),
        "output_tokens": int(r["output_tokens"]),
        "cache_read_input_tokens": int(r["cache_read_input_tokens"]),
        "cache_creation_input_tokens": int(r["cache_creation_input_tokens"]),
        "cost_usd": format_usd(int(r["cost_nanousd"])),
    }


def _tagged(flt: CallFilter, cols: tuple[str, ...]) -> bool:
    return flt.tag is not None or "tag" in cols


def _dimension(name: str) -> str:
    try:
        return DIMENSIONS[name]
    except KeyError:
        raise AnalyticsError(
            f"unknown dimension {name!r}; use one of {', '.join(DIMENSIONS)} (or session)"
        ) from None


def _key_text(col: str, value: Any) -> Any:
    if col == "status_code":
        return value or None
    return value if value != "" else None


def _iso(value: datetime | None) -> str | None:
    from spendgate.storage.calls import rfc3339

    return rfc3339(value)


def _share(part: int, whole: int) -> str:
    if whole <= 0:
        return "0.0000"
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_EVEN))


def _pct_change(before: Any, after: Any) -> str | None:
    old, new = Decimal(str(before)), Decimal(str(after))
    if old == 0:
        return None
    return str(((new - old) / old * 100).quantize(Decimal("0.01"), ROUND_HALF_EVEN))


def percentile(measures: Mapping[str, int], buckets: Iterable[str], q: float) -> float | None:
    """The ``q`` quantile (0..1) in ms read from a histogram, interpolated within its bucket."""
    counts = [int(measures.get(b, 0)) for b in buckets]
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = 0.0 if i == 0 else HIST_BASE_MS * HIST_RATIO ** (i - 1)
            upper = HIST_BASE_MS * HIST_RATIO**i
            if i == HIST_BUCKETS - 1:
                return round(lower, 1)
            if i == 0:
                return round(upper * (rank - seen) / count, 1)
            # Geometric interpolation: the buckets are log-spaced.
            return round(lower * float((upper / lower) ** ((rank - seen) / count)), 1)
        seen += count
    return None


def present(
    m: Mapping[str, int], *, detail: bool = False, kept: tuple[str, ...] = MEASURES
) -> dict[str, Any]:
    """The public JSON shape of a set of measures (money as decimal strings).

    With ``detail``, figures whose measures are not in ``kept`` are null.
    """
    wanted = MEASURES if detail else PRESENT_MEASURES
    m = {name: m.get(name, 0) for name in wanted}
    calls = m["calls"]
    creation = m["cache_creation_5m_input_tokens"] + m["cache_creation_1h_input_tokens"]
    out: dict[str, Any] = {
        "cost_usd": format_usd(m["cost_nanousd"]),
        "calls": calls,
        "errors": m["errors"],
        "input_tokens": m["input_tokens"],
        "output_tokens": m["output_tokens"],
        "cache_read_input_tokens": m["cache_read_input_tokens"],
        "cache_creation_input_tokens": creation,
        "cache_savings_usd": format_usd(m["cache_savings_nanousd"]),
    }
    if not detail:
        return out
    avg = from_nanos(m["cost_nanousd"]) / calls if calls else Decimal(0)
    full = "lat_h00" in kept and "cost_input_nanousd" in kept
    out.update(
        {
            "cache_creation_5m_input_tokens": m["cache_creation_5m_input_tokens"],
            "cache_creation_1h_input_tokens": m["cache_creation_1h_input_tokens"],
            "web_search_requests": m["web_search_requests"],
            "web_fetch_requests": m["web_fetch_requests"] if full else None,
            "thinking_tokens": m["thinking_tokens"] if full else None,
            "unpriced_calls": m["unpriced_calls"],
            "avg_cost_per_call_usd": format(avg.quantize(NANO, ROUND_HALF_EVEN), "f"),
            "error_rate": _share(m["errors"], calls),
            "cost_breakdown_usd": {
                name: format_usd(m[f"cost_{name}_nanousd"])
                for name in (
                    "input",
                    "output",
                    "cache_write_5m",
                    "cache_write_1h",
                    "cache_read",
                    "web_search",
                    "other",
                )
            }
            if full
            else None,
            "latency_ms": _latency(m, "latency", LATENCY_BUCKETS) if full else None,
            "ttft_ms": _latency(m, "ttft", TTFT_BUCKETS) if full else None,
        }
    )
    return out


def _latency(m: Mapping[str, int], prefix: str, buckets: tuple[str, ...]) -> dict[str, Any]:
    count = m[f"{prefix}_count"]
    return {
        "count": count,
        "avg": round(m[f"{prefix}_sum_ms"] / count, 1) if count else None,
        "p50": percentile(m, buckets, 0.50),
        "p95": percentile(m, buckets, 0.95),
        "p99": percentile(m, buckets, 0.99),
    }

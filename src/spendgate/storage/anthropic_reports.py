"""Storing and reading figures imported from Anthropic's Admin API.

An import replaces the days it covers (the newest report of a day wins), so
importing the same period twice changes nothing and a later import corrects
figures Anthropic revised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, delete, func, insert, select

from spendgate.storage.anthropic_schema import (
    COST_DIMS,
    USAGE_DIMS,
    USAGE_MEASURES,
    anthropic_cost_daily,
    anthropic_usage_daily,
)

Key = tuple[Any, ...]


def _merged(
    rows: Iterable[Mapping[str, Any]], dims: tuple[str, ...], measures: tuple[str, ...]
) -> dict[Key, dict[str, int]]:
    """Rows summed by (day, dims): Anthropic may split what spendgate keeps together."""
    out: dict[Key, dict[str, int]] = {}
    for row in rows:
        key = (int(row["day"]), *(str(row.get(d) or "") for d in dims))
        entry = out.setdefault(key, dict.fromkeys(measures, 0))
        for name in measures:
            entry[name] += int(row.get(name) or 0)
    return out


class AnthropicReports:
    """Anthropic's own usage and cost figures, per UTC day."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _replace(
        self,
        table: Table,
        since_us: int,
        until_us: int,
        entries: dict[Key, dict[str, int]],
        dims: tuple[str, ...],
        at: datetime,
    ) -> int:
        values = [
            {"day": key[0], **dict(zip(dims, key[1:], strict=True)), **m, "imported_at": at}
            for key, m in entries.items()
        ]
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.day >= since_us, table.c.day < until_us))
            if values:
                conn.execute(insert(table), values)
        return len(values)

    def replace_usage(
        self, since_us: int, until_us: int, rows: Iterable[Mapping[str, Any]], at: datetime
    ) -> int:
        """Replace the usage of the days in [since, until) with ``rows``; returns rows kept."""
        entries = _merged(rows, USAGE_DIMS, USAGE_MEASURES)
        return self._replace(anthropic_usage_daily, since_us, until_us, entries, USAGE_DIMS, at)

    def replace_costs(
        self, since_us: int, until_us: int, rows: Iterable[Mapping[str, Any]], at: datetime
    ) -> int:
        """Replace the costs of the days in [since, until) with ``rows``; returns rows kept."""
        entries = _merged(rows, COST_DIMS, ("amount_nanousd",))
        return self._replace(anthropic_cost_daily, since_us, until_us, entries, COST_DIMS, at)

    def usage_by(
        self, since_us: int, until_us: int, group: tuple[str, ...]
    ) -> dict[Key, dict[str, int]]:
        """Token counts per (day, *group) for the days in [since, until)."""
        t = anthropic_usage_daily
        cols = [t.c.day, *(t.c[g] for g in group)]
        sums = [func.sum(t.c[m]).label(m) for m in USAGE_MEASURES]
        stmt = select(*cols, *sums).where(t.c.day >= since_us, t.c.day < until_us).group_by(*cols)
        with self.engine.connect() as conn:
            return {
                tuple(row[: len(cols)]): {
                    m: int(v or 0) for m, v in zip(USAGE_MEASURES, row[len(cols) :], strict=True)
                }
                for row in conn.execute(stmt)
            }

    def costs_by(self, since_us: int, until_us: int, group: tuple[str, ...]) -> dict[Key, int]:
        """Cost in nano-dollars per (day, *group) for the days in [since, until)."""
        t = anthropic_cost_daily
        cols = [t.c.day, *(t.c[g] for g in group)]
        stmt = (
            select(*cols, func.sum(t.c.amount_nanousd))
            .where(t.c.day >= since_us, t.c.day < until_us)
            .group_by(*cols)
        )
        with self.engine.connect() as conn:
            return {tuple(row[:-1]): int(row[-1] or 0) for row in conn.execute(stmt)}

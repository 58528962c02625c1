"""Recomputing stored costs after the price book changed: ``spendgate reprice``.

Each stored call is re-priced from its own recorded usage with the book given.
A call whose cost, cache savings, breakdown or pricing status changes is updated
in place, and the rollups receive the difference (old contribution out, new in)
in the same transaction, so analytics agree with the raw calls afterwards.

The update is guarded by the values read (compare-and-set), so two repricing
runs at once, or a run racing the writer, never apply a difference twice.
Running it again with the same book changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, update

from spendgate.pricing import PriceBook, apply_cost
from spendgate.storage.calls import row_to_record
from spendgate.storage.rollups import Aggregates, write_aggregates
from spendgate.storage.schema import calls
from spendgate.storage.store import CallFilter, Store

_COST_COLUMNS = ("cost_nanousd", "cache_savings_nanousd", "cost_breakdown", "pricing_status")


@dataclass
class ModelChange:
    """What repricing did to one model's calls."""

    calls: int = 0
    before_nanousd: int = 0
    after_nanousd: int = 0
    newly_priced: int = 0
    now_unpriced: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view (amounts as nano-dollar integers)."""
        return {
            "calls": self.calls,
            "before_nanousd": self.before_nanousd,
            "after_nanousd": self.after_nanousd,
            "difference_nanousd": self.after_nanousd - self.before_nanousd,
            "newly_priced": self.newly_priced,
            "now_unpriced": self.now_unpriced,
        }


@dataclass
class RepriceReport:
    """The outcome of one repricing run."""

    book_version: str
    examined: int = 0
    changed: int = 0
    dry_run: bool = False
    by_model: dict[str, ModelChange] = field(default_factory=dict)

    @property
    def before_nanousd(self) -> int:
        """Total cost of the changed calls before (unpriced counts as 0)."""
        return sum(m.before_nanousd for m in self.by_model.values())

    @property
    def after_nanousd(self) -> int:
        """Total cost of the changed calls after (unpriced counts as 0)."""
        return sum(m.after_nanousd for m in self.by_model.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        return {
            "book_version": self.book_version,
            "dry_run": self.dry_run,
            "examined": self.examined,
            "changed": self.changed,
            "before_nanousd": self.before_nanousd,
            "after_nanousd": self.after_nanousd,
            "difference_nanousd": self.after_nanousd - self.before_nanousd,
            "by_model": {name: m.to_dict() for name, m in sorted(self.by_model.items())},
        }


def _repriced(book: PriceBook, row: Mapping[str, Any]) -> dict[str, Any]:
    """The cost columns ``row`` gets under ``book`` (as stored: breakdown as JSON text)."""
    record = row_to_record(row)
    apply_cost(book, record)
    breakdown = record.cost_breakdown
    return {
        "cost_nanousd": record.cost_nanousd,
        "cache_savings_nanousd": record.cache_savings_nanousd,
        "cost_breakdown": orjson.dumps(breakdown).decode() if breakdown is not None else None,
        "pricing_status": record.pricing_status,
        "price_book_version": record.price_book_version,
    }


def _breakdown(text: str | None) -> Any:
    """A stored breakdown without the book version (which alone is no change in cost)."""
    value = orjson.loads(text) if text else None
    if isinstance(value, dict):
        value.pop("price_book_version", None)
    return value


def _same(row: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    if any(row[c] != new[c] for c in _COST_COLUMNS if c != "cost_breakdown"):
        return False
    return bool(_breakdown(row["cost_breakdown"]) == _breakdown(new["cost_breakdown"]))


def _difference(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> Aggregates:
    """Rollup entries that take the old rows out and put the new ones in."""
    removed, added = Aggregates(), Aggregates()
    for old, new in pairs:
        removed.add_row(old)
        added.add_row(new)
    added.subtract(removed)
    return added


def _apply(conn: Connection, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[int]:
    """Compare-and-set each row; returns the indexes of ``pairs`` really updated."""
    done: list[int] = []
    for index, (old, new) in enumerate(pairs):
        guard = [calls.c.id == old["id"]]
        for column in _COST_COLUMNS:
            value = old[column]
            guard.append(calls.c[column].is_(None) if value is None else calls.c[column] == value)
        values = {c: new[c] for c in (*_COST_COLUMNS, "price_book_version")}
        result = conn.execute(update(calls).where(*guard).values(**values))
        if result.rowcount == 1:
            done.append(index)
    return done


def reprice(
    store: Store, book: PriceBook, flt: CallFilter, *, dry_run: bool = False, chunk: int = 1000
) -> RepriceReport:
    """Re-price the calls matching ``flt`` with ``book``; update those whose cost changed.

    With ``dry_run`` nothing is written; the report says what would change.
    """
    report = RepriceReport(book_version=book.version, dry_run=dry_run)
    pending: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def flush() -> None:
        if not pending:
            return
        if dry_run:
            applied = list(range(len(pending)))
        else:
            with store.engine.begin() as conn:
                applied = _apply(conn, pending)
                write_aggregates(conn, _difference([pending[i] for i in applied]))
        for index in applied:
            old, new = pending[index]
            _count(report, old, new)
        pending.clear()

    for row in store.iter_call_rows(flt):
        report.examined += 1
        new_columns = _repriced(book, row)
        if _same(row, new_columns):
            continue
        pending.append((row, {**row, **new_columns}))
        if len(pending) >= chunk:
            flush()
    flush()
    return report


def _count(report: RepriceReport, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    report.changed += 1
    change = report.by_model.setdefault(old["model"] or "(unknown)", ModelChange())
    change.calls += 1
    change.before_nanousd += old["cost_nanousd"] or 0
    change.after_nanousd += new["cost_nanousd"] or 0
    change.newly_priced += old["cost_nanousd"] is None and new["cost_nanousd"] is not None
    change.now_unpriced += old["cost_nanousd"] is not None and new["cost_nanousd"] is None


@dataclass(frozen=True)
class UnpricedModel:
    """A model with calls that could not be priced."""

    model: str
    calls: int
    first_at: Any
    last_at: Any

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        return {
            "model": self.model,
            "calls": self.calls,
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "last_at": self.last_at.isoformat() if self.last_at else None,
        }


def unpriced_models(store: Store, flt: CallFilter) -> list[UnpricedModel]:
    """Models whose matching calls are stored as ``unpriced``, most calls first."""
    c = calls.c
    stmt = (
        select(c.model, func.count(), func.min(c.created_at), func.max(c.created_at))
        .where(*flt.clauses(), c.pricing_status == "unpriced")
        .group_by(c.model)
        .order_by(func.count().desc(), c.model)
    )
    with store.engine.connect() as conn:
        return [
            UnpricedModel(model=model or "(unknown)", calls=int(n), first_at=lo, last_at=hi)
            for model, n, lo, hi in conn.execute(stmt)
        ]

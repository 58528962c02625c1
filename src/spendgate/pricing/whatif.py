"""What-if: re-price recorded usage under another model or another set of modifiers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal

from spendgate.money import format_usd
from spendgate.pricing.book import PriceBook
from spendgate.pricing.engine import price_usage
from spendgate.usage import Usage


class _Keep(Enum):
    """Sentinel type: keep each call's own value for this modifier."""

    KEEP = "unchanged"


KEEP: Final = _Keep.KEEP
Setting = str | None | Literal[_Keep.KEEP]


@dataclass(slots=True)
class ModelComparison:
    """Actual vs. hypothetical cost of the calls one model actually served."""

    calls: int = 0
    actual_nanousd: int = 0
    hypothetical_nanousd: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view (money as decimal strings)."""
        return {
            "calls": self.calls,
            "actual_usd": format_usd(self.actual_nanousd),
            "hypothetical_usd": format_usd(self.hypothetical_nanousd),
        }


@dataclass(slots=True)
class WhatIfSummary:
    """Totals over the calls priced in both scenarios; the others are counted, not summed."""

    scenario: dict[str, str | None]
    calls: int = 0
    compared: int = 0
    actual_nanousd: int = 0
    hypothetical_nanousd: int = 0
    actual_unpriced: int = 0
    hypothetical_unpriced: int = 0
    by_model: dict[str, ModelComparison] = field(default_factory=dict)

    @property
    def difference_nanousd(self) -> int:
        """Hypothetical minus actual: negative means the switch saves money."""
        return self.hypothetical_nanousd - self.actual_nanousd

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view for the CLI and the API."""
        return {
            "scenario": self.scenario,
            "calls": self.calls,
            "compared": self.compared,
            "actual_usd": format_usd(self.actual_nanousd),
            "hypothetical_usd": format_usd(self.hypothetical_nanousd),
            "difference_usd": format_usd(self.difference_nanousd),
            "actual_unpriced": self.actual_unpriced,
            "hypothetical_unpriced": self.hypothetical_unpriced,
            "by_model": {name: row.to_dict() for name, row in sorted(self.by_model.items())},
        }


def _hypothetical(
    usage: Usage,
    *,
    model: str | None,
    service_tier: Setting,
    inference_geo: Setting,
    speed: Setting,
) -> Usage:
    changes: dict[str, Any] = {}
    raw = dict(usage.raw)
    if model is not None:
        # Under another model every token is that model's: per-model iterations no longer apply.
        raw.pop("iterations", None)
    for name, value in (
        ("service_tier", service_tier),
        ("inference_geo", inference_geo),
        ("speed", speed),
    ):
        if value is not KEEP:
            changes[name] = value
            if value is None:
                raw.pop(name, None)
            else:
                raw[name] = value
    return replace(usage, raw=raw, **changes)


def whatif(
    book: PriceBook,
    usages: Iterable[tuple[datetime, str | None, Usage]],
    *,
    model: str | None = None,
    service_tier: Setting = KEEP,
    inference_geo: Setting = KEEP,
    speed: Setting = KEEP,
) -> WhatIfSummary:
    """Re-price ``(when, model, usage)`` triples as if served by ``model`` with other modifiers.

    Leave an argument out to keep each call's own value; pass ``service_tier="batch"``
    to see the batch discount, ``inference_geo=None`` to drop US-only inference,
    ``speed="fast"`` for fast mode. Prices are those in effect at each call's time.
    Pass billable, non-refused calls only (others cost nothing in either scenario).
    """
    scenario = {
        "model": model,
        **{
            name: value.value if isinstance(value, _Keep) else value
            for name, value in (
                ("service_tier", service_tier),
                ("inference_geo", inference_geo),
                ("speed", speed),
            )
        },
    }
    summary = WhatIfSummary(scenario=scenario)
    for at, actual_model, usage in usages:
        summary.calls += 1
        actual = price_usage(book, model=actual_model, usage=usage, at=at)
        other_usage = _hypothetical(
            usage, model=model, service_tier=service_tier, inference_geo=inference_geo, speed=speed
        )
        other = price_usage(book, model=model or actual_model, usage=other_usage, at=at)
        summary.actual_unpriced += actual.total_nanousd is None
        summary.hypothetical_unpriced += other.total_nanousd is None
        if actual.total_nanousd is None or other.total_nanousd is None:
            continue
        summary.compared += 1
        summary.actual_nanousd += actual.total_nanousd
        summary.hypothetical_nanousd += other.total_nanousd
        key = book.resolve(actual_model) or actual_model or "(unknown)"
        row = summary.by_model.setdefault(key, ModelComparison())
        row.calls += 1
        row.actual_nanousd += actual.total_nanousd
        row.hypothetical_nanousd += other.total_nanousd
    return summary

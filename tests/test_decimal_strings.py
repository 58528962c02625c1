"""Money crosses the API as plain decimal strings, never in exponent form (``0E-9``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from spendgate.storage import CallFilter, Store
from spendgate.storage.analytics import Analytics


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_an_empty_period_has_plain_zero_amounts(store: Store) -> None:
    flt = CallFilter(since=datetime(2026, 1, 1, tzinfo=UTC), until=datetime(2026, 2, 1, tzinfo=UTC))
    summary = Analytics(store).summary(flt)
    assert summary["avg_cost_per_call_usd"] == "0.000000000"
    assert not [s for s in _strings(summary) if "E-" in s or "E+" in s]

"""A budget's standing in its current period, as the API and the CLI show it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from spendgate.budgets.model import Budget
from spendgate.budgets.periods import period_window
from spendgate.money import format_usd
from spendgate.storage.budgets import BudgetStore


def _iso(when: datetime | None, zone: ZoneInfo) -> str | None:
    return None if when is None else when.astimezone(zone).isoformat()


def budget_report(
    store: BudgetStore, budget: Budget, zone: ZoneInfo, at: datetime
) -> dict[str, Any]:
    """The budget with its current period's spend, reservations, remaining room and reset."""
    window = period_window(budget.period, at, zone)
    usage = store.usage(budget.id, window.key)
    remaining = budget.limit_nanousd - usage.spent_nanousd - usage.reserved_nanousd
    percent = (
        round(usage.spent_nanousd * 100 / budget.limit_nanousd, 2) if budget.limit_nanousd else None
    )
    return {
        **budget.to_api(),
        "period_key": window.key,
        "period_start": _iso(window.start, zone),
        "resets_at": _iso(window.end, zone),
        "spent_usd": format_usd(usage.spent_nanousd),
        "reserved_usd": format_usd(usage.reserved_nanousd),
        "remaining_usd": format_usd(max(remaining, 0)),
        "percent_used": percent,
        "calls": usage.calls,
        "refused": usage.refused,
        "exhausted": remaining <= 0,
    }

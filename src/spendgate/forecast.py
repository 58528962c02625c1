"""Spend forecasts: month-end projection and budget exhaustion dates.

Method (stated in every answer): the run rate is the mean daily spend of the
last ``window`` complete days (UTC hours summed per local day); the projection
is spend so far plus run rate x days left. The uncertainty is a 90 % band of
+/- 1.645 x sd x sqrt(days left), with sd the standard deviation of those daily
amounts, treating days as independent. It is a simple linear model: it does
not know about weekends, launches or price changes.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from spendgate.budgets.model import Budget
from spendgate.budgets.periods import period_window
from spendgate.money import format_usd
from spendgate.storage.analytics import Analytics
from spendgate.storage.budgets import scope_filter
from spendgate.storage.calls import rfc3339
from spendgate.storage.store import CallFilter
from spendgate.timeseries import bucket_start, timeseries

METHOD = (
    "linear: spend so far + mean daily spend of the last {window} complete days x days left; "
    "90% band = 1.645 x stdev(daily spend) x sqrt(days left)"
)
Z90 = 1.645


def _daily_nanos(
    analytics: Analytics, flt: CallFilter, today: datetime, window: int, zone: ZoneInfo
) -> list[int]:
    since = today - timedelta(days=window)
    series = timeseries(
        analytics, replace(flt, since=since, until=today), granularity="day", zone=zone
    )
    return [int(Decimal(p["cost_usd"]).scaleb(9)) for p in series["data"]][-window:]


def project(
    analytics: Analytics,
    flt: CallFilter,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    zone: ZoneInfo,
    limit_nanousd: int | None = None,
    window: int = 7,
) -> dict[str, Any]:
    """Spend of ``flt`` in [start, end) so far, projected to ``end``, with a 90 % band."""
    spent = analytics.totals(replace(flt, since=start, until=now), ("cost_nanousd",))[
        "cost_nanousd"
    ]
    today = bucket_start(now, "day", zone)
    daily = _daily_nanos(analytics, flt, today, window, zone)
    rate = sum(daily) / len(daily) if daily else 0.0
    sd = math.sqrt(sum((d - rate) ** 2 for d in daily) / (len(daily) - 1)) if len(daily) > 1 else 0
    days_left = max((end - now).total_seconds() / 86_400, 0.0)
    projected = spent + rate * days_left
    band = Z90 * sd * math.sqrt(days_left)
    out: dict[str, Any] = {
        "period_start": rfc3339(start),
        "period_end": rfc3339(end),
        "spent_usd": format_usd(spent),
        "daily_rate_usd": format_usd(round(rate)),
        "projected_usd": format_usd(round(projected)),
        "projected_low_usd": format_usd(max(spent, round(projected - band))),
        "projected_high_usd": format_usd(round(projected + band)),
        "days_left": round(days_left, 2),
        "method": METHOD.format(window=window),
        "confidence": "90%",
    }
    if limit_nanousd is not None:
        out["limit_usd"] = format_usd(limit_nanousd)
        out["exhausted_at"] = _exhaustion(spent, rate, limit_nanousd, now, end)
        out["projected_over_limit"] = projected > limit_nanousd
    return out


def _exhaustion(spent: int, rate: float, limit: int, now: datetime, end: datetime) -> str | None:
    if spent >= limit:
        return rfc3339(now)
    if rate <= 0:
        return None
    at = now + timedelta(days=(limit - spent) / rate)
    return rfc3339(at) if at < end else None


def month_end(
    analytics: Analytics, flt: CallFilter, *, now: datetime | None = None, zone: ZoneInfo
) -> dict[str, Any]:
    """Month-to-date spend projected to the end of the month (in ``zone``)."""
    now = now or datetime.now(UTC)
    window = period_window("monthly", now, zone)
    assert window.start is not None and window.end is not None
    return project(analytics, flt, start=window.start, end=window.end, now=now, zone=zone)


def budget_forecasts(
    analytics: Analytics, budgets: list[Budget], *, now: datetime | None = None, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """Per budget: spend in the current period, projection to its end, exhaustion date."""
    now = now or datetime.now(UTC)
    out = []
    for budget in budgets:
        window = period_window(budget.period, now, zone)
        start = window.start or datetime(2000, 1, 1, tzinfo=UTC)
        end = window.end or bucket_start(now, "month", zone) + timedelta(days=32)
        answer = project(
            analytics,
            scope_filter(budget, None),
            start=start,
            end=end,
            now=now,
            zone=zone,
            limit_nanousd=budget.limit_nanousd,
        )
        out.append({"budget_id": budget.id, "name": budget.name, **answer})
    return out

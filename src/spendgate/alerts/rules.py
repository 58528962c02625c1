"""The alert rules: which alerts the current spend calls for.

Pure questions over the analytics rollups; nothing here sends or stores.

* **Budget thresholds** -- a budget's spend in its current period has reached
  one of its soft thresholds (default 50, 80, 100 % of the hard limit). Only the
  highest threshold reached fires, once per budget, period and threshold.
* **Budget forecast** -- linear run rate: the mean daily spend of the budget's
  scope over the last ``trailing_days`` complete days (local days in the budget
  time zone, days without spend counted as $0). If spend so far plus that rate
  reaches the limit before the period resets, the alert names the day. Once per
  budget and period; lifetime budgets (no reset) have no forecast.
* **Spend spikes** -- today's spend so far, globally and per team, is at least
  ``spike_factor`` times the mean daily spend of the last ``trailing_days``
  complete days, and at least ``spike_min`` dollars. A scope with no spend in
  those days has no average to compare with and never spikes. Once per scope
  and day.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from spendgate.alerts.model import Alert
from spendgate.budgets.model import Budget
from spendgate.budgets.periods import period_window
from spendgate.money import format_usd
from spendgate.storage.analytics import Analytics
from spendgate.storage.budgets import scope_filter
from spendgate.storage.store import CallFilter
from spendgate.timeseries import bucket_start

METHOD = (
    "linear: spend so far + mean daily spend of the last {days} complete days x days left "
    "until the budget resets"
)


@dataclass(frozen=True)
class Rules:
    """The knobs of the rules (from settings: ``alert_trailing_days``, ``alert_spike_*``)."""

    zone: ZoneInfo
    trailing_days: int = 7
    spike_factor: Decimal = Decimal(3)
    spike_min_nanousd: int = 1_000_000_000


def _usd(nanos: int) -> str:
    return "$" + format_usd(nanos, 2)


def ordinal(day: int) -> str:
    """``1st``, ``2nd``, ``19th``, ``22nd``."""
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _local_day(at: datetime, rules: Rules) -> str:
    return at.astimezone(rules.zone).date().isoformat()


def _trailing_start(today: datetime, rules: Rules) -> datetime:
    day = today.date() - timedelta(days=rules.trailing_days)
    return datetime(day.year, day.month, day.day, tzinfo=rules.zone)


def _where(budget: Budget) -> str:
    return "all calls" if budget.scope == "global" else f"{budget.scope} {budget.scope_value}"


def budget_alerts(analytics: Analytics, budget: Budget, now: datetime, rules: Rules) -> list[Alert]:
    """The threshold and forecast alerts ``budget`` calls for at ``now``."""
    if budget.limit_nanousd <= 0:
        return []  # a $0 budget blocks everything on purpose; nothing to warn about
    window = period_window(budget.period, now, rules.zone)
    flt = replace(scope_filter(budget, window.start), until=now)
    spent = analytics.totals(flt, ("cost_nanousd",))["cost_nanousd"]
    limit = budget.limit_nanousd
    resets = _local_day(window.end, rules) if window.end is not None else None
    base = {
        "budget_id": budget.id,
        "budget": budget.name,
        "scope": budget.scope,
        "scope_value": budget.scope_value or None,
        "period": budget.period,
        "spent_usd": format_usd(spent),
        "limit_usd": format_usd(limit),
        "percent_used": float(round(Decimal(spent * 100) / limit, 1)),
        "resets_on": resets,
    }
    out = []
    crossed = [t for t in budget.thresholds if spent * 100 >= t * limit]
    if crossed:
        top = max(crossed)
        if top >= 100:
            message = (
                f"Budget {budget.name!r} exhausted: {_usd(spent)} spent of {_usd(limit)} "
                f"({_where(budget)}, {budget.period}); calls are refused "
                + (f"until it resets on {resets}" if resets else "until its limit is raised")
            )
        else:
            message = (
                f"Budget {budget.name!r} at {top}%: {_usd(spent)} spent of {_usd(limit)} "
                f"({_where(budget)}, {budget.period})"
                + (f"; it resets on {resets}" if resets else "")
            )
        out.append(
            Alert(
                kind="budget_threshold",
                dedupe_key=f"threshold:{budget.id}:{window.key}:{top}",
                subject=f"budget:{budget.id}",
                period_key=window.key,
                message=message,
                details={**base, "threshold_percent": top},
            )
        )
    forecast = _forecast(analytics, budget, now, rules, spent, window.end)
    if forecast is not None:
        runs_out, rate = forecast
        local = runs_out.astimezone(rules.zone)
        out.append(
            Alert(
                kind="budget_forecast",
                dedupe_key=f"forecast:{budget.id}:{window.key}",
                subject=f"budget:{budget.id}",
                period_key=window.key,
                message=(
                    f"At this rate budget {budget.name!r} runs out on the {ordinal(local.day)}: "
                    f"{_usd(spent)} of {_usd(limit)} spent, {_usd(rate)} a day over the last "
                    f"{rules.trailing_days} days; the limit is reached on "
                    f"{local.date().isoformat()}, before it resets on {resets}"
                ),
                details={
                    **base,
                    "daily_rate_usd": format_usd(rate),
                    "runs_out_on": local.date().isoformat(),
                    "method": METHOD.format(days=rules.trailing_days),
                },
            )
        )
    return out


def _forecast(
    analytics: Analytics,
    budget: Budget,
    now: datetime,
    rules: Rules,
    spent: int,
    end: datetime | None,
) -> tuple[datetime, int] | None:
    """When the budget runs out at the trailing daily rate, if before ``end``."""
    if end is None or spent >= budget.limit_nanousd:
        return None
    today = bucket_start(now, "day", rules.zone)
    trailing = replace(scope_filter(budget, _trailing_start(today, rules)), until=today)
    rate = analytics.totals(trailing)["cost_nanousd"] // rules.trailing_days
    if rate <= 0:
        return None
    runs_out = now + timedelta(days=(budget.limit_nanousd - spent) / rate)
    return (runs_out, rate) if runs_out < end else None


def spike_alerts(analytics: Analytics, now: datetime, rules: Rules) -> list[Alert]:
    """Spend spikes today, globally and per team."""
    today = bucket_start(now, "day", rules.zone)
    today_flt = CallFilter(since=today, until=now)
    past_flt = CallFilter(since=_trailing_start(today, rules), until=today)
    cost = ("cost_nanousd",)
    todays = {("global", ""): analytics.totals(today_flt, cost)["cost_nanousd"]}
    pasts = {("global", ""): analytics.totals(past_flt, cost)["cost_nanousd"]}
    for (team,), m in analytics.grouped(today_flt, ("team",), measures=cost).items():
        if team:
            todays[("team", team)] = m["cost_nanousd"]
    for (team,), m in analytics.grouped(past_flt, ("team",), measures=cost).items():
        if team:
            pasts[("team", team)] = m["cost_nanousd"]
    day = today.date().isoformat()
    out = []
    for (scope, value), spent in todays.items():
        past = pasts.get((scope, value), 0)
        if past <= 0 or spent < rules.spike_min_nanousd:
            continue
        ratio = Decimal(spent * rules.trailing_days) / past
        if ratio < rules.spike_factor:
            continue
        average = past // rules.trailing_days
        who = "all calls" if scope == "global" else f"team {value}"
        out.append(
            Alert(
                kind="spend_spike",
                dedupe_key=f"spike:{scope}:{value}:{day}",
                subject=f"{scope}:{value}" if value else scope,
                period_key=day,
                message=(
                    f"Spend spike for {who}: {_usd(spent)} today ({day}), {ratio:.1f}x the "
                    f"average of {_usd(average)} a day over the last {rules.trailing_days} days"
                ),
                details={
                    "scope": scope,
                    "scope_value": value or None,
                    "day": day,
                    "spent_usd": format_usd(spent),
                    "trailing_average_usd": format_usd(average),
                    "ratio": float(round(ratio, 2)),
                    "factor": float(rules.spike_factor),
                    "trailing_days": rules.trailing_days,
                },
            )
        )
    return out


def evaluate(
    analytics: Analytics, budgets: list[Budget], now: datetime, rules: Rules
) -> list[Alert]:
    """Every alert the current spend calls for (fired or not yet: the store dedupes)."""
    out = []
    for budget in budgets:
        out.extend(budget_alerts(analytics, budget, now, rules))
    out.extend(spike_alerts(analytics, now, rules))
    return out

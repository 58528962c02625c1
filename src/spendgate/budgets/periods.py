"""Calendar periods: budgets reset at midnight, on Mondays or on the 1st in one time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from spendgate.budgets.model import Period


@dataclass(frozen=True)
class PeriodWindow:
    """The period a moment falls in: its key (``2026-11``, ``2026-W47``, ``2026-11-22``,
    ``all``) and its bounds in UTC (None for a budget that never resets)."""

    key: str
    start: datetime | None
    end: datetime | None


def _utc(local: datetime) -> datetime:
    return local.astimezone(UTC)


def period_window(period: Period, at: datetime, zone: ZoneInfo) -> PeriodWindow:
    """The window of ``period`` that contains ``at``, in the calendar of ``zone``."""
    if period == "none":
        return PeriodWindow("all", None, None)
    local = at.astimezone(zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    if period == "daily":
        start = midnight
        end = datetime.combine(start.date() + timedelta(days=1), start.time(), zone)
        return PeriodWindow(start.date().isoformat(), _utc(start), _utc(end))
    if period == "weekly":
        start_date = midnight.date() - timedelta(days=midnight.weekday())
        start = datetime(start_date.year, start_date.month, start_date.day, tzinfo=zone)
        end_date = start_date + timedelta(days=7)
        end = datetime(end_date.year, end_date.month, end_date.day, tzinfo=zone)
        year, week, _ = start_date.isocalendar()
        return PeriodWindow(f"{year}-W{week:02d}", _utc(start), _utc(end))
    start = datetime(local.year, local.month, 1, tzinfo=zone)
    nxt = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=zone)
    return PeriodWindow(f"{local.year}-{local.month:02d}", _utc(start), _utc(nxt))

"""Analytics periods: presets (24h, 7d, 30d, 90d, mtd) and explicit ranges.

Presets end at the top of the next UTC hour, so they cover whole rollup hours
and never touch raw calls (the part of the current hour still to come is empty).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from spendgate.timeparse import TimeError, parse_when, parse_zone

PRESETS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
PRESET_NAMES = (*PRESETS, "mtd")


@dataclass(frozen=True)
class Range:
    """A resolved time range, ``[since, until)`` in UTC, and the zone it was asked in."""

    since: datetime
    until: datetime
    zone: ZoneInfo


def next_hour(now: datetime) -> datetime:
    """The top of the UTC hour after ``now`` (``now`` itself if already on it)."""
    floor = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == now else floor + timedelta(hours=1)


def resolve(
    period: str | None,
    since: str | None,
    until: str | None,
    tz: str | None,
    *,
    now: datetime | None = None,
    default: str = "30d",
) -> Range:
    """The range for a preset or explicit ``since``/``until`` (explicit values win).

    Raises :class:`TimeError` with a message that lists the accepted forms.
    """
    zone = parse_zone(tz)
    now = now or datetime.now(UTC)
    end = parse_when(until, now=now, tz=tz) if until else next_hour(now)
    if since:
        start = parse_when(since, now=now, tz=tz)
    else:
        name = period or default
        if name == "mtd":
            local = now.astimezone(zone)
            start = datetime(local.year, local.month, 1, tzinfo=zone).astimezone(UTC)
        elif name in PRESETS:
            start = end - PRESETS[name]
        else:
            raise TimeError(f"unknown period {name!r}; use one of {', '.join(PRESET_NAMES)}")
    if start >= end:
        raise TimeError("since must be before until")
    return Range(start, end, zone)

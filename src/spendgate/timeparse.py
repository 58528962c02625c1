"""Reading the times people type: RFC 3339, plain dates, and relative spans like ``30d``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_RELATIVE = re.compile(r"^(\d+)\s*(m|h|d|w)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class TimeError(ValueError):
    """A time could not be read; the message shows the accepted forms."""


def parse_zone(name: str | None) -> ZoneInfo:
    """An IANA time zone (default UTC)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimeError(f"unknown time zone {name!r}; use an IANA name like Europe/Paris") from exc


def parse_when(text: str, *, now: datetime | None = None, tz: str | None = None) -> datetime:
    """An aware UTC datetime from RFC 3339, ``YYYY-MM-DD`` (midnight in ``tz``) or ``30d`` ago."""
    now = now or datetime.now(UTC)
    value = text.strip()
    match = _RELATIVE.match(value.lower())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    if value.lower() == "now":
        return now
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise TimeError(
            f"cannot read time {text!r}; use RFC 3339 (2026-11-01T09:00:00Z), "
            "a date (2026-11-01) or a span ago (30d, 12h, 2w)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=parse_zone(tz))
    return parsed.astimezone(UTC)

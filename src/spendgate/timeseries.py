"""Spend over time in a requested time zone, from hourly UTC rollups.

Rollups are hourly in UTC, so a local day is the sum of the UTC hours that
*start* in it. That is exact for every zone whose offset is a whole number of
hours (all of Europe and the Americas); zones with a half- or quarter-hour
offset (India, Nepal, parts of Australia) are approximated to within the
half hour at each end of a bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from spendgate.storage.analytics import Analytics, AnalyticsError, Measures, add_measures, present
from spendgate.storage.calls import rfc3339
from spendgate.storage.rollups_schema import DAY_US, HOUR_US
from spendgate.storage.schema import from_micros
from spendgate.storage.store import CallFilter

Granularity = Literal["hour", "day", "week", "month"]
GRANULARITIES: tuple[str, ...] = ("hour", "day", "week", "month")


def bucket_start(at: datetime, granularity: str, zone: ZoneInfo) -> datetime:
    """The local start of the bucket ``at`` falls in (aware, in ``zone``)."""
    local = at.astimezone(zone)
    if granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = datetime(local.year, local.month, local.day, tzinfo=zone)
    if granularity == "day":
        return day
    if granularity == "week":
        monday = day.date() - timedelta(days=day.weekday())
        return datetime(monday.year, monday.month, monday.day, tzinfo=zone)
    if granularity == "month":
        return datetime(local.year, local.month, 1, tzinfo=zone)
    raise AnalyticsError(f"unknown granularity {granularity!r}; use hour, day, week or month")


def next_bucket(start: datetime, granularity: str, zone: ZoneInfo) -> datetime:
    """The start of the bucket after the one starting at ``start``."""
    if granularity == "hour":
        return (start.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)
    if granularity == "month":
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return datetime(year, month, 1, tzinfo=zone)
    days = 1 if granularity == "day" else 7
    following = start.date() + timedelta(days=days)
    return datetime(following.year, following.month, following.day, tzinfo=zone)


def buckets(
    since: datetime, until: datetime, granularity: str, zone: ZoneInfo
) -> Iterator[datetime]:
    """Every bucket start from the one holding ``since`` up to ``until`` (exclusive)."""
    start = bucket_start(since, granularity, zone)
    while start < until:
        yield start
        start = next_bucket(start, granularity, zone)


def timeseries(
    analytics: Analytics,
    flt: CallFilter,
    *,
    granularity: str = "day",
    zone: ZoneInfo | None = None,
    stack: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Measures per local bucket, optionally split by one dimension; empty buckets included."""
    zone = zone or ZoneInfo("UTC")
    if granularity not in GRANULARITIES:
        raise AnalyticsError(f"unknown granularity {granularity!r}; use hour, day, week or month")
    until = flt.until or now or datetime.now(UTC)
    since = flt.since or until - timedelta(days=30)
    if granularity == "hour" and until - since > timedelta(days=93):
        raise AnalyticsError("hourly timeseries cover at most 93 days; use day granularity")
    flt = replace(flt, since=since, until=until)
    totals: dict[datetime, Measures] = {}
    stacks: dict[datetime, dict[Any, Measures]] = {}
    # UTC days can come from daily rollups; local days are assembled from UTC hours.
    grain = DAY_US if granularity != "hour" and zone.key == "UTC" else HOUR_US
    starts: dict[int, datetime] = {}  # a few hundred distinct hours; zone maths is slow
    for key, measures in analytics.series(flt, stack, grain=grain).items():
        at = int(key[0])
        start = starts.get(at) or starts.setdefault(
            at, bucket_start(from_micros(at), granularity, zone)
        )
        add_measures(totals.setdefault(start, {}), measures)
        if stack is not None:
            value = key[1] if key[1] not in ("", 0) else None
            add_measures(stacks.setdefault(start, {}).setdefault(value, {}), measures)
    data = []
    for start in buckets(since, until, granularity, zone):
        point: dict[str, Any] = {"start": start.isoformat(), **present(totals.get(start, {}))}
        if stack is not None:
            series = sorted(
                stacks.get(start, {}).items(), key=lambda kv: -kv[1].get("cost_nanousd", 0)
            )
            point["series"] = [{"key": k, **present(m)} for k, m in series]
        data.append(point)
    return {
        "granularity": granularity,
        "tz": zone.key,
        "stack": stack,
        "since": rfc3339(since),
        "until": rfc3339(until),
        "data": data,
    }

"""A rate limit's standing: its definition and its fullest buckets, for the API and CLI."""

from __future__ import annotations

from typing import Any

from spendgate.limits.model import RateLimit
from spendgate.storage.limits import MINUTE_US, LimitStore


def limit_report(store: LimitStore, limit: RateLimit, now_us: int) -> dict[str, Any]:
    """The limit with, per busiest subject, the units in use of each rate and refusals."""
    buckets = []
    for subject, level in store.levels(limit, now_us):
        used = {}
        for metric in limit.metrics:
            rate = limit.per_minute(metric)
            assert rate is not None
            used[metric] = {
                "in_use": level.used(metric),
                "limit": rate,
                "percent": round(level.of(metric) * 100 / (rate * MINUTE_US), 1),
            }
        buckets.append({"subject": subject or None, "usage": used, "refused": level.refused})
    return {**limit.to_api(), "buckets": buckets}

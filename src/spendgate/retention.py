"""Retention of raw calls: delete those older than N days, keep the rollups.

Reports and budgets read rollups and counters, so they still show pruned
calls; only the request log and raw exports lose them. Deletion goes one day
of calls per transaction, so a first run over a large backlog never holds a
long write lock (SQLite) or a huge transaction (PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from spendgate.records import utcnow
from spendgate.storage import CallFilter, Store
from spendgate.storage.maintenance import call_time_range

STEP = timedelta(days=1)


def prune_calls(store: Store, *, before: datetime) -> int:
    """Delete raw calls made before ``before``, a day at a time; returns how many went."""
    oldest, _ = call_time_range(store)
    deleted = 0
    while oldest is not None and oldest < before:
        until = min(oldest + STEP, before)
        deleted += store.delete_calls(CallFilter(until=until))
        oldest = until
    return deleted


def apply_retention(store: Store, days: int, *, now: datetime | None = None) -> int:
    """Delete raw calls older than ``days`` days (0 keeps everything)."""
    if days <= 0:
        return 0
    return prune_calls(store, before=(now or utcnow()) - timedelta(days=days))

"""``spendgate tail`` shows every call once, long streams recorded late included."""

from __future__ import annotations

from datetime import timedelta

from spendgate.cli.reports import TailWatcher
from spendgate.records import CallRecord
from spendgate.storage import Store
from spendgate.testing.traffic import T0


def _call(minutes: float, name: str) -> CallRecord:
    return CallRecord(
        created_at=T0 + timedelta(minutes=minutes), status_code=200, model=name, id=name
    )


def test_tail_sees_late_recorded_calls_once(store: Store) -> None:
    store.insert_calls([_call(m, f"c{m:02d}") for m in range(5)])
    watcher = TailWatcher(store)
    assert [c["id"] for c in watcher.recent(3)] == ["c02", "c03", "c04"]
    assert watcher.poll() == []
    # A stream that started at minute 1 ends now and is recorded after c04.
    store.insert_calls([_call(1.5, "late"), _call(6, "c06")])
    assert [c["id"] for c in watcher.poll()] == ["late", "c06"]
    assert watcher.poll() == []
    store.insert_calls([_call(7, "c07")])
    assert [c["id"] for c in watcher.poll()] == ["c07"]
    # Older than the lookback window: no longer watched (bounded memory and reads).
    store.insert_calls([_call(7 - 16, "ancient")])
    assert watcher.poll() == []
    assert set(watcher.seen) <= {"c02", "c03", "c04", "late", "c06", "c07"} | {"c00", "c01"}

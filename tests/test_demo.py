"""``spendgate demo`` records priced traffic through the real path, idempotently."""

from __future__ import annotations

from datetime import UTC, datetime

from spendgate.demo import DEPARTMENTS, fill
from spendgate.pricing import PriceBook
from spendgate.storage import CallFilter, Store
from spendgate.storage.analytics import Analytics
from spendgate.testing.traffic import KEYS, raw_sums

END = datetime(2026, 11, 20, tzinfo=UTC)


def test_demo_fills_every_view(store: Store) -> None:
    book = PriceBook.load()
    written = fill(store, book, days=7, calls_per_day=200, end=END)
    assert written > 500
    assert fill(store, book, days=7, calls_per_day=200, end=END) == 0
    analytics = Analytics(store)
    got = analytics.summary(CallFilter(), compare=False)
    assert {k: got[k] for k in KEYS} == raw_sums(store, CallFilter())
    assert got["unpriced_calls"] == 0 and got["errors"] > 0
    teams = {r["key"] for r in analytics.breakdown(CallFilter(), "team")["data"]}
    assert teams == {d.team for d in DEPARTMENTS}
    assert analytics.sessions(CallFilter())
    assert int(got["cache_read_input_tokens"]) > 0

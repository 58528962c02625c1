"""Analytics from rollups equal sums over raw calls, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from spendgate.records import CallRecord
from spendgate.storage import CallFilter, Store
from spendgate.storage.analytics import Analytics
from spendgate.storage.rollups_schema import rollup_hourly
from spendgate.testing.traffic import KEYS, MODELS, T0, random_record, raw_sums
from spendgate.timeseries import timeseries


def test_rollups_equal_raw_sums(store: Store) -> None:
    rng = random.Random(5)
    records = [random_record(rng) for _ in range(600)]
    for i in range(0, len(records), 97):
        store.insert_calls(records[i : i + 97])
    store.insert_calls(records[:50])  # replayed batch: must not double count
    an = Analytics(store)
    ranges = [(None, None)] + [
        (
            T0 + timedelta(minutes=rng.randrange(0, 72 * 60), seconds=rng.random()),
            T0 + timedelta(minutes=rng.randrange(0, 80 * 60)),
        )
        for _ in range(12)
    ]
    ranges.append((T0 + timedelta(hours=3), T0 + timedelta(hours=40)))
    for since, until in ranges:
        for extra in ({}, {"team": "Engineering"}, {"model": MODELS[0]}, {"status": "error"}):
            flt = CallFilter(since=since, until=until, **extra)
            got = an.summary(flt, compare=False)
            assert {k: got[k] for k in KEYS} == raw_sums(store, flt), (since, until, extra)
        flt = CallFilter(since=since, until=until)
        rows = an.breakdown(flt, "team")["data"]
        for row in rows:
            expected = raw_sums(store, CallFilter(since=since, until=until, team=row["key"]))
            if row["key"] is None:
                continue
            assert {k: row[k] for k in KEYS} == expected
        tagged = an.breakdown(flt, "tag")["data"]
        for row in tagged:
            expected = raw_sums(store, CallFilter(since=since, until=until, tag=row["key"]))
            assert {k: row[k] for k in KEYS} == expected


def test_timeseries_sums_to_summary(store: Store) -> None:
    rng = random.Random(7)
    store.insert_calls([random_record(rng) for _ in range(300)])
    an = Analytics(store)
    from zoneinfo import ZoneInfo

    flt = CallFilter(since=T0, until=T0 + timedelta(days=3))
    for tz in ("UTC", "America/New_York", "Asia/Tokyo"):
        series = timeseries(an, flt, granularity="day", zone=ZoneInfo(tz), stack="model")
        total = sum(int(p["calls"]) for p in series["data"])
        assert total == raw_sums(store, flt)["calls"]
        for point in series["data"]:
            assert sum(s["calls"] for s in point["series"]) == point["calls"]


def test_percentiles_are_close(store: Store) -> None:
    recs = [
        CallRecord(created_at=T0 + timedelta(seconds=i), status_code=200, latency_ms=100.0 + i)
        for i in range(1000)
    ]
    store.insert_calls(recs)
    lat = Analytics(store).summary(CallFilter())["latency_ms"]
    assert abs(lat["p50"] - 600) / 600 < 0.2
    assert abs(lat["p95"] - 1050) / 1050 < 0.2
    assert lat["count"] == 1000


@pytest.mark.postgres
def test_concurrent_writers_keep_rollups_exact(pg_url: str) -> None:
    stores = [Store.open(pg_url) for _ in range(3)]
    rng = random.Random(11)
    batches = [[random_record(rng, span_hours=3) for _ in range(40)] for _ in range(30)]

    def write(store: Store, mine: list[list[CallRecord]]) -> None:
        for batch in mine:
            store.insert_calls(batch)

    threads = [
        threading.Thread(target=write, args=(s, batches[i::3])) for i, s in enumerate(stores)
    ]
    # Every store also replays someone else's batches: duplicates must be skipped.
    threads += [
        threading.Thread(target=write, args=(s, batches[(i + 1) % 3 :: 3]))
        for i, s in enumerate(stores)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = Analytics(stores[0]).summary(CallFilter(), compare=False)
    assert {k: got[k] for k in KEYS} == raw_sums(stores[0], CallFilter())
    with stores[0].engine.connect() as conn:
        assert conn.execute(select(func.sum(rollup_hourly.c.calls))).scalar() == 1200
    for s in stores:
        s.close()


def test_rebuild_and_prune_keep_rollups(store: Store, db_url: str) -> None:
    from click.testing import CliRunner

    from spendgate.cli.main import cli

    rng = random.Random(2)
    store.insert_calls([random_record(rng) for _ in range(200)])
    before = Analytics(store).summary(CallFilter(), compare=False)
    runner = CliRunner()
    out = runner.invoke(cli, ["db", "rebuild-rollups", "--database-url", db_url])
    assert out.exit_code == 0 and "200" in out.output, out.output
    assert Analytics(store).summary(CallFilter(), compare=False) == before
    out = runner.invoke(cli, ["db", "prune", "--older-than", "2000-01-01", "--yes",
                              "--database-url", db_url])  # fmt: skip
    assert out.exit_code == 0, out.output
    prune = runner.invoke(
        cli, ["db", "prune", "--older-than", "2030-01-01", "--yes", "--database-url", db_url]
    )
    assert "deleted 200" in prune.output
    assert store.count_calls(CallFilter()) == 0
    assert Analytics(store).summary(CallFilter(since=T0, until=T0 + timedelta(days=4)),
                                    compare=False)["calls"] == 200  # fmt: skip

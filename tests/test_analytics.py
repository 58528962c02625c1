"""Analytics from rollups equal sums over raw calls, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from spendgate.money import format_usd
from spendgate.records import CallRecord
from spendgate.storage import CallFilter, Store
from spendgate.storage.analytics import Analytics
from spendgate.storage.calls import rfc3339
from spendgate.storage.rollups_schema import rollup_hourly
from spendgate.storage.schema import calls, to_micros
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
    extras: list[dict[str, str]] = [
        {},
        {"team": "Engineering"},
        {"model": MODELS[0]},
        {"status": "error"},
        {"user": "ann"},
        {"key_id": "k1", "project": "app"},
        {"tag": "prod"},
    ]
    for since, until in ranges:
        for extra in extras:
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
        for by, attr in (("user", "user"), ("key", "key_id"), ("project", "project")):
            for row in an.breakdown(flt, by)["data"]:
                if row["key"] is None:
                    continue
                scoped = CallFilter(since=since, until=until, **{attr: row["key"]})
                assert {k: row[k] for k in KEYS} == raw_sums(store, scoped), (by, since, until)
                errors = CallFilter(since=since, until=until, status="error", **{attr: row["key"]})
                assert row["errors"] == store.count_calls(errors)
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


def test_daily_rollups_answer_whole_days(store: Store) -> None:
    """Whole UTC days come from the daily rollups and agree with the hourly ones."""
    from spendgate.storage.cubes import DAILY, FULL, TAGS_DAILY, AnalyticsError
    from spendgate.storage.cubes import plan as _plan

    rng = random.Random(13)
    store.insert_calls([random_record(rng) for _ in range(400)])
    week = CallFilter(since=T0, until=T0 + timedelta(days=3))
    assert _plan(week, ("user_name",), ("calls",)).daily is DAILY
    assert _plan(CallFilter(status="error"), ("user_name",), ("calls",)).daily is None
    assert _plan(week, ("tag",), ("calls", "cost_nanousd")).daily is TAGS_DAILY
    with pytest.raises(AnalyticsError, match="not kept per tag"):
        _plan(week, ("tag",), ("lat_h01",))
    tagged = Analytics(store).summary(replace(week, tag="prod"), compare=False)
    assert tagged["latency_ms"] is None and tagged["cost_breakdown_usd"] is None
    assert tagged["calls"] == store.count_calls(replace(week, tag="prod"))
    assert _plan(week, ("endpoint",), ("calls",)).hourly is FULL
    an = Analytics(store)
    by_user = an.grouped(week, ("user_name",), grain=86_400_000_000)
    hourly = an.grouped(week, ("user_name",), grain=3_600_000_000)
    for (day, user), m in by_user.items():
        same_day = [
            v for (h, u), v in hourly.items() if u == user and h - h % 86_400_000_000 == day
        ]
        assert m["cost_nanousd"] == sum(v["cost_nanousd"] for v in same_day)
        assert m["lat_h05"] == sum(v["lat_h05"] for v in same_day)


def test_migration_backfills_daily_rollups(tmp_path: object) -> None:
    """Upgrading a database whose hourly rollups predate the daily ones fills them in."""
    from alembic import command
    from sqlalchemy import text

    from spendgate.storage.migrate import _config

    url = f"sqlite:///{tmp_path}/old.db"
    store = Store.open(url)
    rng = random.Random(21)
    store.insert_calls([random_record(rng) for _ in range(300)])
    before = Analytics(store).breakdown(CallFilter(since=T0, until=T0 + timedelta(days=3)), "user")
    config = _config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0005")  # the revision before the daily rollups
    with store.engine.connect() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
    assert "rollup_daily" not in names and "rollup_hourly" in names
    store.upgrade()
    after = Analytics(store).breakdown(CallFilter(since=T0, until=T0 + timedelta(days=3)), "user")
    assert after == before
    store.close()


def test_ragged_ranges_use_raw_calls_exactly(store: Store) -> None:
    """Partial hours at the edges: database sums (breakdowns) and Python folding (summary)."""
    rng = random.Random(17)
    store.insert_calls([random_record(rng, span_hours=6) for _ in range(500)])
    an = Analytics(store)
    since = T0 + timedelta(minutes=37, seconds=11)
    until = T0 + timedelta(hours=4, minutes=5)
    flt = CallFilter(since=since, until=until)
    got = an.summary(flt, compare=False)
    assert {k: got[k] for k in KEYS} == raw_sums(store, flt)
    assert got["errors"] == store.count_calls(CallFilter(since=since, until=until, status="error"))
    for by in ("model", "user", "status", "endpoint", "context_window"):
        rows = an.breakdown(flt, by)["data"]
        assert sum(r["calls"] for r in rows) == raw_sums(store, flt)["calls"], by
    ok = an.breakdown(replace(flt, status="ok"), "team")["data"]
    assert sum(r["calls"] for r in ok) == store.count_calls(replace(flt, status="ok"))


def test_a_batch_repeating_a_record_counts_it_once(store: Store) -> None:
    rng = random.Random(23)
    records = [random_record(rng) for _ in range(20)]
    assert store.insert_calls(records[:5] + records[:5]) == 5
    assert store.insert_calls(records + records[3:9]) == 15
    got = Analytics(store).summary(CallFilter(), compare=False)
    assert got["calls"] == 20
    assert {k: got[k] for k in KEYS} == raw_sums(store, CallFilter())


def test_awkward_names_round_trip_through_the_rollups(store: Store) -> None:
    """Quotes, backslashes, commas, braces and spaces in dimensions (PostgreSQL writes
    rollups as array literals) come back exactly, with exact sums."""
    names = ['say "hi"', "back\\slash", "a,b", "{braces}", " NULL ", "Ünïcode ✓", 'x\\"y']
    rng = random.Random(31)
    records = []
    for i in range(140):
        name = names[i % len(names)]
        record = random_record(rng)
        attribution = replace(
            record.attribution, team=name, user=name, project=name, tags=[name], session_id=name
        )
        records.append(replace(record, attribution=attribution))
    store.insert_calls(records)
    an = Analytics(store)
    flt = CallFilter()
    by_team: dict[str, dict[str, object]] = {}
    for by, attr in (("team", "team"), ("user", "user"), ("project", "project")):
        rows = an.breakdown(flt, by)["data"]
        assert sorted(r["key"] for r in rows) == sorted(names), by
        for row in rows:
            expected = raw_sums(store, CallFilter(**{attr: row["key"]}))
            assert {k: row[k] for k in KEYS} == expected, (by, row["key"])
            if by == "team":
                by_team[row["key"]] = {k: row[k] for k in KEYS}
    # Each call's only tag is its team name (the raw tag filter matches JSON text,
    # so it is not the reference here).
    tags = {r["key"]: {k: r[k] for k in KEYS} for r in an.breakdown(flt, "tag")["data"]}
    assert tags == by_team
    sessions = {s["session_id"] for s in an.sessions(flt)}
    assert sessions == set(names)


def test_session_rollups_equal_raw_calls(store: Store) -> None:
    """Per session: calls, errors, tokens, cost and first/last call time, written in
    batches that split sessions and days, equal what the raw calls say."""
    rng = random.Random(41)
    records = [random_record(rng, span_hours=80) for _ in range(700)]
    rng.shuffle(records)  # batches out of time order: first/last must still be min/max
    for i in range(0, len(records), 61):
        store.insert_calls(records[i : i + 61])
    got = {s["session_id"]: s for s in Analytics(store).sessions(CallFilter())}
    sums: dict[str, list[int]] = {}
    times: dict[str, list[datetime]] = {}
    for r in records:
        sid = r.attribution.session_id
        if sid:
            add = (1, r.status_code != 200, r.usage.input_tokens, r.usage.output_tokens)
            old = sums.get(sid, [0] * 5)
            sums[sid] = [a + b for a, b in zip(old, (*add, r.cost_nanousd or 0), strict=True)]
            times.setdefault(sid, []).append(r.created_at)
    assert set(got) == set(sums)
    for sid, (n, errors, inp, out, cost) in sums.items():
        s = got[sid]
        assert (s["calls"], s["errors"], s["input_tokens"], s["output_tokens"]) == (
            n,
            errors,
            inp,
            out,
        )
        assert s["cost_usd"] == format_usd(cost)
        assert (s["first_at"], s["last_at"]) == (rfc3339(min(times[sid])), rfc3339(max(times[sid])))


def test_a_range_that_ends_now_reads_the_current_hour_from_its_rollup(store: Store) -> None:
    """Alert rules and forecasts ask "until now": the rest of the hour is still to come,
    so the hour's rollup row answers exactly and its raw calls are not read (a row per
    call so far this hour, folded in Python, made a busy gateway's alert loop take
    half its CPU). A range that ends in the past still reads its partial hour raw."""
    rng = random.Random(11)
    now = T0 + timedelta(hours=12, minutes=30)
    store.clock = lambda: to_micros(now)
    records = [
        replace(random_record(rng), created_at=now - timedelta(minutes=29, seconds=i))
        for i in range(40)
    ]
    store.insert_calls(records)
    an = Analytics(store)
    hour = T0 + timedelta(hours=12)
    until_now = CallFilter(since=hour, until=now)
    expected = raw_sums(store, until_now)
    assert expected["calls"] == 40
    assert {k: an.summary(until_now, compare=False)[k] for k in KEYS} == expected
    # The proof that the raw calls are not read: without them the answer is the same.
    with store.engine.begin() as conn:
        conn.execute(calls.delete())
    assert {k: an.summary(until_now, compare=False)[k] for k in KEYS} == expected
    later = CallFilter(since=hour, until=now + timedelta(minutes=10))
    assert {k: an.summary(later, compare=False)[k] for k in KEYS} == expected
    # Ending a moment ago, the partial hour is the raw calls' (none are left).
    past = CallFilter(since=hour, until=now - timedelta(seconds=1))
    assert an.summary(past, compare=False)["calls"] == 0

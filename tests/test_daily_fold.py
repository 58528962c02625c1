"""The daily rollups lag the hourly ones by the hours that have not closed yet.

A live writer upserts each call into the hourly rollups only; once an hour has closed
it is folded into the daily rollups in SQL and ``rollup_state.daily_through`` moves
past it. Calls for hours already folded (late records, imports, repricing) go into
both. Whatever the mark, every analytics answer equals the sums over raw calls, and
once everything is folded the daily rollups hold every call exactly once.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import ColumnElement, func, select, update

from spendgate.records import CallRecord
from spendgate.storage import CallFilter, Store
from spendgate.storage.analytics import Analytics
from spendgate.storage.cubes import DAILY, FULL, Plan, segments
from spendgate.storage.rollups import daily_through
from spendgate.storage.rollups_schema import (
    DAY_US,
    HOUR_US,
    rollup_daily,
    rollup_hourly,
    rollup_narrow_daily,
    rollup_state,
    rollup_tags_daily,
    rollup_tags_hourly,
)
from spendgate.storage.schema import calls, from_micros, to_micros
from spendgate.testing.traffic import KEYS, T0, random_record, raw_sums

T0_US = to_micros(T0)


def _set_mark(store: Store, mark: int, now: int) -> None:
    """As if a gateway had recorded live since ``mark`` and it were now ``now``."""
    with store.engine.begin() as conn:
        conn.execute(update(rollup_state).values(daily_through=mark))
    store.clock = lambda: now
    store._daily_through = None


def _total(store: Store, column: ColumnElement[int]) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(column), 0))).scalar() or 0)


def _calls_before(store: Store, mark: int) -> int:
    stmt = select(func.count()).select_from(calls).where(calls.c.created_at < from_micros(mark))
    with store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar() or 0)


def _answers_match(store: Store, rng: random.Random) -> None:
    an = Analytics(store)
    ranges = [(None, None), (T0, T0 + timedelta(days=3)), (T0 + timedelta(hours=20), None)]
    ranges += [
        (
            T0 + timedelta(minutes=rng.randrange(0, 72 * 60)),
            T0 + timedelta(minutes=rng.randrange(72 * 60, 80 * 60)),
        )
        for _ in range(4)
    ]
    for since, until in ranges:
        for extra in ({}, {"team": "Engineering"}, {"user": "ann"}, {"tag": "prod"}):
            flt = CallFilter(since=since, until=until, **extra)
            got = an.summary(flt, compare=False)
            assert {k: got[k] for k in KEYS} == raw_sums(store, flt), (since, until, extra)
        flt = CallFilter(since=since, until=until)
        for by, attr in (("user", "user"), ("project", "project"), ("tag", "tag")):
            for row in an.breakdown(flt, by)["data"]:
                if row["key"] is None:
                    continue
                scoped = CallFilter(since=since, until=until, **{attr: row["key"]})
                assert {k: row[k] for k in KEYS} == raw_sums(store, scoped), (by, since, until)


def test_hours_after_the_mark_stay_hourly_until_folded(store: Store) -> None:
    rng = random.Random(3)
    mark = T0_US + 30 * HOUR_US  # mid-morning of the second day
    _set_mark(store, mark, now=mark + 30 * 60 * 1_000_000)  # half an hour later
    records = [random_record(rng) for _ in range(500)]  # over 72 hours from T0
    for i in range(0, len(records), 61):
        store.insert_calls(records[i : i + 61])
    assert store.daily_through() == mark  # the current hour has not closed: no fold
    # The daily rollups hold exactly the calls before the mark; the hourly ones all.
    before = _calls_before(store, mark)
    assert 0 < before < len(records)
    assert _total(store, rollup_daily.c.calls) == before
    assert _total(store, rollup_narrow_daily.c.calls) == before
    assert _total(store, rollup_hourly.c.calls) == len(records)
    _answers_match(store, rng)

    # A late call for an hour before the mark goes into the daily rollups at once.
    late = CallRecord(created_at=T0 + timedelta(hours=2), status_code=200, model="m-late")
    store.insert_calls([late])
    assert _total(store, rollup_daily.c.calls) == before + 1

    # Time passes: each fold moves the mark to the start of the previous hour.
    for hours in (33, 47, 75):
        now = T0_US + hours * HOUR_US + 5 * 60 * 1_000_000
        assert store.fold_daily(now=from_micros(now)) == now - now % HOUR_US - HOUR_US
        mark = store.daily_through()
        assert _total(store, rollup_daily.c.calls) == _calls_before(store, mark)
        _answers_match(store, rng)
    assert _total(store, rollup_daily.c.calls) == len(records) + 1
    assert _total(store, rollup_tags_daily.c.calls) == _total(store, rollup_tags_hourly.c.calls)
    assert store.fold_daily(now=T0) == mark  # the mark never moves back


def test_the_writer_folds_closed_hours_by_itself(store: Store) -> None:
    rng = random.Random(4)
    mark = T0_US + 10 * HOUR_US
    _set_mark(store, mark, now=mark + 10 * 60 * 1_000_000)
    store.insert_calls([random_record(rng, span_hours=24) for _ in range(200)])
    assert store.daily_through() == mark
    store.clock = lambda: T0_US + 20 * HOUR_US + 1  # ten hours later
    store.insert_calls([random_record(rng, span_hours=24) for _ in range(10)])
    assert store.daily_through() == T0_US + 19 * HOUR_US
    assert _total(store, rollup_daily.c.calls) == _calls_before(store, T0_US + 19 * HOUR_US)
    _answers_match(store, rng)


def test_folding_while_writers_write_counts_every_call_once(store: Store, db_url: str) -> None:
    """Writers in other connections (processes, on PostgreSQL) write the hours a fold
    is moving past: each call still reaches the daily rollups exactly once."""
    rng = random.Random(9)
    start = T0_US
    _set_mark(store, start, now=start)
    writers = [Store.open(db_url) for _ in range(2)]
    for w in writers:
        w.clock = lambda: start  # their own automatic folds stay out of the way
    batches = [[random_record(rng, span_hours=12) for _ in range(25)] for _ in range(40)]
    done = threading.Event()

    def write(w: Store, mine: list[list[CallRecord]]) -> None:
        for batch in mine:
            w.insert_calls(batch)

    def fold() -> None:
        hour = 1
        while not done.is_set() and hour < 14:
            store.fold_daily(now=from_micros(start + hour * HOUR_US + HOUR_US))
            hour += 1

    threads = [
        threading.Thread(target=write, args=(w, batches[i::2])) for i, w in enumerate(writers)
    ]
    folder = threading.Thread(target=fold)
    for t in (*threads, folder):
        t.start()
    for t in threads:
        t.join()
    done.set()
    folder.join()
    store.fold_daily(now=from_micros(start + 14 * HOUR_US))
    total = sum(len(b) for b in batches)
    assert _total(store, rollup_hourly.c.calls) == total
    assert _total(store, rollup_daily.c.calls) == total
    assert _total(store, rollup_narrow_daily.c.calls) == total
    assert _total(store, rollup_tags_daily.c.calls) == _total(store, rollup_tags_hourly.c.calls)
    _answers_match(store, rng)
    for w in writers:
        w.close()


def test_segments_take_whole_days_only_before_the_marks_day() -> None:
    plan = Plan(FULL, DAILY)
    day0 = T0_US
    since, until = day0, day0 + 5 * DAY_US
    # Mark at 10:00 on day 3: days 0-2 daily, day 3 on hourly.
    mark = day0 + 3 * DAY_US + 10 * HOUR_US
    assert segments(plan, since, until, None, mark) == [
        (DAILY, day0, day0 + 3 * DAY_US),
        (FULL, day0 + 3 * DAY_US, until),
    ]
    assert segments(plan, since, until, None, None) == [(DAILY, since, until)]
    # Open-ended: the daily rollups up to the mark's day, then hourly to the end.
    assert segments(plan, since, None, None, mark) == [
        (DAILY, since, day0 + 3 * DAY_US),
        (FULL, day0 + 3 * DAY_US, None),
    ]
    # The mark before the range: hourly only.
    assert segments(plan, since, until, None, day0 - HOUR_US) == [(FULL, since, until)]


def test_the_mark_migration_goes_down_and_up(store: Store) -> None:
    """Going down folds the hours after the mark in (older code reads whole days from
    the daily rollups); going up starts the mark after the latest hour recorded."""
    from alembic import command

    from spendgate.storage.migrate import _config

    rng = random.Random(12)
    mark = T0_US + 40 * HOUR_US
    _set_mark(store, mark, now=mark)
    records = [random_record(rng) for _ in range(300)]
    store.insert_calls(records)
    assert _total(store, rollup_daily.c.calls) == _calls_before(store, mark) < len(records)
    config = _config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0008")
    assert _total(store, rollup_daily.c.calls) == len(records)
    assert _total(store, rollup_narrow_daily.c.calls) == len(records)
    assert _total(store, rollup_tags_daily.c.calls) == _total(store, rollup_tags_hourly.c.calls)
    store.upgrade()
    with store.engine.connect() as conn:
        latest = conn.execute(select(func.max(rollup_hourly.c.hour))).scalar()
    assert store.daily_through(max_age=0) >= int(latest) + HOUR_US
    _answers_match(store, rng)


@pytest.mark.postgres
def test_a_waiting_fold_goes_before_writers_that_come_after_it(pg_url: str) -> None:
    """On PostgreSQL a fold waiting for a writer's share lock is not overtaken by later
    writers (a row lock would let them in, and a steady overlap would starve it)."""
    store = Store.open(pg_url)
    _set_mark(store, T0_US, now=T0_US)
    first = store.engine.connect()
    first.begin()
    daily_through(first, share=True)  # what a writer's batch does
    folded: list[int] = []
    folder = threading.Thread(
        target=lambda: folded.append(store.fold_daily(now=from_micros(T0_US + 5 * HOUR_US)))
    )
    folder.start()
    time.sleep(0.3)  # the fold is now waiting for ``first``
    later = store.engine.connect()
    later.begin()
    later.exec_driver_sql("SET LOCAL lock_timeout = '300ms'")
    with pytest.raises(psycopg.errors.LockNotAvailable, match="lock timeout"):
        daily_through(later, share=True)
    later.close()
    first.commit()
    first.close()
    folder.join(10)
    assert folded == [T0_US + 4 * HOUR_US]
    store.close()

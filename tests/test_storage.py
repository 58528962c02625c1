"""The store's contract, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, select

from spendgate.records import Attribution, CallRecord
from spendgate.storage import CallFilter, Store
from spendgate.storage import store as store_module
from spendgate.storage.calls import row_to_record
from spendgate.storage.engine import (
    READER_CACHE_KIB,
    WRITER_CACHE_KIB,
    StorageError,
    make_engine,
)
from spendgate.storage.rollups import ROLLUP_TABLES, call_item, rebuild_rollups
from spendgate.storage.schema import calls
from spendgate.storage.store import _PACE_ROWS
from spendgate.usage import Usage

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make(i: int, **kw: object) -> CallRecord:
    values: dict[str, object] = {
        "created_at": T0 + timedelta(minutes=i),
        "status_code": 200,
        "model": "claude-sonnet-4-5",
        "usage": Usage.from_raw({"input_tokens": 10 + i, "output_tokens": 5}),
        "cost_nanousd": 1_000_000 + i,
        "pricing_status": "priced",
        "attribution": Attribution(user=f"user{i % 3}", project="p", tags=["a", f"t{i % 2}"]),
    }
    values.update(kw)
    return CallRecord(**values)  # type: ignore[arg-type]


def test_insert_is_idempotent(store: Store) -> None:
    recs = [make(i) for i in range(5)]
    assert store.insert_calls(recs) == 5
    assert store.insert_calls(recs) == 0
    assert store.insert_calls([*recs, make(99)]) == 1
    assert store.count_calls(CallFilter()) == 6


def _rollup_contents(store: Store) -> dict[str, list[tuple[object, ...]]]:
    contents = {}
    with store.engine.connect() as conn:
        for table in ROLLUP_TABLES:
            columns = [c for c in table.c if c.name != "id"]
            contents[table.name] = sorted(tuple(row) for row in conn.execute(select(*columns)))
    return contents


_SMALL_SLICES = 8  # PostgreSQL's rows per slice in the tests that use small_slices


def _insert_paces(store: Store, rows: int) -> int:
    """The paces between a paced insert's slices of ``rows`` rows (of one NULL pattern
    on SQLite): between its statements; on PostgreSQL, between the COPY's slices and
    between the moves (at most 8 of them, of ``_SMALL_SLICES`` rows or more)."""
    if store.dialect == "postgresql":
        slices = -(-rows // max(_SMALL_SLICES, -(-rows // 8)))
        return 2 * (slices - 1)
    return -(-rows // _PACE_ROWS) - 1


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL's slices as small as SQLite's, so a test batch has several."""
    monkeypatch.setattr(store_module, "_PACE_ROWS_POSTGRES", _SMALL_SLICES)


@pytest.mark.usefixtures("small_slices")
def test_a_paced_batch_rolls_up_exactly_the_calls_it_inserts(store: Store) -> None:
    """The writer process folds a batch's rollups before its transaction and naps
    between slices of the work: what a batch that repeats stored calls adds is still
    exactly its new calls, over several hours, tags and sessions."""

    def spread(i: int) -> CallRecord:
        who = Attribution(user=f"u{i % 3}", tags=["a", f"t{i % 2}"], session_id=f"s{i % 4}")
        return make(i, created_at=T0 + timedelta(minutes=7 * i), attribution=who)

    stored = [spread(i) for i in range(10)]
    store.insert_calls(stored)
    batch = [*stored[:4], *(spread(i) for i in range(10, 60))]
    paces: list[int] = []
    assert store.insert_items([call_item(r) for r in batch], pace=lambda: paces.append(1)) == 50
    # After each of the fold's 4 slices of 16 calls, between the insert's 7 slices of
    # 8 rows, and before the rollups' upserts.
    assert len(paces) == 4 + _insert_paces(store, 54) + 1
    assert store.count_calls(CallFilter()) == 60
    written = _rollup_contents(store)
    assert written["rollup_sessions_daily"] and written["rollup_tags_hourly"]
    rebuild_rollups(store.engine, [list(store.iter_call_rows(CallFilter()))])
    assert written == _rollup_contents(store)


@pytest.mark.usefixtures("small_slices")
def test_a_paced_batch_of_mixed_rows_and_repeats_rolls_up_each_call_once(store: Store) -> None:
    """Rows with different NULL columns go in separate insert statements on SQLite,
    and a call repeated within the batch, or stored already, falls in another slice
    than its first copy: each is stored and rolled up once."""

    def mixed(i: int) -> CallRecord:
        record = make(i, created_at=T0 + timedelta(minutes=5 * i))
        if i % 3 == 0:
            record.attribution.session_id = f"s{i % 2}"
        if i % 4 == 1:
            record.cost_nanousd = None
            record.pricing_status = "unpriced"
        if i % 5 == 2:
            record.status_code, record.error_type = 529, "overloaded_error"
        return record

    stored = [mixed(i) for i in range(6)]
    store.insert_calls(stored)
    fresh = [mixed(i) for i in range(6, 40)]
    batch = [fresh[0], *fresh[1:20], stored[2], fresh[0], *fresh[20:], stored[5], fresh[3]]
    paces: list[int] = []
    assert store.insert_items([call_item(r) for r in batch], pace=lambda: paces.append(1)) == 34
    if store.dialect == "postgresql":  # the fold's 3 slices, 5 of the insert's
        assert len(paces) == 3 + _insert_paces(store, len(batch)) + 1
    else:  # a statement per NULL pattern and slice
        assert len(paces) >= 3 + _insert_paces(store, len(batch)) + 1
    assert store.count_calls(CallFilter()) == 40
    written = _rollup_contents(store)
    rebuild_rollups(store.engine, [list(store.iter_call_rows(CallFilter()))])
    assert written == _rollup_contents(store)


def test_round_trip_keeps_every_field(store: Store) -> None:
    raw = {
        "input_tokens": 3,
        "output_tokens": 4,
        "cache_read_input_tokens": 5,
        "cache_creation_input_tokens": 6,
        "cache_creation": {"ephemeral_5m_input_tokens": 2, "ephemeral_1h_input_tokens": 4},
        "brand_new": [1, {"x": None}],
    }
    rec = make(1, usage=Usage.from_raw(raw), cost_breakdown={"input": 1, "modifiers": ["batch"]})
    store.insert_calls([rec])
    got = store.get_call(rec.id)
    assert got is not None
    assert got["usage"] == raw
    assert got["cache_creation_1h_input_tokens"] == 4
    assert got["cache_creation_input_tokens"] == 6
    assert got["cost_usd"] == "0.001000001"
    assert got["created_at"] == "2026-11-01T12:01:00.000Z"
    assert got["tags"] == ["a", "t1"]
    assert got["cost_breakdown"] == {"input": 1, "modifiers": ["batch"]}
    with store.engine.connect() as conn:
        row = conn.execute(calls.select().where(calls.c.id == rec.id)).one()
    again = row_to_record(dict(row._mapping))
    assert again.usage == rec.usage
    assert again.created_at == rec.created_at


def test_pagination_walks_everything_newest_first(store: Store) -> None:
    store.insert_calls([make(i) for i in range(23)])
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_calls(CallFilter(), limit=5, cursor=cursor)
        seen.extend(r["created_at"] for r in page.data)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 23
    assert seen == sorted(seen, reverse=True)


def test_filters(store: Store) -> None:
    store.insert_calls([make(i) for i in range(10)])
    store.insert_calls(
        [make(50, model="claude-haiku-4-5", status_code=529, error_type="overloaded_error")]
    )
    assert store.count_calls(CallFilter(model="claude-haiku-4-5")) == 1
    assert store.count_calls(CallFilter(status="error")) == 1
    assert store.count_calls(CallFilter(status="ok")) == 10
    assert store.count_calls(CallFilter(status="529")) == 1
    assert store.count_calls(CallFilter(user="user1")) == 3
    assert store.count_calls(CallFilter(tag="t1")) == 5
    assert store.count_calls(CallFilter(since=T0 + timedelta(minutes=5))) == 6
    assert store.count_calls(CallFilter(until=T0 + timedelta(minutes=5))) == 5


def test_tag_filter_matches_awkward_tags_exactly(store: Store) -> None:
    tags = ['say "hi"', "back\\slash", "50%", "x_y", "xay", "naïve", "a"]
    store.insert_calls([make(i, attribution=Attribution(tags=[tag])) for i, tag in enumerate(tags)])
    for tag in tags:
        found = store.list_calls(CallFilter(tag=tag), limit=10).data
        assert [c["tags"] for c in found] == [[tag]], tag
    assert store.count_calls(CallFilter(tag="%")) == 0
    assert store.count_calls(CallFilter(tag="say")) == 0


def test_delete_and_loss(store: Store) -> None:
    store.insert_calls([make(i) for i in range(4)])
    assert store.delete_calls(CallFilter(user="user0")) == 2
    assert store.count_calls(CallFilter()) == 2
    store.record_loss(3, "test", T0)
    store.record_loss(2, "test", T0)
    assert store.lost_total() == 5


def test_iter_rows_in_chunks(store: Store) -> None:
    store.insert_calls([make(i) for i in range(11)])
    rows = list(store.iter_call_rows(CallFilter(), chunk=3))
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)
    assert len(rows) == 11


def test_bad_cursor(store: Store) -> None:
    with pytest.raises(ValueError, match="next_cursor"):
        store.list_calls(CallFilter(), cursor="!!nope")


def test_one_batch_of_mixed_null_patterns_round_trips(store: Store) -> None:
    """SQLite inserts a batch per pattern of NULL columns, leaving those out: every
    call of a mixed batch comes back with exactly its own values, NULLs and all."""
    full = make(
        1,
        stream=True,
        billable=False,
        complete=False,
        request_id="req_1",
        message_id="msg_1",
        model_requested="claude-x",
        stop_reason="end_turn",
        error_type="overloaded_error",
        error_message="busy",
        first_byte_at=T0 + timedelta(seconds=1),
        ended_at=T0 + timedelta(seconds=2),
        latency_ms=12.5,
        ttft_ms=3.25,
        cache_savings_nanousd=7,
        cost_breakdown={"input": 1},
        price_book_version="v1",
        user_agent="ua",
        note="n",
        attribution=Attribution(
            credential_fingerprint="fp",
            credential_kind="proxy_key",
            key_id="k",
            key_label="K",
            team="t",
            user="u",
            project="p",
            tags=["x"],
            session_id="s",
            agent_id="a",
        ),
    )
    bare = make(2, status_code=None, model=None, cost_nanousd=None, attribution=Attribution())
    # A whole number in a float column (PostgreSQL's COPY sends each column as one type).
    mixed = [full, bare, make(3, latency_ms=7), make(4, stream=True, ttft_ms=9.0)]
    mixed.append(make(5, status_code=None))
    assert store.insert_calls(mixed) == 5
    with store.engine.connect() as conn:
        rows = {r.id: dict(r._mapping) for r in conn.execute(calls.select())}
    for rec in mixed:
        again = row_to_record(rows[rec.id])
        assert again == rec, rec.id
        assert isinstance(again.stream, bool) and isinstance(again.complete, bool)


def test_sqlite_writer_has_its_own_connection_with_the_large_page_cache(tmp_path: Path) -> None:
    """Each pooled SQLite connection keeps a page cache of its own: only the writer's
    is large, and the readers' pool reuses its newest connection first."""
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        assert store.writer_engine is not store.engine

        def cache_kib(engine: Engine) -> int:
            with engine.connect() as conn:
                return -int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())

        assert cache_kib(store.writer_engine) == WRITER_CACHE_KIB
        assert cache_kib(store.engine) == READER_CACHE_KIB
        # Newest first: of two connections returned to the pool, the next caller gets
        # the one returned last (a queue would hand out the other, colder one).
        older, newer = store.engine.connect(), store.engine.connect()
        newest = newer.connection.driver_connection
        older.close()
        newer.close()
        with store.engine.connect() as conn:
            assert conn.connection.driver_connection is newest
        # What the writer inserts, the readers see.
        store.insert_calls([make(1)])
        assert store.count_calls(CallFilter()) == 1
    finally:
        store.close()


def test_a_malformed_sqlite_url_gets_the_error_that_says_how_to_fix_it() -> None:
    with pytest.raises(StorageError, match="not a database URL"):
        Store.open("sqlite:spendgate.db")


def test_a_batch_the_database_refuses_is_refused_whole_and_the_next_one_goes_in(
    store: Store,
) -> None:
    """A row the database refuses (a NULL where none may be; on PostgreSQL also a
    value too long for its column or a number out of its range) fails its whole
    batch, as a row insert would, on a fresh connection too (PostgreSQL's staging
    table is made in that batch's transaction and rolled back with it): nothing is
    cut short, wrapped round or half written, and the next batch is stored."""
    _refuses_whole_batches(store)


@pytest.mark.postgres
def test_row_by_row_refuses_the_same_batches(pg_url: str) -> None:
    """PostgreSQL's way for a role without the TEMPORARY privilege refuses what the
    COPY refuses, whole."""
    store = Store.open(pg_url)
    store.staging = False
    try:
        _refuses_whole_batches(store)
    finally:
        store.close()


def _refuses_whole_batches(store: Store) -> None:
    first, second, third = make(0), make(2), make(3)
    refused = [make(1, pricing_status=None)]
    if store.dialect == "postgresql":
        refused.append(make(1, attribution=Attribution(team="t" * 201)))
        refused.append(make(1, status_code=2**32 + 200))
        searches = {"input_tokens": 1, "server_tool_use": {"web_search_requests": 2**31}}
        refused.append(make(1, usage=Usage.from_raw(searches)))
    for bad in refused:
        with pytest.raises(Exception, match=r"(?i)null|too long|out of range"):
            store.insert_calls([first, bad])
        assert store.count_calls(CallFilter()) == 0
    assert store.insert_calls([first, second]) == 2
    assert store.insert_calls([first, third]) == 1
    assert {row["id"] for row in store.list_calls(CallFilter()).data} == {
        first.id,
        second.id,
        third.id,
    }


@pytest.mark.postgres
def test_a_session_without_the_staging_table_gets_one_and_loses_no_batch(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pooler in transaction mode may hand the writer's connection another server
    session, without the staging table the first one had: that batch fails with
    UndefinedTable, is written again after making the table, and the next one goes
    in the first time."""
    store = Store.open(pg_url, pool_size=1)  # one connection: every batch uses it
    tries: list[bool] = []
    real = store_module._insert_postgres

    def spy(*args: Any, stage: bool = False) -> Any:
        tries.append(stage)
        return real(*args, stage=stage)

    try:
        assert store.insert_calls([make(0)]) == 1
        with store.writer_engine.connect() as conn:  # what another session looks like
            conn.exec_driver_sql("DISCARD TEMP")
            conn.commit()
        monkeypatch.setattr(store_module, "_insert_postgres", spy)
        assert store.insert_calls([make(1), make(2)]) == 2
        assert store.insert_calls([make(3)]) == 1
        assert tries == [False, True, False]
        assert store.count_calls(CallFilter()) == 4
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.usefixtures("small_slices")
def test_a_role_that_may_not_create_temporary_tables_still_records_every_call(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A hardened database revokes TEMPORARY from PUBLIC, and the gateway runs as a role
    with rights on its tables only: the (paced) batch that finds it cannot make the
    staging table is written again row by row, paced, and so is every later one, with
    one warning that says how to restore the COPY."""
    Store.open(pg_url).close()  # migrated by the database's owner
    role = f"sg_app_{uuid.uuid4().hex[:8]}"
    database = pg_url.rpartition("/")[2]
    owner = make_engine(pg_url)
    with owner.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD 'app'")
    store: Store | None = None
    try:
        with owner.begin() as conn:
            conn.exec_driver_sql(f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC')
            conn.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
            conn.exec_driver_sql(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
            )
            conn.exec_driver_sql(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        as_role = make_url(pg_url).set(username=role, password="app")
        store = Store.open(as_role.render_as_string(hide_password=False), upgrade=False)
        calls = [make(i, created_at=T0 + timedelta(minutes=9 * i)) for i in range(30)]
        first: list[int] = []
        later: list[int] = []
        with caplog.at_level("WARNING", logger="spendgate.storage"):
            items = [call_item(r) for r in calls[:20]]
            assert store.insert_items(items, pace=lambda: first.append(1)) == 20
            assert not store.staging
            items = [call_item(r) for r in [*calls[:2], *calls[20:]]]  # two stored already
            assert store.insert_items(items, pace=lambda: later.append(1)) == 10
        # The fold's slices of 16 calls, the slices of 8 rows, one before the rollups
        # (the failed first try stopped at its CREATE, before any pace).
        assert len(first) == 2 + 2 + 1
        assert len(later) == 1 + 1 + 1
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1
        assert "GRANT TEMPORARY ON DATABASE" in warnings[0]
        assert store.count_calls(CallFilter()) == 30
        written = _rollup_contents(store)
        rebuild_rollups(owner, [list(store.iter_call_rows(CallFilter()))])
        assert written == _rollup_contents(store)
    finally:
        if store is not None:
            store.close()
        with owner.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        owner.dispose()

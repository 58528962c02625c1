"""Nothing lost silently: database outages spool and replay; what cannot be kept is counted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from sqlalchemy.engine import make_url

from spendgate.recording.writer import Recorder
from spendgate.records import CallRecord
from spendgate.storage import CallFilter, Store
from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.testing.relay import TcpRelay
from spendgate.testing.upstream import FakeUpstream
from spendgate.usage import Usage


@pytest.fixture
def relayed_pg_url(pg_url: str) -> Iterator[tuple[str, TcpRelay]]:
    """The test database reached through a relay the test can cut."""
    url = make_url(pg_url)
    relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield url.set(port=relay.port).render_as_string(hide_password=False), relay
    finally:
        relay.close()


def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.mark.postgres
def test_database_outage_mid_traffic_loses_and_duplicates_nothing(
    tmp_path: Path, upstream: FakeUpstream, relayed_pg_url: tuple[str, TcpRelay], pg_url: str
) -> None:
    url, relay = relayed_pg_url
    settings = gateway_settings(tmp_path, upstream.url, url)
    with GatewayServer(settings) as gw:
        client = anthropic.Anthropic(base_url=gw.url, api_key="sk-ant-api03-x", max_retries=0)
        for i in range(60):
            if i == 20:
                relay.cut()
            if i == 40:
                relay.restore()
            stream = i % 2 == 0
            if stream:
                with client.messages.stream(
                    model="claude-haiku-4-5",
                    max_tokens=5,
                    messages=[{"role": "user", "content": "x"}],
                ) as s:
                    s.get_final_message()
            else:
                client.messages.create(
                    model="claude-haiku-4-5",
                    max_tokens=5,
                    messages=[{"role": "user", "content": "x"}],
                )
            if i == 30:
                gw.flush()
                health = httpx.get(gw.url + "/health").json()
                assert health["recording"]["spooled"] > 0
        recorder = gw.app.recorder
        assert recorder is not None
        wait_until(
            lambda: recorder.stats().spooled_pending == 0 and recorder.stats().queue_depth == 0
        )
        assert recorder.stats().lost == 0
    served_ids = sorted(s.request_id for s in upstream.served)
    direct = Store.open(pg_url)
    rows = list(direct.iter_call_rows(CallFilter()))
    assert sorted(r["request_id"] for r in rows) == served_ids
    assert len({r["id"] for r in rows}) == 60


async def test_unspoolable_records_are_counted_lost(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    store = Store.open("postgresql://nobody@127.0.0.1:1/none", upgrade=False)
    recorder = Recorder(store, spool_dir=blocker / "spool", flush_interval=0.01)
    await recorder.start()
    for _ in range(3):
        recorder.submit(CallRecord(usage=Usage.from_raw({"input_tokens": 1, "output_tokens": 1})))
    await recorder.flush()
    await recorder.stop()
    stats = recorder.stats()
    assert stats.lost == 3
    assert stats.database_ok is False


async def test_queue_full_spills_to_spool_then_replays(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    recorder = Recorder(store, spool_dir=tmp_path / "spool", queue_size=2, flush_interval=0.01)
    records = [CallRecord(status_code=200) for _ in range(10)]
    for rec in records:  # writer not started yet: queue holds 2, the rest spill
        recorder.submit(rec)
    assert (tmp_path / "spool").is_dir()
    await recorder.start()
    assert recorder.stats().spooled_pending == 8
    deadline = time.monotonic() + 10
    while recorder.stats().spooled_pending and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await recorder.stop()
    assert store.count_calls(CallFilter()) == 10
    assert recorder.stats().lost == 0


async def test_the_writer_sleeps_until_a_batch_is_due_not_at_each_record(tmp_path: Path) -> None:
    # The first record of a batch starts a timer; the writer is not woken as the call
    # ends (that cost a task step just as the client's next request came).
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    recorder = Recorder(store, spool_dir=tmp_path / "spool", flush_interval=0.3)
    await recorder.start()
    try:
        recorder.submit(CallRecord(status_code=200))
        await asyncio.sleep(0.1)
        assert recorder.stats().queue_depth == 1  # still waiting for its batch
        await asyncio.sleep(0.1)
        recorder.submit(CallRecord(status_code=200))  # before the first one's timer fires
        deadline = time.monotonic() + 5
        while recorder.stats().written < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert recorder.stats().written == 2 and store.count_calls(CallFilter()) == 2
    finally:
        await recorder.stop()


async def test_a_full_batch_and_a_backlog_go_without_waiting_for_the_timer(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    recorder = Recorder(store, spool_dir=tmp_path / "spool", batch_size=2, flush_interval=60)
    await recorder.start()
    try:
        for _ in range(5):  # two full batches, and one record behind them that waited
            recorder.submit(CallRecord(status_code=200))
        deadline = time.monotonic() + 5
        while recorder.stats().written < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert recorder.stats().written == 5 and recorder.stats().queue_depth == 0
        recorder.submit(CallRecord(status_code=200))  # a new batch of one waits its timer
        await asyncio.sleep(0.2)
        assert recorder.stats().queue_depth == 1
    finally:
        await recorder.stop()  # which writes it
    assert store.count_calls(CallFilter()) == 6


async def test_a_record_handed_over_while_the_recorder_stops_is_spooled(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    recorder = Recorder(store, spool_dir=tmp_path / "spool", flush_interval=0.01)
    await recorder.start()
    recorder.submit(CallRecord(status_code=200))
    stopping = asyncio.create_task(recorder.stop())
    await asyncio.sleep(0)  # stop() has queued the writer's end
    recorder.submit(CallRecord(status_code=200))  # a call that outlived the drain
    await stopping
    assert store.count_calls(CallFilter()) == 1
    assert recorder.stats().spooled_pending == 1 and recorder.stats().lost == 0
    again = Recorder(store, spool_dir=tmp_path / "spool", flush_interval=0.01)
    await again.start()  # the next start replays it
    deadline = time.monotonic() + 10
    while again.stats().spooled_pending and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await again.stop()
    assert store.count_calls(CallFilter()) == 2


def test_a_failed_replay_and_new_spills_never_overwrite_each_other(tmp_path: Path) -> None:
    """Claim, fail, spill again, claim again: every spooled row is still there, once."""
    from spendgate.recording.spool import Spool
    from spendgate.storage.calls import record_to_row

    spool = Spool(tmp_path / "spool")
    first = [record_to_row(CallRecord(status_code=200)) for _ in range(3)]
    second = [record_to_row(CallRecord(status_code=200)) for _ in range(2)]
    spool.append(first)
    assert len(spool.claim()) == 1  # the replay of this claim fails: the file stays claimed
    spool.append(second)  # the own file is written to again meanwhile
    claimed = spool.claim()
    assert len(claimed) == len(set(claimed)) == 2
    ids = [row["id"] for path in claimed for rows in Spool.read(path) for row in rows]
    assert sorted(ids) == sorted(row["id"] for row in first + second)


def test_new_id_is_a_canonical_uuid7_in_creation_order() -> None:
    import uuid

    from spendgate.records import new_id

    ids = [new_id() for _ in range(200)]
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)

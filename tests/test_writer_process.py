"""The writer process: calls are stored by a child of the gateway, and nothing is lost
when it dies, cannot start, or the gateway goes away."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anthropic
import pytest

from spendgate.pricing import PriceBook, apply_cost
from spendgate.recording.process import Pacer, WriterProcess
from spendgate.recording.writer import Recorder
from spendgate.records import Attribution, CallRecord
from spendgate.storage import CallFilter, Store
from spendgate.storage.calls import record_to_row
from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.testing.upstream import FakeUpstream
from spendgate.usage import Usage

MESSAGE: dict[str, Any] = {
    "model": "claude-haiku-4-5",
    "max_tokens": 5,
    "messages": [{"role": "user", "content": "x"}],
}


def _call(client: anthropic.Anthropic, i: int) -> None:
    if i % 2:
        with client.messages.stream(**MESSAGE) as stream:
            stream.get_final_message()
    else:
        client.messages.create(**MESSAGE)


def _exited(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True  # a zombie has exited, its parent has not reaped it yet
        except (FileNotFoundError, ProcessLookupError):  # reaped (ESRCH: between open and read)
            return True
        time.sleep(0.05)
    return False


def _stored_exactly_what_was_served(url: str, upstream: FakeUpstream) -> list[dict[str, Any]]:
    """The stored calls, checked to be the upstream's answers, each once."""
    store = Store.open(url)
    try:
        rows = list(store.iter_call_rows(CallFilter()))
    finally:
        store.close()
    assert sorted(r["request_id"] for r in rows) == sorted(s.request_id for s in upstream.served)
    return rows


def test_calls_are_stored_by_the_writer_process_which_ends_with_the_gateway(
    tmp_path: Path, upstream: FakeUpstream, db_url: str
) -> None:
    settings = gateway_settings(tmp_path, upstream.url, db_url)
    with GatewayServer(settings) as gw:
        recorder = gw.app.recorder
        assert recorder is not None and recorder.process is not None
        pid = recorder.process.pid
        assert pid is not None and recorder.process.alive
        # The database URL (a password, on PostgreSQL) is sent over the socket, never argv.
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = cmdline.read().decode()
        assert "spendgate.recording.process" in argv and db_url not in argv
        assert "sqlite" not in argv and "postgresql" not in argv
        client = anthropic.Anthropic(base_url=gw.url, api_key="sk-ant-api03-x", max_retries=0)
        for i in range(20):
            _call(client, i)
        gw.flush()
        assert recorder.stats().written == 20
    assert _exited(pid), "the writer process outlived the gateway"
    rows = _stored_exactly_what_was_served(db_url, upstream)
    assert all(r["pricing_status"] == "priced" and r["cost_nanousd"] > 0 for r in rows)


def test_a_killed_writer_process_loses_and_duplicates_nothing(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    url = f"sqlite:///{tmp_path / 'spendgate.db'}"
    settings = gateway_settings(tmp_path, upstream.url, url)
    with GatewayServer(settings) as gw:
        recorder = gw.app.recorder
        assert recorder is not None and recorder.process is not None
        first = recorder.process.pid
        assert first is not None
        client = anthropic.Anthropic(base_url=gw.url, api_key="sk-ant-api03-x", max_retries=0)
        for i in range(60):
            if i == 20:  # frozen: the next batch is sent and never answered
                os.kill(first, signal.SIGSTOP)
            if i == 30:  # killed holding that batch
                assert recorder.stats().written < 30
                os.kill(first, signal.SIGKILL)
                assert _exited(first)
            _call(client, i)
        gw.flush()
        deadline = time.monotonic() + 30
        while recorder.stats().spooled_pending and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = recorder.stats()
        assert stats.lost == 0 and stats.spooled_pending == 0 and stats.database_ok
        # Later batches start it again (it is not replaced by a thread).
        for i in range(60, 64):
            _call(client, i)
        gw.flush()
        assert recorder.process is not None and recorder.process.alive
        assert recorder.process.pid != first
        assert recorder.stats().written + recorder.stats().spooled_pending == 64
    rows = _stored_exactly_what_was_served(url, upstream)
    assert len({r["id"] for r in rows}) == 64


async def _started_with_child(
    tmp_path: Path, **options: Any
) -> tuple[Store, WriterProcess, Recorder]:
    """A store on a fresh SQLite file and a started recorder whose writer is a child."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store.open(url)
    process = WriterProcess(url, **options)
    recorder = Recorder(store, spool_dir=tmp_path / "spool", flush_interval=0.01, process=process)
    await recorder.start()
    return store, process, recorder


def _records(n: int) -> list[CallRecord]:
    return [
        CallRecord(
            status_code=200,
            billable=True,
            model="claude-haiku-4-5",
            usage=Usage.from_raw({"input_tokens": 10 + i, "output_tokens": 5}),
            attribution=Attribution(team="red", tags=["a", f"t{i % 3}"]),
        )
        for i in range(n)
    ]


async def test_a_writer_process_that_cannot_start_leaves_recording_to_a_thread(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store.open(url)
    process = WriterProcess(url, python=str(tmp_path / "no-such-python"))
    recorder = Recorder(store, spool_dir=tmp_path / "spool", flush_interval=0.01, process=process)
    await recorder.start()
    assert recorder.process is None
    for record in _records(5):
        recorder.submit(record)
    await recorder.flush()
    await recorder.stop()
    assert store.count_calls(CallFilter()) == 5
    assert recorder.stats().lost == 0
    store.close()


async def test_a_writer_process_that_cannot_be_started_again_hands_over_to_a_thread(
    tmp_path: Path,
) -> None:
    store, process, recorder = await _started_with_child(tmp_path)
    assert process.pid is not None
    for record in _records(3):
        recorder.submit(record)
    await recorder.flush()
    os.kill(process.pid, signal.SIGKILL)
    await asyncio.to_thread(_exited, process.pid)
    process.python = str(tmp_path / "no-such-python")
    for record in _records(4):
        recorder.submit(record)
    await recorder.flush()
    await recorder.stop()
    assert recorder.process is None
    assert store.count_calls(CallFilter()) == 7
    assert recorder.stats().lost == 0 and recorder.stats().spooled_pending == 0
    store.close()


async def test_batches_larger_than_a_slice_are_written_whole_with_their_rollups(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store.open(url)
    recorder = Recorder(
        store, spool_dir=tmp_path / "spool", flush_interval=0.05, process=WriterProcess(url)
    )
    records = _records(1000)
    for record in records:  # queued before the writer starts: one batch of 1,000
        recorder.submit(record)
    await recorder.start()
    await recorder.flush()
    await recorder.stop()
    assert store.count_calls(CallFilter()) == 1000
    totals = store.engine.connect().exec_driver_sql(
        "SELECT SUM(calls), SUM(input_tokens) FROM rollup_hourly"
    )
    assert tuple(totals.one()) == (1000, sum(10 + i for i in range(1000)))
    store.close()


def test_the_pacer_naps_once_a_slice_of_cpu_has_been_used() -> None:
    pacer = Pacer(0.05, nap=0.002)
    pacer.begin()
    time.sleep(0.06)  # waiting uses no CPU: no nap due
    pacer()
    assert pacer.naps == 0
    busy_until = time.thread_time() + 0.06
    while time.thread_time() < busy_until:
        pass
    started = time.perf_counter()
    pacer()
    assert pacer.naps == 1 and time.perf_counter() - started >= 0.002
    pacer()  # a new slice starts after the nap
    assert pacer.naps == 1


@pytest.mark.parametrize(("slice_seconds", "naps"), [(1e-9, True), (0.0, False)])
async def test_the_writer_process_naps_between_slices_of_a_batch_unless_told_not_to(
    tmp_path: Path, slice_seconds: float, naps: bool
) -> None:
    """SPENDGATE_WRITER_SLICE reaches the child: with a slice shorter than any work it
    naps at every pace of a batch (the fold, the insert, the rollups), with 0 never;
    the batch is stored whole either way."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store.open(url)
    process = WriterProcess(url, slice_seconds=slice_seconds)
    recorder = Recorder(store, spool_dir=tmp_path / "spool", flush_interval=0.05, process=process)
    for record in _records(100):
        recorder.submit(record)
    await recorder.start()
    await recorder.flush()
    await recorder.stop()
    assert store.count_calls(CallFilter()) == 100
    store.close()
    # 100 calls: one pace after decoding, 7 in the fold, 12 between the insert's
    # statements of 8 rows, one before the rollups: 21.
    assert process.naps == 21 if naps else process.naps == 0


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_the_cost_breakdown_stored_is_the_one_priced(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The breakdown crosses to the child as an object and is serialised there: what is
    stored reads back as what pricing wrote on the record, by the child and by a thread."""
    url = (
        request.getfixturevalue("pg_url")
        if database == "postgres"
        else f"sqlite:///{tmp_path / 'db.sqlite'}"
    )
    book = PriceBook.load()
    store = Store.open(url)
    records = _records(40)
    for record in records[:20]:
        apply_cost(book, record)  # priced already, as a budgeted call is at settlement
    recorder = Recorder(
        store,
        spool_dir=tmp_path / "spool",
        flush_interval=0.01,
        process=WriterProcess(url),
        pricer=lambda record: apply_cost(book, record),
    )
    await recorder.start()
    for record in records:
        recorder.submit(record)
    await recorder.flush()
    await recorder.stop()
    by_thread, spooled = _records(2), _records(2)
    for record in [*by_thread, *spooled]:
        apply_cost(book, record)
    store.insert_calls(by_thread)  # a writer thread's path
    store.insert_rows([record_to_row(record) for record in spooled])  # the spool's replay
    stored = {row["id"]: row for row in store.iter_call_rows(CallFilter())}
    store.close()
    assert len(stored) == 44
    for record in [*records, *by_thread, *spooled]:
        assert record.cost_breakdown
        breakdown = stored[record.id]["cost_breakdown"]
        assert json.loads(breakdown) == record.cost_breakdown
        assert stored[record.id]["cost_nanousd"] == record.cost_nanousd


def test_the_writer_process_exits_when_the_gateway_is_killed(tmp_path: Path) -> None:
    """SIGKILL gives the gateway no chance to stop its child: the closed socket does."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Store.open(url).close()
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from spendgate.recording.process import WriterProcess

        async def main():
            process = WriterProcess({url!r})
            await process.start()
            print(process.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    child = int(done.stdout.strip())
    assert _exited(child), "the writer process outlived a killed gateway"


@pytest.mark.postgres
async def test_a_database_error_in_the_child_spools_the_batch(pg_url: str, tmp_path: Path) -> None:
    """The child answers with the database's error; the gateway spools and replays."""
    store = Store.open(pg_url)
    process = WriterProcess(pg_url)
    recorder = Recorder(store, spool_dir=tmp_path / "spool", flush_interval=0.01, process=process)
    await recorder.start()
    with store.engine.begin() as conn:  # the child cannot insert while calls is locked away
        conn.exec_driver_sql("ALTER TABLE calls RENAME TO calls_away")
    try:
        for record in _records(4):
            recorder.submit(record)
        await recorder.flush()
        stats = recorder.stats()
        assert stats.spooled_pending == 4 and not stats.database_ok
        assert stats.last_error is not None and "calls" in stats.last_error
    finally:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE calls_away RENAME TO calls")
    deadline = time.monotonic() + 20
    while recorder.stats().spooled_pending and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await recorder.stop()
    assert store.count_calls(CallFilter()) == 4
    assert recorder.stats().lost == 0
    store.close()


async def _busy_with_the_child(recorder: Recorder) -> None:
    """Wait until the recorder has handed a batch over (its queue is empty, it is busy)."""
    deadline = time.monotonic() + 10
    while not (recorder._busy and recorder.stats().queue_depth == 0):
        assert time.monotonic() < deadline, "the batch never left the queue"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # and is written to the child's socket


async def test_a_batch_held_by_the_child_at_the_shutdown_deadline_is_spooled(
    tmp_path: Path,
) -> None:
    store, process, recorder = await _started_with_child(tmp_path)
    assert process.pid is not None
    os.kill(process.pid, signal.SIGSTOP)  # it will never answer
    for record in _records(3):
        recorder.submit(record)
    await _busy_with_the_child(recorder)
    await recorder.stop(timeout=0.5)
    assert recorder.stats().spooled_pending == 3 and recorder.stats().lost == 0
    assert _exited(process.pid)
    # The next start replays them.
    again = Recorder(store, spool_dir=tmp_path / "spool", flush_interval=0.01)
    await again.start()
    deadline = time.monotonic() + 10
    while again.stats().spooled_pending and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await again.stop()
    assert store.count_calls(CallFilter()) == 3
    store.close()


async def test_a_child_that_does_not_answer_is_replaced_and_its_batch_spooled(
    tmp_path: Path,
) -> None:
    store, process, recorder = await _started_with_child(tmp_path, batch_timeout=0.5)
    stuck = process.pid
    assert stuck is not None
    os.kill(stuck, signal.SIGSTOP)
    for record in _records(3):
        recorder.submit(record)
    await _busy_with_the_child(recorder)
    deadline = time.monotonic() + 10
    while recorder.stats().database_ok and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stats = recorder.stats()
    assert stats.spooled_pending == 3 and "did not answer" in (stats.last_error or "")
    assert _exited(stuck)  # killed, not left frozen
    for record in _records(2):  # later batches start a new child; the spool is replayed
        recorder.submit(record)
    deadline = time.monotonic() + 15
    while (recorder.stats().spooled_pending or recorder.stats().queue_depth) and (
        time.monotonic() < deadline
    ):
        await asyncio.sleep(0.05)
    await recorder.flush()
    await recorder.stop()
    assert store.count_calls(CallFilter()) == 5 and recorder.stats().lost == 0
    store.close()

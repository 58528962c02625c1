"""The recorder: takes finished call records off the hot path and writes them in batches.

The proxy calls :meth:`Recorder.submit`, which never blocks and never raises.
One writer task drains a bounded queue, prices each record, and inserts a batch
per transaction (on size, or ``flush_interval`` after the batch's first record).
When the database fails, the batch goes to the spool and is replayed once the
database answers again; only a record that neither the database nor the spool
would take is lost, and it is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spendgate.recording.process import WriterProcess, WriterProcessError, WriterStartError
from spendgate.recording.spool import Spool
from spendgate.records import CallRecord, utcnow
from spendgate.storage import Store
from spendgate.storage.calls import record_to_row
from spendgate.storage.rollups import Folded, call_item

log = logging.getLogger("spendgate.recorder")

Pricer = Callable[[CallRecord], None]
# Sees every priced batch before it is written (metrics, traces); off the hot path.
Observer = Callable[[list[CallRecord]], None]
_STOP = object()
_RETRY_SECONDS = 1.0
# With a writer process, records are priced, observed and encoded on the event loop
# in slices of this many, yielding between slices so calls are not held up.
_SLICE = 256


@dataclass
class RecorderStats:
    """What ``/health`` and ``/metrics`` show about recording."""

    queue_depth: int
    written: int
    spooled_pending: int
    lost: int
    database_ok: bool
    last_error: str | None


class Recorder:
    """Bounded queue plus one writer task."""

    def __init__(
        self,
        store: Store,
        *,
        spool_dir: Path,
        pricer: Pricer | None = None,
        queue_size: int = 100_000,
        batch_size: int = 5000,
        flush_interval: float = 0.02,
        observer: Observer | None = None,
        process: WriterProcess | None = None,
    ) -> None:
        self.store = store
        # Where batches are stored: a child process (see spendgate.recording.process),
        # or, without one, a worker thread of this process.
        self.process = process
        self.observer = observer
        self.spool = Spool(spool_dir)
        self.pricer = pricer
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Set when a batch is due: its first record's timer fired, a batch is full, or
        # stop() was called. The timer is armed by the first record after a take.
        self._due = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self.written = 0
        self.lost = 0
        self._unreported_loss = 0
        self._spooled = 0
        self.database_ok = True
        self.last_error: str | None = None
        self._last_retry = 0.0

    # -- hot path ------------------------------------------------------------

    def submit(self, record: CallRecord) -> None:
        """Hand a finished record over. Never blocks the caller, never raises.

        The writer is not woken now: the first record of a batch starts a timer, and the
        writer takes the batch when it fires (``flush_interval`` later) or once a full
        batch waits. Waking it at once cost a task step right after each answer, when the
        client's next request comes (at concurrency 1, on the stream probe's TTFB)."""
        queue = self._queue
        try:
            queue.put_nowait(record)
        except asyncio.QueueFull:
            self._spill([record], reason="queue full")
            return
        if queue.qsize() >= self.batch_size:
            self._due.set()
        elif self._timer is None and self._loop is not None:
            self._timer = self._loop.call_later(self.flush_interval, self._due.set)

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Start the writer task; replays anything a previous run left in the spool."""
        if self.process is not None:
            try:
                await self.process.start()
            except WriterProcessError as exc:
                log.error("%s; writing from a thread of the gateway instead", exc)
                self.process = None
        self._spooled = await asyncio.to_thread(self.spool.pending)
        self._loop = asyncio.get_running_loop()
        if not self._queue.empty():  # records handed over before the start
            self._due.set()
        self._task = asyncio.create_task(self._run(), name="spendgate-writer")

    async def stop(self, timeout: float = 30.0) -> None:
        """Drain the queue, write (or spool) everything, then stop the task."""
        if self._task is None:
            return
        await self._queue.put(_STOP)
        self._due.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.error("writer did not drain within %.0fs; spooling the rest", timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # What is still queued (the deadline passed, or records came after the end was
        # queued, from calls that outlived the drain) goes to the spool, replayed at the
        # next start: never dropped uncounted.
        rest = [item for item in self._drain_nowait() if isinstance(item, CallRecord)]
        if rest:
            self._spill(rest, reason="shutdown")
        self._task = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.process is not None:
            await self.process.stop()

    @property
    def running(self) -> bool:
        """Whether the writer task is alive (readiness)."""
        return self._task is not None and not self._task.done()

    async def flush(self) -> None:
        """Wait until every record submitted so far has been handled (tests, CLI)."""
        while not self._queue.empty() or self._busy:
            await asyncio.sleep(0.01)

    def stats(self) -> RecorderStats:
        """A snapshot of the recorder's counters."""
        return RecorderStats(
            queue_depth=self._queue.qsize(),
            written=self.written,
            spooled_pending=self._spooled,
            lost=self.lost,
            database_ok=self.database_ok,
            last_error=self.last_error,
        )

    # -- writer task ---------------------------------------------------------

    _busy = False

    async def _run(self) -> None:
        while True:
            batch, stop = await self._next_batch()
            self._busy = True
            try:
                if batch:
                    await self._write(batch)
                if self._spooled and self._should_retry():
                    await self._replay()
                if self._unreported_loss and self.database_ok:
                    await self._report_loss()
            except Exception:  # the writer must survive anything
                log.exception("writer loop error")
            finally:
                self._busy = False
            if stop:
                return

    async def _next_batch(self) -> tuple[list[CallRecord], bool]:
        if not self._due.is_set():
            # Asleep until a batch is due (no wake-up per record, nor a nap loop while
            # records trickle in), or, with records in the spool, until their retry.
            timeout = None if not self._spooled else _RETRY_SECONDS
            try:
                async with asyncio.timeout(timeout):
                    await self._due.wait()
            except TimeoutError:
                return [], False
        self._due.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        queue = self._queue
        batch: list[CallRecord] = []
        stop = False
        while len(batch) < self.batch_size and not queue.empty():
            item = queue.get_nowait()
            if item is _STOP:
                stop = True
                break
            if isinstance(item, CallRecord):
                batch.append(item)
        if not queue.empty() and not stop:
            self._due.set()  # a backlog: the next batch goes as soon as this one is written
        return batch, stop

    def _drain_nowait(self) -> list[object]:
        items = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    def _price(self, batch: list[CallRecord]) -> None:
        if self.pricer is None:
            return
        for record in batch:
            if record.pricing_status != "pending":
                continue  # priced already (by the budget ledger, which needed the cost)
            try:
                self.pricer(record)
            except Exception:  # a pricing bug must not lose the record
                log.exception("pricing failed for call %s; stored unpriced", record.id)
                record.pricing_status = "unpriced"

    def _prepare(self, batch: list[CallRecord]) -> None:
        self._price(batch)
        self._observe(batch)

    def _prepare_and_insert(self, batch: list[CallRecord]) -> None:
        # One trip to the worker thread per batch: pricing and the observers are
        # CPU work that would otherwise stall the event loop for the whole batch.
        self._prepare(batch)
        self.store.insert_calls(batch)

    async def _write(self, batch: list[CallRecord]) -> None:
        if not self.database_ok and not self._should_retry():
            await asyncio.to_thread(self._prepare, batch)
            self._spill(batch, reason="database unavailable")
            return
        try:
            if self.process is not None:
                await self._write_in_process(batch)
            else:
                await asyncio.to_thread(self._prepare_and_insert, batch)
        except Exception as exc:  # any database failure: spool, never drop
            self._database_failed(exc)
            self._spill(batch, reason="database unavailable")
            return
        self._database_back()
        self.written += len(batch)

    async def _write_in_process(self, batch: list[CallRecord]) -> None:
        # Pricing and the observers run here, on the loop, a slice at a time: a few
        # µs a record, against the GIL traded with a thread at every SQLite step.
        items: list[Folded] = []
        for start in range(0, len(batch), _SLICE):
            part = batch[start : start + _SLICE]
            self._prepare(part)
            items.extend(call_item(record) for record in part)
            if start + _SLICE < len(batch):
                await asyncio.sleep(0)
        assert self.process is not None
        try:
            await self.process.write(items)
        except asyncio.CancelledError:
            # The shutdown deadline passed with this batch in the child's hands: whether
            # it was committed is unknown, so it is spooled (replay skips stored ids).
            self._spill(batch, reason="shutdown deadline")
            raise
        except WriterStartError as exc:
            # The child died and cannot be started again: keep recording from a thread.
            log.error("%s; writing from a thread of the gateway from now on", exc)
            self.process = None
            await asyncio.to_thread(self.store.insert_calls, batch)

    def _observe(self, batch: list[CallRecord]) -> None:
        if self.observer is None:
            return
        try:
            self.observer(batch)
        except Exception:  # telemetry must never cost a record
            log.exception("call observer failed")

    def _should_retry(self) -> bool:
        return self.database_ok or time.monotonic() - self._last_retry >= _RETRY_SECONDS

    def _database_failed(self, exc: Exception) -> None:
        if self.database_ok:
            log.error("database write failed, spooling records: %s", exc)
        self.database_ok = False
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        self._last_retry = time.monotonic()

    def _database_back(self) -> None:
        if not self.database_ok:
            log.warning("database is back; replaying the spool")
        self.database_ok = True
        self.last_error = None

    def _spill(self, records: list[CallRecord], *, reason: str) -> None:
        try:
            self.spool.append([record_to_row(r) for r in records])
        except Exception as exc:  # disk full, read-only: count, never hide
            log.error("could not spool %d records (%s): %s", len(records), reason, exc)
            self.lost += len(records)
            self._unreported_loss += len(records)
            return
        self._spooled += len(records)

    async def _replay(self) -> None:
        self._last_retry = time.monotonic()
        try:
            replayed = await asyncio.to_thread(self._replay_files)
        except Exception as exc:  # still down: keep the files, try later
            self._database_failed(exc)
            return
        self._database_back()
        self.written += replayed
        self._spooled = await asyncio.to_thread(self.spool.pending)

    def _replay_files(self) -> int:
        new = 0
        for path in self.spool.claim():
            for rows in Spool.read(path):
                new += self.store.insert_rows(rows)
            path.unlink()
        return new

    async def _report_loss(self) -> None:
        count, self._unreported_loss = self._unreported_loss, 0
        try:
            await asyncio.to_thread(
                self.store.record_loss, count, "neither database nor spool accepted", utcnow()
            )
        except Exception:  # keep the count for the next attempt
            self._unreported_loss += count

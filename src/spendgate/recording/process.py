"""The writer process: calls inserted and rolled up in a process of their own.

A writer *thread* shares the gateway's GIL with the event loop. Measured per thread
at concurrency 32 (docs/benchmarks.md, "The writer in a process of its own"), the
thread's own work was ~60 µs a call, but the event loop's CPU went up by ~90 µs a
call on top: the thread and the loop trade the GIL at every SQLite step and every
uvloop callback, and both pay a futex call and a context switch each time (2.7
voluntary context switches a call, against 0.03 with nothing recording). In a
process of its own the writer costs the loop only the encoding of each batch.

The gateway keeps everything that decides what a record says: pricing, metrics,
spans, the call log, the spool and its replay. The child only stores: it receives
batches of :func:`~spendgate.storage.rollups.call_item` tuples and answers how many
calls were new; inserts are idempotent (by call id), so a batch whose answer was
lost with a dying child can be spooled and replayed without counting twice.

Frames on a socket pair, each a 4-byte big-endian length and an orjson document:

    parent -> child   {"url": ..., "log_level": ..., "slice": ...}
                                                       first; the URL never goes on argv
    child -> parent   {"ok": true} or {"ok": false, "error": "..."}
    parent -> child   [item, ...]                        a batch, one transaction
    child -> parent   {"new": n, "naps": total} or {"error": "..."}

The child naps for a moment (:data:`_NAP`) once a batch has used ``slice`` seconds of
its CPU since the last nap (checked after decoding a batch, between slices of the
rollups' fold, between the calls' insert statements, and before the rollups'
upserts; ``slice`` 0 turns the naps off). Measured on a 2-core host at concurrency 1
(docs/benchmarks.md, "The writer's naps"), a batch's ~2 ms of work in one stretch
held a CPU that the next call's hops (client, gateway, upstream) were queued for,
however low the child's priority: the scheduler puts a woken task on the busy CPU
and lets it wait there. Naps let those tasks run; the child can still store several
times what the gateway serves.

The child ignores SIGINT and SIGTERM (a Ctrl-C in a terminal reaches the whole
process group; the gateway drains first and then closes the socket) and exits when
its socket closes, so it never outlives the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, BinaryIO

import orjson

from spendgate.logs import redact
from spendgate.storage.rollups import Folded

log = logging.getLogger("spendgate.recorder")

_LENGTH = 4
# How long the child naps between slices of work: the kernel adds its timer slack
# (50 µs by default), so a nap gives the CPU away for ~70 µs.
_NAP = 0.00002


class WriterProcessError(Exception):
    """The writer process could not start, died, or could not store a batch."""


class WriterStartError(WriterProcessError):
    """The writer process could not be started (or started again)."""


def _frame(doc: Any) -> bytes:
    body = orjson.dumps(doc)
    return len(body).to_bytes(_LENGTH, "big") + body


class WriterProcess:
    """The gateway's side: starts the child, sends batches, reads the answers."""

    def __init__(
        self,
        database_url: str,
        *,
        log_level: str = "info",
        slice_seconds: float = 0.0002,
        start_timeout: float = 60.0,
        batch_timeout: float = 300.0,
        python: str = sys.executable,
    ) -> None:
        self.database_url = database_url
        self.python = python
        self.log_level = log_level
        self.slice_seconds = slice_seconds
        self.start_timeout = start_timeout
        # A child that has not answered a batch in this long is stuck (a lock never
        # granted, a hung connection): it is killed and the batch spooled.
        self.batch_timeout = batch_timeout
        self.pid: int | None = None
        # Naps the child has taken between slices of its batches (as it last said).
        self.naps = 0
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        """Whether a started child is still there."""
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Start the child and wait until it has opened the database."""
        parent, child = socket.socketpair()
        try:
            env = dict(os.environ)
            # The child imports spendgate the way this process did (tests, benches and
            # source trees put it on sys.path rather than installing it).
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
            self._process = await asyncio.create_subprocess_exec(
                self.python,
                "-P",  # not the working directory first on sys.path
                "-m",
                "spendgate.recording.process",
                str(child.fileno()),
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            parent.close()
            raise WriterStartError(f"could not start the writer process: {exc}") from exc
        finally:
            child.close()
        self.pid = self._process.pid
        self._reader, self._writer = await asyncio.open_connection(sock=parent)
        try:
            answer = await asyncio.wait_for(
                self._ask(
                    {
                        "url": self.database_url,
                        "log_level": self.log_level,
                        "slice": self.slice_seconds,
                    }
                ),
                self.start_timeout,
            )
        except (TimeoutError, WriterProcessError) as exc:
            await self._kill()
            raise WriterStartError(f"the writer process did not start: {exc}") from exc
        if not answer.get("ok"):
            await self._kill()
            raise WriterStartError(
                f"the writer process could not open the database: {answer.get('error')}"
            )

    async def write(self, items: Sequence[Folded]) -> int:
        """Store one batch in one transaction; how many calls were new.

        Raises :class:`WriterProcessError` when the child failed to store it (the
        database's error is in the message) or is gone (it is then stopped, and
        started again by the next :meth:`write`), :class:`WriterStartError` when it
        could not be started again.
        """
        async with self._lock:
            if not self.alive:
                await self._kill()
                await self.start()
            try:
                answer = await asyncio.wait_for(self._ask(items), self.batch_timeout)
            except TimeoutError as exc:
                await self._kill()
                raise WriterProcessError(
                    f"the writer process did not answer within {self.batch_timeout:.0f}s"
                ) from exc
        if "error" in answer:
            raise WriterProcessError(str(answer["error"]))
        self.naps = int(answer.get("naps") or 0)
        return int(answer["new"])

    async def _ask(self, doc: Any) -> dict[str, Any]:
        assert self._reader is not None and self._writer is not None
        try:
            self._writer.write(_frame(doc))
            await self._writer.drain()
            head = await self._reader.readexactly(_LENGTH)
            body = await self._reader.readexactly(int.from_bytes(head, "big"))
        except (OSError, asyncio.IncompleteReadError) as exc:
            await self._kill()
            raise WriterProcessError(f"the writer process is gone ({exc!r})") from exc
        answer = orjson.loads(body)
        assert isinstance(answer, dict)
        return answer

    async def stop(self, timeout: float = 5.0) -> None:
        """Close the socket and wait for the child to exit (it has no batch left: the
        recorder stops it after the last answer)."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._process is not None and self._process.returncode is None:
            try:
                await asyncio.wait_for(self._process.wait(), timeout)
            except TimeoutError:
                log.error("the writer process did not exit within %.0fs; killing it", timeout)
        await self._kill()

    async def _kill(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


# -- the child -------------------------------------------------------------------


def _read_frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(_LENGTH)
    if len(head) < _LENGTH:
        return None
    size = int.from_bytes(head, "big")
    body = stream.read(size)
    if len(body) < size:
        return None
    return body


class Pacer:
    """Naps :data:`_NAP` once this thread has used ``slice_seconds`` of CPU since the
    last nap (or :meth:`begin`); called between slices of a batch's work. CPU time,
    not wall time: waiting for PostgreSQL's answers or for a CPU holds none."""

    def __init__(self, slice_seconds: float, nap: float = _NAP) -> None:
        self.slice_seconds = slice_seconds
        self.nap = nap
        self.naps = 0
        self._since = time.thread_time()

    def begin(self) -> None:
        """A batch starts: count its work from here."""
        self._since = time.thread_time()

    def __call__(self) -> None:
        if time.thread_time() - self._since >= self.slice_seconds:
            time.sleep(self.nap)
            self.naps += 1
            self._since = time.thread_time()


def child_main(fd: int) -> int:
    """Serve batches on socket ``fd`` until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    stream = sock.makefile("rb")
    hello = _read_frame(stream)
    if hello is None:
        return 0
    settings = orjson.loads(hello)
    from spendgate.logs import configure_logging
    from spendgate.storage import Store

    configure_logging(str(settings.get("log_level") or "INFO"))
    try:
        store = Store.open(settings["url"], pool_size=1, upgrade=False)
    except Exception as exc:
        sock.sendall(_frame({"ok": False, "error": redact(f"{type(exc).__name__}: {exc}")}))
        return 1
    sock.sendall(_frame({"ok": True}))
    slice_seconds = float(settings.get("slice") or 0)
    pace = Pacer(slice_seconds) if slice_seconds > 0 else None
    try:
        while (batch := _read_frame(stream)) is not None:
            try:
                if pace is not None:
                    pace.begin()
                items = orjson.loads(batch)
                if pace is not None:
                    pace()
                new = store.insert_items(items, pace=pace)
                answer: dict[str, Any] = {"new": new, "naps": pace.naps if pace else 0}
            except Exception as exc:  # the gateway spools the batch and retries
                answer = {"error": redact(f"{type(exc).__name__}: {exc}")[:500]}
            sock.sendall(_frame(answer))
    except OSError:  # the gateway is gone
        pass
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(child_main(int(sys.argv[1])))

"""Serving the gateway: one process, or a supervisor with N worker processes on one port.

Start-up is the same sequence everywhere (a container, systemd, a test):
migrate the database and refuse unsafe configurations (:func:`preflight`),
then serve. Each worker builds its own app with ``create_app(settings)``: its
own upstream pool, database pool, writer and spool file. Several hosts on one
PostgreSQL work the same way, one supervisor each.

Shutdown (SIGTERM or SIGINT): the listening socket closes, ``/readyz`` turns
503, calls in flight (long streams too) get ``shutdown_timeout`` seconds to
finish, then the writer drains every record to the database (or the spool).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from spendgate.app import Gateway, create_app
from spendgate.httpserver import GatewayProtocol
from spendgate.logs import configure_logging
from spendgate.pricing import PriceBook
from spendgate.safety import check_database
from spendgate.settings import Settings
from spendgate.storage import Store

log = logging.getLogger("spendgate.serving")

STARTUP_FAILURE = 3  # uvicorn's exit code when the lifespan start-up failed
# After the in-flight deadline the writer still drains (up to 30 s) before a worker exits.
DRAIN_MARGIN = 35.0
_RESTART_BACKOFF = 1.0


def preflight(settings: Settings) -> None:
    """Migrate the database (advisory-locked on PostgreSQL) and refuse unsafe configurations.

    Raises :class:`~spendgate.settings.ConfigError` or a storage error whose
    message says how to fix it.
    """
    PriceBook.load(settings.price_files)
    store = Store.open(settings.effective_database_url, pool_size=1)
    try:
        check_database(settings, store)
    finally:
        store.close()


# Young-generation collections every 20,000 net container allocations instead of
# 700: a call allocates a few dozen, and each collection stalls the event loop.
GC_THRESHOLDS = (20_000, 10, 10)


def settle_heap() -> None:
    """Once the gateway is up: move everything allocated at start-up (the price book,
    SQLAlchemy, pydantic, the app) out of the collector's sight, and collect young
    objects less often. Full collections then scan what calls allocate, not the whole
    heap: full collections of the whole heap were behind the 12-73 ms p99 at
    concurrency 1 of an earlier run (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class _Server(uvicorn.Server):
    """uvicorn's server, telling the gateway when it starts draining."""

    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            settle_heap()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.gateway.draining:
            self.gateway.draining = True
            log.info(
                "shutting down: %d call(s) in flight get up to %.0fs to finish",
                self.gateway.proxy.in_flight,
                self.config.timeout_graceful_shutdown or 0,
            )
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal once it has shut down gracefully, which
        # would end the process "killed by SIGTERM"; a drained gateway exits 0.
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves the gateway, here and in spendgate.testing.gateway.

    No ``server`` or ``date`` header of its own: a proxied answer carries the
    upstream's, once (they were doubled before); the gateway's own answers add a date
    (proxy.errors.http_date). No proxy-headers middleware in front of everything: the
    gateway applies ``X-Forwarded-*`` to its API and dashboard (spendgate.app).
    """
    return {
        "loop": "uvloop",
        "http": GatewayProtocol if settings.http_server == "spendgate" else "httptools",
        "lifespan": "on",
        "log_config": None,
        "server_header": False,
        "date_header": False,
        "proxy_headers": False,
    }


def server_for(settings: Settings, app: Gateway | None = None) -> _Server:
    """A uvicorn server for ``settings`` (uvloop, httptools, the shutdown deadline)."""
    gateway = app or create_app(settings)
    config = uvicorn.Config(
        gateway,
        host=settings.host,
        port=settings.port,
        access_log=settings.access_log,
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        **uvicorn_options(settings),
    )
    return _Server(config, gateway)


def serve_one(settings: Settings, sockets: list[socket.socket] | None = None) -> int:
    """Serve in this process until told to stop; the exit code to use."""
    server = server_for(settings)
    server.run(sockets=sockets)
    return 0 if server.started else STARTUP_FAILURE


def serve(settings: Settings) -> int:
    """Serve with ``settings.workers`` processes; returns the exit code."""
    if settings.workers == 1:
        return serve_one(settings)
    return Supervisor(settings).run()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket the worker processes share."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(settings: Settings, sock: socket.socket) -> None:
    """A worker process: its own app, served on the shared socket."""
    configure_logging(settings.log_level)
    sys.exit(serve_one(settings, sockets=[sock]))


class Supervisor:
    """Starts the workers, replaces one that dies, stops them all on a signal."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = False
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[Any] = []

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; 0 after a clean stop, 1 if a worker could not start."""
        settings = self.settings
        metrics_dir = self._metrics_dir()
        sock = bind(settings.host, settings.port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        log.info("supervisor %d: starting %d workers", os.getpid(), settings.workers)
        self._workers = [self._start(sock) for _ in range(settings.workers)]
        code = 0
        while not self.stopping:
            time.sleep(0.2)
            for index, worker in enumerate(self._workers):
                if worker.is_alive() or self.stopping:
                    continue
                self._mark_dead(metrics_dir, worker.pid)
                if worker.exitcode == STARTUP_FAILURE:
                    log.error("worker %d could not start; stopping (see its log)", worker.pid)
                    self.stopping, code = True, 1
                    break
                log.error("worker %d died (exit %s); replacing it", worker.pid, worker.exitcode)
                time.sleep(_RESTART_BACKOFF)
                self._workers[index] = self._start(sock)
        self._stop_all()
        sock.close()
        return code

    def _metrics_dir(self) -> Path | None:
        if not self.settings.metrics:
            return None
        directory = self.settings.effective_metrics_dir
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        # prometheus-client reads this when a worker imports it (multi-process mode).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        return directory

    def _start(self, sock: socket.socket) -> Any:
        worker = self._context.Process(
            target=_worker, args=(self.settings, sock), name="spendgate-worker"
        )
        worker.start()
        return worker

    @staticmethod
    def _mark_dead(metrics_dir: Path | None, pid: int | None) -> None:
        if metrics_dir is not None and pid is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, str(metrics_dir))  # type: ignore[no-untyped-call]

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _stop_all(self) -> None:
        for worker in self._workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_timeout + DRAIN_MARGIN
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                log.error("worker %d did not stop in time; killing it", worker.pid)
                worker.kill()
                worker.join()
        log.info("supervisor %d: all workers stopped", os.getpid())

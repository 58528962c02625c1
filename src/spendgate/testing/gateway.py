"""A real gateway server on a loopback port, in a background thread (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from spendgate.app import Gateway, create_app
from spendgate.settings import Settings

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_settings(home: Path, upstream_url: str, db_url: str, **extra: Any) -> Settings:
    """Settings for a test or benchmark gateway: loopback, any free port, fast flushes."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "home": home / "home",
        "database_url": db_url,
        "upstream_url": upstream_url,
        "anthropic_api_key": None,
        "flush_interval": 0.02,
        "read_timeout": 30.0,
        **extra,
    }
    return Settings(_env_file=None, **values)


class GatewayServer:
    """``create_app(settings)`` served by uvicorn (uvloop, httptools) in its own thread."""

    def __init__(self, settings: Settings) -> None:
        if settings.port == 0:
            settings = settings.model_copy(update={"port": free_port()})
        self.settings = settings
        self.app: Gateway = create_app(settings)
        self.url = f"http://{settings.host}:{settings.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self, timeout: float = 30.0) -> GatewayServer:
        """Start serving; returns once the lifespan has completed."""
        from spendgate.serving import uvicorn_options

        config = uvicorn.Config(
            self.app,
            host=self.settings.host,
            port=self.settings.port,
            access_log=False,
            timeout_graceful_shutdown=10,
            **uvicorn_options(self.settings),
        )
        self._server = uvicorn.Server(config)
        ready = threading.Event()

        def run() -> None:
            import uvloop

            self.loop = uvloop.new_event_loop()
            asyncio.set_event_loop(self.loop)
            assert self._server is not None
            self.loop.run_until_complete(self._server.serve())
            self.loop.close()

        self._thread = threading.Thread(target=run, name="spendgate-gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not (self._server.started and self.app.started):
            if not self._thread.is_alive():
                raise RuntimeError("gateway failed to start; see the log above")
            if time.monotonic() > deadline:
                raise TimeoutError("gateway did not start in time")
            time.sleep(0.01)
        ready.set()
        return self

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the gateway's event loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def flush(self) -> None:
        """Wait until every call in flight has finished and been written (or spooled)."""
        recorder = self.app.recorder
        assert recorder is not None

        async def idle() -> None:
            # A client may hold the whole response before the proxy has filed its record.
            while self.app.proxy.in_flight:
                await asyncio.sleep(0.005)
            await recorder.flush()

        self.call(idle())

    def stop(self) -> None:
        """Graceful shutdown: in-flight calls finish, the recorder drains."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

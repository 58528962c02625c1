"""A fake Anthropic API: a real HTTP server on loopback speaking the real wire format.

Used by the test suite, the benchmarks and ``spendgate demo``::

    with FakeUpstream() as upstream:
        client = anthropic.Anthropic(base_url=upstream.url, api_key="sk-ant-test")
        client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=[...])
        assert upstream.served[-1].usage["output_tokens"] == 5

``start()`` runs the server on a background thread with its own event loop;
``start_async()`` runs it on the caller's loop. Request headers named
``x-fake-*`` steer individual answers (see :mod:`spendgate.testing.scenario`).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from aiohttp import web

from spendgate.testing import admin, messages, resources
from spendgate.testing.scenario import Scenario, ScenarioError
from spendgate.testing.served import JSON, Exchange, Served, ServedLog, new_id
from spendgate.testing.wire import (
    EXCHANGE,
    SCENARIO,
    STATE,
    FakeState,
    error_response,
    invalid_request,
    not_found,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RATE_LIMIT_PATHS = ("/v1/messages", "/v1/complete")
START_TIMEOUT = 10.0


def _request_headers(request: web.Request) -> dict[str, str]:
    """Lower-cased names; repeated headers joined with ``", "``."""
    joined: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def _authenticated(request: web.Request) -> bool:
    if request.headers.get("x-api-key"):
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


@web.middleware
async def _exchange_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record the exchange, then apply auth and the scenario before the real handler."""
    exchange = Exchange(
        method=request.method,
        path=request.path,
        query=request.query_string,
        headers=_request_headers(request),
        body=await request.read(),
        request_id=new_id("req_011C", 22),
        sink=request.app[STATE].sink,
    )
    request[EXCHANGE] = exchange
    response = await _answer(request, handler)
    if not exchange.committed:
        exchange.status = response.status
        if isinstance(response, web.Response) and isinstance(response.body, bytes | bytearray):
            exchange.chunks.append(bytes(response.body))
        exchange.commit()
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        scenario = Scenario.from_headers(request.headers)
    except ScenarioError as exc:
        return invalid_request(request, str(exc))
    request[SCENARIO] = scenario
    if scenario.sleep:
        await asyncio.sleep(scenario.sleep)
    if request.method == "HEAD" and request.path == "/":
        return await handler(request)
    if request.app[STATE].require_auth and not _authenticated(request):
        message = "x-api-key header is required"
        return error_response(request, 401, "authentication_error", message)
    if scenario.error is not None:
        status, error_type = scenario.error
        headers = {"retry-after": scenario.retry_after} if scenario.retry_after else None
        return error_response(request, status, error_type, headers=headers)
    return await handler(request)


async def _stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer carries a request id and an organization; Messages add rate limits."""
    state = request.app[STATE]
    exchange = request.get(EXCHANGE)
    response.headers["request-id"] = exchange.request_id if exchange else new_id("req_011C", 22)
    response.headers["anthropic-organization-id"] = state.organization_id
    if request.path.startswith(RATE_LIMIT_PATHS):
        response.headers.update(_rate_limit_headers())


def _rate_limit_headers() -> dict[str, str]:
    reset = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    limits = {"requests": 4000, "input-tokens": 2000000, "output-tokens": 400000}
    limits["tokens"] = limits["input-tokens"] + limits["output-tokens"]
    headers: dict[str, str] = {}
    for name, limit in limits.items():
        prefix = f"anthropic-ratelimit-{name}"
        headers[f"{prefix}-limit"] = str(limit)
        headers[f"{prefix}-remaining"] = str(limit - 1)
        headers[f"{prefix}-reset"] = reset
    return headers


async def _head_root(request: web.Request) -> web.StreamResponse:
    """``HEAD /``: the reachability probe Claude Code sends to a gateway."""
    return web.Response(status=200)


async def _unknown(request: web.Request) -> web.StreamResponse:
    """Any other path: 404 ``not_found_error``."""
    return not_found(request)


def create_app(state: FakeState) -> web.Application:
    """The fake API as an aiohttp application over ``state``."""
    app = web.Application(middlewares=[_exchange_middleware], client_max_size=512 * 1024**2)
    app[STATE] = state
    app.on_response_prepare.append(_stamp_headers)
    router = app.router
    router.add_route("HEAD", "/", _head_root)
    router.add_post("/v1/messages", messages.create_message)
    router.add_post("/v1/messages/count_tokens", messages.count_tokens)
    router.add_post("/v1/complete", messages.complete)
    resources.add_routes(router)
    admin.add_routes(router)
    router.add_route("*", "/{tail:.*}", _unknown)
    return app


class FakeUpstream:
    """A fake Anthropic upstream on a loopback port.

    Use as ``with FakeUpstream() as upstream:`` (background thread) or
    ``async with FakeUpstream() as upstream:`` (the caller's loop).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        require_auth: bool = True,
        chunk_delay: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self._log = ServedLog()
        self._state = FakeState(
            organization_id=str(uuid.uuid4()),
            chunk_delay=chunk_delay,
            require_auth=require_auth,
            sink=self._log.append,
        )
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (valid once started)."""
        if self._runner is None:
            raise RuntimeError("FakeUpstream is not running; call start() first")
        return self._state.base_url

    @property
    def served(self) -> list[Served]:
        """What was served so far, oldest first (a snapshot; safe from any thread)."""
        return self._log.snapshot()

    @property
    def chunk_delay(self) -> float:
        """Seconds between stream chunks unless a request sends ``x-fake-delay``."""
        return self._state.chunk_delay

    @chunk_delay.setter
    def chunk_delay(self, seconds: float) -> None:
        self._state.chunk_delay = seconds

    def set_admin_reports(
        self, *, usage: list[JSON] | None = None, cost: list[JSON] | None = None
    ) -> None:
        """Buckets the Admin API reports serve (shaped like Anthropic's ``data`` items)."""
        if usage is not None:
            self._state.admin_reports["usage"] = list(usage)
        if cost is not None:
            self._state.admin_reports["cost"] = list(cost)

    def clear(self) -> None:
        """Forget the served log (batches and files are kept)."""
        self._log.clear()

    async def start_async(self) -> None:
        """Listen on the current event loop; returns once the port is bound."""
        if self._runner is not None:
            raise RuntimeError("FakeUpstream is already running")
        runner = web.AppRunner(create_app(self._state), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError:
            await runner.cleanup()
            raise
        self.port = int(runner.addresses[0][1])
        self._state.base_url = f"http://{self.host}:{self.port}"
        self._runner = runner

    async def stop_async(self) -> None:
        """Stop listening and close open connections."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def start(self) -> None:
        """Run the server on a background thread with its own loop; returns when listening."""
        if self._thread is not None:
            raise RuntimeError("FakeUpstream is already running")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[OSError] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except OSError as exc:
                failure.append(exc)
                return
            finally:
                ready.set()
            loop.run_forever()

        thread = threading.Thread(target=serve, name=f"fake-upstream-{self.port}", daemon=True)
        thread.start()
        if not ready.wait(START_TIMEOUT) or failure or self._runner is None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(START_TIMEOUT)
            loop.close()
            if failure:
                raise failure[0]
            raise RuntimeError(f"FakeUpstream could not listen on {self.host}:{self.port}")
        self._loop, self._thread = loop, thread

    def stop(self) -> None:
        """Stop the background server and its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(START_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await self.start_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()

    def __repr__(self) -> str:
        where = self._state.base_url if self._runner is not None else "stopped"
        return f"<FakeUpstream {where}>"

"""``create_app(settings)``: the gateway as one ASGI application.

``/v1/*`` goes to the lean proxy handler (no framework on the hot path);
everything else (``/health``, ``/api/*``, the dashboard) to the management app.
The lifespan owns the upstream HTTP client, the store and the recorder.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from spendgate import __version__
from spendgate.accounts import Accounts, open_accounts
from spendgate.alerts.monitor import AlertMonitor
from spendgate.governance import Governance
from spendgate.operations import Operations
from spendgate.pricing import PriceBook, apply_cost
from spendgate.proxy.auth import Authenticator
from spendgate.proxy.errors import http_date
from spendgate.proxy.forward import Proxy, Receive, Scope, Send
from spendgate.proxy.upstream import UpstreamClient
from spendgate.recording.process import WriterProcess
from spendgate.recording.writer import Recorder
from spendgate.safety import check_database
from spendgate.settings import Settings
from spendgate.storage import Store
from spendgate.storage.engine import is_sqlite, is_sqlite_file

log = logging.getLogger("spendgate")

# Anthropic Admin API paths are served by spendgate itself (analytics), not forwarded.
_LOCAL_V1_PREFIXES = ("/v1/organizations/",)


@dataclass
class Gateway:
    """Everything a running gateway holds. Built by :func:`create_app`, started by the lifespan."""

    settings: Settings
    book: PriceBook
    proxy: Proxy
    store: Store | None = None
    recorder: Recorder | None = None
    started: bool = False
    management: Any = None
    # The management app behind X-Forwarded-* handling (trusted peers: uvicorn's
    # FORWARDED_ALLOW_IPS, loopback by default); /v1/* does not use them.
    management_asgi: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    governance: Governance | None = None
    accounts: Accounts | None = None  # users, API tokens, sessions (opened at start-up)
    operations: Operations | None = None
    draining: bool = False  # set on SIGTERM: /readyz answers 503 from then on
    alerts: AlertMonitor | None = None  # the background alert loop (SPENDGATE_ALERT_INTERVAL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path.startswith("/v1/") and not path.startswith(_LOCAL_V1_PREFIXES):
                await self.proxy(scope, receive, send)
                return
            if path == "/" and scope["method"] == "HEAD":
                # Claude Code probes the base URL before its first request.
                headers = [(b"date", http_date())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
            await self.management_asgi(scope, receive, _dated(send))
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.management_asgi(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # reported to the server, which exits
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Open the database (migrating it), start the recorder and the upstream client."""
        settings = self.settings
        self.store = await asyncio.to_thread(
            Store.open, settings.effective_database_url, pool_size=settings.database_pool_size
        )
        await asyncio.to_thread(check_database, settings, self.store)
        if self.governance is not None:
            self.governance.open(self.store)
        self.accounts = await asyncio.to_thread(open_accounts, settings, self.store.engine)
        self.recorder = Recorder(
            self.store,
            spool_dir=settings.effective_spool_dir,
            pricer=lambda record: apply_cost(self.book, record),
            queue_size=settings.queue_size,
            batch_size=settings.batch_size,
            flush_interval=settings.flush_interval,
            observer=self.operations.telemetry.observe if self.operations else None,
            process=self._writer_process(),
        )
        await self.recorder.start()
        self.proxy.submit = self.recorder.submit
        connector = aiohttp.TCPConnector(
            limit=settings.upstream_pool_size,
            limit_per_host=settings.upstream_pool_size,
            keepalive_timeout=60,
            enable_cleanup_closed=True,
        )
        # Credentials in the upstream URL (an egress proxy's Basic auth) stay with aiohttp.
        if settings.upstream_client == "lean" and "@" not in urlsplit(settings.upstream_url).netloc:
            self.proxy.client = UpstreamClient(
                settings.upstream_url,
                limit=settings.upstream_pool_size,
                connect_timeout=settings.connect_timeout,
                read_timeout=settings.read_timeout,
            )
        self.proxy.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            trust_env=False,
            # A proxy keeps no cookies: one client's upstream cookies (Cloudflare's
            # __cf_bm, say) must never ride on another client's calls, and the
            # jar's per-request filtering is wasted work.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        if self.operations is not None:
            await self.operations.start(self)
        if settings.alert_interval > 0 and self.governance is not None:
            self.alerts = AlertMonitor.for_gateway(self.store, settings, self.governance.box())
            self.alerts.start()
        self.started = True
        log.info(
            "spendgate %s ready: upstream %s, database %s",
            __version__,
            settings.upstream_url,
            settings.public_summary()["database"],
        )

    def _writer_process(self) -> WriterProcess | None:
        url = self.settings.effective_database_url
        if not self.settings.writer_process or (is_sqlite(url) and not is_sqlite_file(url)):
            return None  # an in-memory database is not shared with another process
        return WriterProcess(
            url, log_level=self.settings.log_level, slice_seconds=self.settings.writer_slice
        )

    async def shutdown(self) -> None:
        """Close the upstream client, drain the recorder, close the database."""
        if self.alerts is not None:
            await self.alerts.stop()
        if self.proxy.client is not None:
            await self.proxy.client.close()
            self.proxy.client = None
        if self.proxy.session is not None:
            await self.proxy.session.close()
            self.proxy.session = None
        if self.governance is not None:
            await self.governance.close()
        if self.recorder is not None:
            await self.recorder.stop()
        if self.operations is not None:
            await self.operations.stop(self)
        if self.store is not None:
            self.store.close()
        self.started = False


def _dated(send: Send) -> Send:
    """``send`` with a ``date`` header added to a response that has none (the server
    adds none: see :func:`spendgate.proxy.errors.http_date`)."""

    async def dated(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(name.lower() == b"date" for name, _ in headers):
                headers.append((b"date", http_date()))
                message = {**message, "headers": headers}
        await send(message)

    return dated


def _drop(record: Any) -> None:
    log.error("call record %s arrived before the recorder started; counted lost", record.id)


def create_app(settings: Settings | None = None) -> Gateway:
    """Build the gateway for ``settings`` (nothing starts until the ASGI lifespan runs)."""
    settings = settings or Settings()
    server_key = (
        settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
    )
    book = PriceBook.load(settings.price_files)
    governance = Governance(settings=settings, book=book)
    authenticator = Authenticator(
        server_key=server_key,
        server_key_usable=settings.server_key_usable,
        allow_client_credentials=settings.allow_client_credentials,
        key_resolver=governance.resolve_key,
    )
    proxy = Proxy(
        upstream_url=settings.upstream_url,
        authenticator=authenticator,
        submit=_drop,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )
    proxy.reserve, proxy.settle = governance.reserve, governance.settle
    proxy.batches = governance.batch_call
    gateway = Gateway(
        settings=settings,
        book=book,
        proxy=proxy,
        governance=governance,
        operations=Operations.from_settings(settings),
    )
    from spendgate.api.app import create_management_app

    gateway.management = create_management_app(gateway)
    gateway.management_asgi = ProxyHeadersMiddleware(
        gateway.management, trusted_hosts=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
    )
    return gateway

"""A lean HTTP/1.1 client for the calls the proxy forwards most: a body in hand, or none.

Measured on loopback against the fake upstream, one call after another (c=1,
docs/benchmarks.md "A lean upstream client"): aiohttp's ``ClientSession.request``
spent ~250 µs of CPU per call and answered in 0.34-0.43 ms; an asyncio protocol
with httptools' response parser (the parser uvicorn serves with) ~70 µs and
0.12-0.13 ms. In the gateway aiohttp was a third of the event loop's samples.

What it does: a pool of keep-alive connections to the one upstream (TLS when the
URL is https, TCP_NODELAY as asyncio sets it), the request written in one
``write()``, the response's headers as received (names and values untouched) and
its body as it arrives, reading paused while more than ``_HIGH_WATER`` bytes wait
for a slow client, a connect timeout and a read timeout (longest silence, reset by
every byte). A connection returns to the pool only when its response was read to
the end and both sides keep it alive; idle ones are closed after ``keepalive``.

What it leaves to aiohttp (:meth:`UpstreamClient.handles`): request bodies streamed
from the client (uploads), ``HEAD`` (a body-less answer that announces a length),
``Expect: 100-continue`` and protocol upgrades.
"""

from __future__ import annotations

import asyncio
import collections
import re
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import urlsplit

import aiohappyeyeballs
import httptools

# Pause reading a response while this much of it waits for the client; the reader
# takes all that waits at once, so reading resumes as soon as it does.
_HIGH_WATER = 256 * 1024
_NO_BODY_METHODS = frozenset({"HEAD", "CONNECT"})
_HANDS_OFF = frozenset({b"expect", b"upgrade"})
# Sent again once on a new connection when a kept-alive one turns out closed (as
# aiohttp does): a server that closes an idle connection has not read the request.
# Other methods are not repeated (the caller answers 502): a POST may have been taken.
_IDEMPOTENT = frozenset({"GET", "DELETE", "OPTIONS", "PUT"})
# Never in a request target: they would end or split the request line.
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
# Addresses of the upstream are looked up again after this many seconds (as aiohttp does).
_DNS_TTL = 10.0
# The next address family is tried after this long (RFC 8305; aiohttp's default).
_HAPPY_EYEBALLS_DELAY = 0.25


class UpstreamError(Exception):
    """The upstream could not be reached, or broke off or garbled its answer."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """No connection, or no byte, within the timeout."""


class _Stale(UpstreamError):
    """A connection kept alive closed before a byte of the answer came back."""


class Headers:
    """A response's headers, as received, with a case-insensitive ``get``."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case), decoded as latin-1."""
        key = name.lower().encode("latin-1")
        size = len(key)
        for found, value in self.raw:
            if len(found) == size and found.lower() == key:  # lower() only a likely match
                return value.decode("latin-1")
        return default


class Response:
    """One upstream answer: status and headers now, the body as it comes."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers = Headers(self.raw_headers)
        self.content_length: int | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._released = False

    @property
    def buffered(self) -> int:
        """Bytes received and not yet taken by the reader."""
        return self._buffered

    # -- fed by the connection ---------------------------------------------

    def _feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > _HIGH_WATER:
            self._connection.pause()
        self._wake()

    def _finish(self, error: BaseException | None = None) -> None:
        """The body ended (``error`` None) or broke; whichever came first stands."""
        if not self._eof and self._error is None:
            if error is None:
                self._eof = True
            else:
                self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- read by the proxy -------------------------------------------------

    async def _next(self) -> bytes | None:
        """Everything buffered (waiting for some), or None at the end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._eof:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        self._connection.resume()
        return chunk

    def at_end(self) -> bool:
        """The whole body has arrived and been taken: nothing more will come."""
        return self._eof and not self._chunks

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body as it arrives: whatever has arrived since the last chunk."""
        while (chunk := await self._next()) is not None:
            yield chunk

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while (chunk := await self._next()) is not None:
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        """Done with it: the connection goes back to the pool if the body was read to the
        end and both sides keep it alive, and is closed otherwise."""
        if not self._released:
            self._released = True
            self._connection.done(self)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client
        self.loop = client.loop
        self.transport: asyncio.Transport | None = None
        self.parser: Any = None
        self.response: Response | None = None
        self.headers_waiter: asyncio.Future[Response] | None = None
        self.reusable = False
        self.closed = False
        self.idle_since = 0.0
        self._paused = False
        self._last_data = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._informational = False
        self._until_eof = False
        self._headers_done = False  # the final answer's headers are in
        self._complete = False  # the final answer has ended
        self.holds_slot = False
        self.used = 0  # requests sent on this connection
        self._answered = False  # a byte of the current answer has come

    # -- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._last_data = self.loop.time()
        self._answered = True
        if self.parser is None or self._complete:  # bytes nobody asked for: do not keep it
            self._abort(UpstreamError("the upstream sent bytes without a request"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._abort(UpstreamError(f"the upstream's answer is not valid HTTP/1.1 ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self._stop_timer()
        self.client.forget(self)
        response = self.response
        if response is None:
            return
        if self.headers_waiter is not None and not self.headers_waiter.done():
            kind = _Stale if self.used > 1 and not self._answered else UpstreamError
            self.headers_waiter.set_exception(
                kind(f"the upstream closed the connection before answering ({exc})")
            )
        elif self._until_eof and exc is None:
            response._finish()  # a body without length or chunks ends with the connection
        else:
            response._finish(
                asyncio.IncompleteReadError(b"", None)
                if exc is None
                else UpstreamError(f"the upstream connection broke ({exc})")
            )

    # -- httptools callbacks --------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:  # bytes after the answer: no request asked for them
            raise UpstreamError("the upstream sent more than one answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._headers_done:
            return  # a trailer of a chunked body: not a header of the answer (as aiohttp)
        assert self.response is not None
        self.response.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None and self.parser is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (103 Early Hints): its headers are not the response's.
            self._informational = True
            response.raw_headers.clear()
            return
        response.status = status
        self._headers_done = True
        chunked = False
        for name, value in response.raw_headers:
            lower = name.lower()
            if lower == b"content-length":
                try:
                    response.content_length = int(value)
                except ValueError:
                    response.content_length = None
            elif lower == b"transfer-encoding":
                # Chunked framing only when chunked is the last coding (RFC 9112 6.1).
                chunked = value.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
        self._until_eof = (
            response.content_length is None and not chunked and status not in (204, 304)
        )
        waiter = self.headers_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._feed(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._stop_timer()
        assert self.parser is not None and self.response is not None
        self.reusable = bool(self.parser.should_keep_alive()) and not self._until_eof
        self._complete = True
        self.response._finish()
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    # -- used by the client -------------------------------------------------------

    async def send(self, request: bytes) -> Response:
        """Write a whole request; the response once its headers are in."""
        assert self.transport is not None
        response = Response(self)
        self.response = response
        self.reusable = False
        self._informational = False
        self._until_eof = False
        self._headers_done = False
        self._complete = False
        self._answered = False
        self.used += 1
        self.parser = httptools.HttpResponseParser(self)
        self.headers_waiter = self.loop.create_future()
        self._last_data = self.loop.time()
        self._timer = self.loop.call_at(self._last_data + self.client.read_timeout, self._check)
        try:
            self.transport.write(request)
            return await self.headers_waiter
        except BaseException:
            self.response = None  # nobody will release it: the slot goes back now
            self._abort(None)
            raise
        finally:
            self.headers_waiter = None

    def done(self, response: Response) -> None:
        """The proxy is done with ``response``: keep the connection or close it."""
        if response is not self.response:
            return
        self.response = None
        self.client.release_slot(self)
        if self.reusable and not self.closed and response._eof:
            self.client.put_back(self)
        else:
            self._abort(None)

    def pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self._last_data = self.loop.time()  # silence counts from here, not from before
            self.transport.resume_reading()

    def _check(self) -> None:
        """The read timeout: only silence counts, so every byte moves the deadline."""
        self._timer = None
        if self.response is None:
            return
        if self._paused:  # waiting for our client, not for the upstream
            self._last_data = self.loop.time()
        deadline = self._last_data + self.client.read_timeout
        if self.loop.time() < deadline:
            self._timer = self.loop.call_at(deadline, self._check)
            return
        self._abort(UpstreamTimeout(f"no byte from the upstream in {self.client.read_timeout}s"))

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _abort(self, error: BaseException | None) -> None:
        """Close the connection; ``error`` goes to whoever waits on the response."""
        self._stop_timer()
        self.reusable = False
        self.parser = None
        if error is not None:
            if self.headers_waiter is not None and not self.headers_waiter.done():
                self.headers_waiter.set_exception(error)
            elif self.response is not None:
                self.response._finish(error)
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()
        if self.response is None:
            self.client.release_slot(self)
        self.client.forget(self)


class UpstreamClient:
    """Keep-alive connections to one upstream base URL."""

    def __init__(
        self,
        base_url: str,
        *,
        limit: int = 512,
        connect_timeout: float = 10.0,
        read_timeout: float = 900.0,
        keepalive: float = 60.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        if "@" in parts.netloc:  # credentials in the URL: aiohttp sends them, this does not
            raise ValueError("an upstream URL with credentials is for aiohttp")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = (host if default_port else f"{host}:{self.port}").encode("idna")
        self.prefix = parts.path.rstrip("/")
        self.ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if parts.scheme == "https" else None
        )
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keepalive = keepalive
        self.loop = asyncio.get_running_loop()
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        self._closed = False
        self._resolved: list[Any] | None = None
        self._resolved_at = 0.0

    @staticmethod
    def handles(method: str, body: bytes | None, headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether this client forwards a call (aiohttp takes the others)."""
        if method in _NO_BODY_METHODS:
            return False
        if body is None and method not in ("GET", "DELETE", "OPTIONS"):
            return False  # a body still to be streamed from the client
        return not any(name in _HANDS_OFF for name, _ in headers)

    async def request(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes | None
    ) -> Response:
        """Send ``method target`` with ``headers`` (hop-by-hop and length already gone)
        and ``body``; the response once its headers are in."""
        if _BAD_TARGET.search(target):
            raise UpstreamError(f"the request target {target[:80]!r} holds a space or control")
        head = [method.encode("ascii"), b" ", self.prefix.encode("latin-1")]
        head += [target.encode("latin-1"), b" HTTP/1.1\r\nhost: ", self.host_header, b"\r\n"]
        for name, value in headers:
            if name == b"content-length":
                continue  # the body's own length is sent below
            if b"\n" in value or b"\r" in value:
                raise UpstreamError(f"header {name!r} holds a line break")
            head += [name, b": ", value, b"\r\n"]
        if body is not None:
            head.append(b"content-length: %d\r\n\r\n" % len(body))
            head.append(body)
        else:
            head.append(b"\r\n")
        request = b"".join(head)
        connection = await self._take(fresh=False)
        try:
            return await connection.send(request)
        except _Stale as exc:
            if method not in _IDEMPOTENT:
                raise UpstreamError(str(exc)) from exc
        connection = await self._take(fresh=True)
        return await connection.send(request)

    async def _take(self, *, fresh: bool) -> _Connection:
        """A pool slot and a connection, within the connect timeout (waiting for a free
        slot included, as aiohttp counts it). The slot is the connection's until its
        response is released or it closes."""
        if not fresh and self._idle and not self._slots.locked():
            # The common case needs no timer: a free slot and a kept-alive connection.
            connection = self._kept_alive()
            if connection is not None:
                await self._slots.acquire()  # free: returns without suspending
                connection.holds_slot = True
                return connection
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self._slots.acquire()
                try:
                    connection = await self._connection(fresh=fresh)
                except BaseException:
                    self._slots.release()
                    raise
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"no upstream connection within {self.connect_timeout}s "
                f"({self.limit} per process in use, or the upstream does not answer)"
            ) from exc
        connection.holds_slot = True
        return connection

    def _kept_alive(self) -> _Connection | None:
        """The most recently used idle connection still fit to use (the expired close)."""
        now = self.loop.time()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self.keepalive:
                return connection
            connection._abort(None)
        return None

    async def _connection(self, *, fresh: bool = False) -> _Connection:
        if not fresh:
            connection = self._kept_alive()
            if connection is not None:
                return connection
        if self._closed:
            raise UpstreamError("the upstream client is closed")
        try:
            sock = await aiohappyeyeballs.start_connection(
                await self._addresses(),
                happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY,
                interleave=1,
                loop=self.loop,
            )
            try:
                _, protocol = await self.loop.create_connection(
                    lambda: _Connection(self),
                    sock=sock,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
            except BaseException:
                sock.close()
                raise
        except OSError as exc:  # refused, unreachable, TLS verification failed
            raise UpstreamError(str(exc) or type(exc).__name__) from exc
        self._open.add(protocol)
        return protocol

    async def _addresses(self) -> list[Any]:
        """The upstream's addresses, looked up at most every ``_DNS_TTL`` seconds."""
        now = self.loop.time()
        if self._resolved is None or now - self._resolved_at > _DNS_TTL:
            infos = await self.loop.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
            if not infos:
                raise UpstreamError(f"no address for {self.host}")
            self._resolved, self._resolved_at = infos, now
        return self._resolved

    def release_slot(self, connection: _Connection) -> None:
        """Give back the slot a connection held for its request."""
        if connection.holds_slot:
            connection.holds_slot = False
            self._slots.release()

    def put_back(self, connection: _Connection) -> None:
        """A connection whose last response was read to the end."""
        if self._closed:
            connection._abort(None)
            return
        now = self.loop.time()
        connection.idle_since = now
        self._idle.append(connection)
        # Connections at the bottom of the stack are the longest idle: close the expired.
        while self._idle and now - self._idle[0].idle_since >= self.keepalive:
            self._idle[0]._abort(None)

    def forget(self, connection: _Connection) -> None:
        """A connection that closed."""
        self._open.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)

    async def close(self) -> None:
        """Close every connection."""
        self._closed = True
        for connection in list(self._open):
            connection._abort(UpstreamError("the gateway is shutting down"))
        self._idle.clear()

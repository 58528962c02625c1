"""The gateway's HTTP/1.1 connection protocol: a lean ASGI cycle under uvicorn.

uvicorn still runs the process: sockets, signals, the lifespan, graceful shutdown,
worker processes. This is the protocol class it hands each connection to
(``uvicorn.Config(http=GatewayProtocol)``, ``SPENDGATE_HTTP_SERVER=spendgate``).
Requests are parsed by httptools, as in uvicorn's own protocol, and each runs the
ASGI app in a task of its own; what a call costs less (docs/benchmarks.md, "A lean
server protocol"):

- no ``asyncio.Event`` and no keep-alive timer per request: a waiter future only
  when ``receive()`` must wait, and one idle timer per connection, re-armed only
  when it fires;
- the head of an answer goes out with its first body bytes in one write (or at the
  end of the loop turn, if the app sends no body in the same step);
- headers are checked for line breaks once over the whole head, not with two
  regular expressions per header;
- no proxy-headers middleware in front of ``/v1/*``: the gateway applies
  ``X-Forwarded-*`` to its own API and dashboard, which use them (spendgate.app).

ASGI semantics are uvicorn's: the body is handed over as it arrives (reading
pauses while 256 KiB wait for the app), ``Expect: 100-continue`` is answered on the
first ``receive()``, ``http.disconnect`` comes once the answer is complete or the
client has gone, an answer without a length is chunked, HEAD and 204/304 answers
carry no body, an app that fails before answering gets a 500, after that the
connection is closed. Pipelined requests wait their turn. Where it differs: bytes
that are not HTTP get their 400 once the requests before them are answered (uvicorn
writes it at once, into an answer in flight), and ``content-length`` headers of an
answer that disagree or are not a number are refused like a line break; and, from
ASGI 2.4 (``spec_version`` "2.4"): once the client has gone, ``send()`` raises
``ClientDisconnected`` (an ``OSError``, uvicorn's class) instead of dropping the
message, so an app streaming an answer stops at its next send without a task
watching ``receive()`` (Starlette does the same for 2.4 servers).
``uvicorn.Config.limit_concurrency`` and WebSocket upgrades are not supported (the
gateway uses neither; an ``Upgrade`` request is answered as plain HTTP/1.1 and the
connection closed after it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import urllib.parse
from http import HTTPStatus
from typing import Any

import httptools
from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_local_addr,
    get_path_with_query_string,
    get_remote_addr,
    is_ssl,
)

log = logging.getLogger("uvicorn.error")
access_log = logging.getLogger("uvicorn.access")

# Request body bytes held for the app before reading from the socket pauses.
HIGH_WATER = 256 * 1024
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NO_BODY_STATUS = frozenset({204, 304})


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


_STATUS = {status: _status_line(status) for status in range(100, 600)}
# The lengths of the header names an answer's framing depends on: content-length,
# transfer-encoding, connection.
_FRAMING_SIZES = frozenset({14, 17, 10})


def _own_answer(status: int, message: str) -> bytes:
    """An answer the server makes itself (a bad request, a failed app): plain text,
    then the connection closes."""
    body = message.encode()
    return _STATUS[status] + (
        b"content-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%b" % (len(body), body)
    )


class _Cycle:
    """One request and its answer: the ``receive`` and ``send`` the app gets."""

    __slots__ = (
        "_expected",
        "_head",
        "_sent",
        "_waiters",
        "body",
        "body_size",
        "chunked",
        "complete",
        "continue_",
        "delivered",
        "disconnected",
        "head_only",
        "keep_alive",
        "more_body",
        "protocol",
        "scope",
        "started",
        "status",
    )

    def __init__(
        self, protocol: GatewayProtocol, scope: dict[str, Any], keep_alive: bool, continue_: bool
    ) -> None:
        self.protocol = protocol
        self.scope = scope
        self.keep_alive = keep_alive
        self.continue_ = continue_
        self.head_only = scope["method"] == "HEAD"
        self.body: list[bytes] = []
        self.body_size = 0
        self.more_body = True
        self.delivered = False  # the last body message was handed to the app
        self.disconnected = False
        self.started = False
        self.complete = False
        self.chunked = False
        self.status = 0
        self._expected: int | None = None
        self._sent = 0
        self._head: bytes | None = None
        self._waiters: list[asyncio.Future[None]] = []  # usually none or one

    # -- fed by the protocol ------------------------------------------------------

    def wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = self.protocol.loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            self._waiters.remove(waiter)

    # -- ASGI ---------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        """The request body as it arrives, then ``http.disconnect`` once the answer is
        complete or the client has gone."""
        protocol = self.protocol
        if self.continue_ and not self.started and not self.disconnected:
            self.continue_ = False
            protocol.transport.write(_CONTINUE)
        waiting = self.delivered or (self.more_body and not self.body)
        if waiting and not self.disconnected and not self.complete:
            protocol.resume_reading()
            await self._wait()
        if self.disconnected or self.complete or self.delivered:
            return {"type": "http.disconnect"}
        parts = self.body
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self.body_size = 0
        if not self.more_body:
            self.delivered = True
        protocol.resume_reading()
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    async def send(self, message: dict[str, Any]) -> None:
        """Write the answer: the head with the first body bytes, the body as sent
        (chunked when no length was given)."""
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected http.response.start, got {kind!r}")
            if self.disconnected or self.protocol.closing:
                raise ClientDisconnected  # ASGI 2.4: an OSError once the client has gone
            self._start(message["status"], message.get("headers", ()))
            return
        if kind != "http.response.body":
            raise RuntimeError(f"expected http.response.body, got {kind!r}")
        if self.complete:
            raise RuntimeError("the answer is already complete")
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        protocol = self.protocol
        if self.disconnected or protocol.closing:
            # ASGI 2.4: the app learns at its next send that the client has gone (uvicorn's
            # protocol drops the message instead), so it needs no task watching receive().
            raise ClientDisconnected
        data = body
        if self.head_only or self.status in _NO_BODY_STATUS:
            data = b""
        elif self.chunked:
            data = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if not more:
                data += b"0\r\n\r\n"
        elif self._expected is not None:
            self._sent += len(body)
            if self._sent > self._expected:
                raise RuntimeError("answer body longer than its content-length")
            if not more and self._sent < self._expected:
                raise RuntimeError("answer body shorter than its content-length")
        if self._head is not None:
            data = self._head + data
            self._head = None
        if data:
            protocol.transport.write(data)
        if not more:
            self.complete = True
            self.wake()
            protocol.answered(self)
        elif protocol.write_paused:
            await protocol.drain()

    def _start(self, status: int, headers: Any) -> None:
        # All or nothing: a head refused here leaves the cycle as it was, so the app can
        # still answer (spendgate's own 500 after a fault).
        protocol = self.protocol
        head = [_STATUS.get(status) or _status_line(status)]
        lines = 1
        length: int | None = None
        keep_alive = self.keep_alive
        chunked = False
        defaults = protocol.server_state.default_headers  # uvicorn's Config(headers=...)
        for name, value in (*defaults, *headers) if defaults else headers:
            if len(name) in _FRAMING_SIZES:  # lower-cased only when it may be one of them
                lower = name.lower()
                if lower == b"content-length":  # kept where the app put it (order is kept)
                    digits = value.strip(b" \t")
                    if not digits.isdigit() or (length is not None and int(digits) != length):
                        raise RuntimeError(f"content-length {value!r} does not frame the answer")
                    length = int(digits)
                elif lower == b"transfer-encoding":
                    continue  # the framing is this server's (chunked when no length)
                elif lower == b"connection" and b"close" in value.lower():
                    keep_alive = False
                    continue
            head += [name, b": ", value, b"\r\n"]
            lines += 1
        if length is None and not self.head_only and status not in _NO_BODY_STATUS:
            chunked = status >= 200
        if chunked:
            head.append(b"transfer-encoding: chunked\r\n")
            lines += 1
        if not keep_alive:
            head.append(b"connection: close\r\n")
            lines += 1
        head.append(b"\r\n")
        data = b"".join(head)
        # A line break inside a name or value would split the answer: one count over
        # the whole head finds any (every line ends in exactly one CRLF).
        if data.count(b"\n") != lines + 1 or data.count(b"\r") != lines + 1:
            raise RuntimeError("a header name or value holds a line break")
        if length is not None:
            self._expected = None if self.head_only else length
        self.status, self.chunked, self.keep_alive = status, chunked, keep_alive
        self.started = True
        self._head = data
        # Sent with the first body bytes, or at the end of this loop turn if none come.
        # (No reference to the handle is kept: it would make a cycle the collector frees.)
        protocol.loop.call_soon(self._flush_head)
        if protocol.access_log:
            access_log.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(self.scope),  # type: ignore[arg-type]
                self.scope["method"],
                get_path_with_query_string(self.scope),  # type: ignore[arg-type]
                self.scope["http_version"],
                status,
            )

    def _flush_head(self) -> None:
        if self._head is not None and not self.disconnected and not self.protocol.closing:
            self.protocol.transport.write(self._head)
        self._head = None


class GatewayProtocol(asyncio.Protocol):
    """uvicorn's ``http`` protocol class for the gateway; see the module docstring."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self.root_path: str = config.root_path
        self.keepalive: float = config.timeout_keep_alive
        self.access_log = access_log.hasHandlers()  # as uvicorn decides it
        self.parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(AttributeError):  # httptools < 0.6.3
            # As uvicorn: a request with Connection: close followed by more bytes is
            # still answered (llhttp would otherwise fail on the bytes after it).
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: Any = None
        self.client: Any = None
        self.scheme = "http"
        # The request being read, the one being answered, and those waiting their turn.
        self.reading: _Cycle | None = None
        self.running: _Cycle | None = None
        self.waiting: collections.deque[_Cycle] = collections.deque()
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._continue = False
        self.reading_paused = False
        self.write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_since = 0.0
        self._active = False  # bytes arrived since the idle timer last looked
        self.closing = False
        self.invalid = False  # bytes that were not HTTP followed the requests in flight
        self.stopping = False  # the server is shutting down: answer, then close

    # -- connection ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server_state.connections.add(self)
        self.server = get_local_addr(self.transport)
        self.client = get_remote_addr(self.transport)
        if is_ssl(self.transport):
            self.scheme = "https"
        self._idle_since = self.loop.time()
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self.closing = True
        for cycle in (self.running, self.reading, *self.waiting):
            if cycle is not None and not cycle.complete:
                cycle.disconnected = True
                cycle.wake()
        self.waiting.clear()
        self.running = self.reading = None
        self.parser = None  # type: ignore[assignment]  # its callbacks hold this protocol
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self.write_paused = False
        self._wake_drain()

    def eof_received(self) -> bool | None:
        return None  # close the transport (the client is done sending)

    def data_received(self, data: bytes) -> None:
        self._active = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No upgrade is supported: the request is answered as plain HTTP/1.1 and the
            # connection closed after it (the parser cannot read past an upgrade).
            last = self.reading or (self.waiting[-1] if self.waiting else self.running)
            if last is not None:
                last.keep_alive = False
            reading, self.reading = self.reading, None
            if reading is not None and reading.more_body:  # nothing more will be read
                reading.more_body = False
                reading.wake()
            self.pause_reading()
        except httptools.HttpParserError:
            log.warning("Invalid HTTP request received.")
            self._invalid_request()

    def _invalid_request(self) -> None:
        """Bytes that are not HTTP: a 400, then the connection closes. Requests complete
        before them (pipelined, or one being answered) are answered first, in order."""
        bad, self.reading = self.reading, None
        running = self.running
        if bad is not None and bad is running:
            # The request being answered is itself cut short: its app may still be
            # reading the body, so no answer can follow it; the connection just closes.
            self._close()
            return
        if bad is not None and bad in self.waiting:
            self.waiting.remove(bad)  # never run: its request is not valid
        if running is None or running.complete:
            self._answer_invalid()
            return
        self.invalid = True  # answered() sends the 400 after the last answer due
        self.pause_reading()

    def _answer_invalid(self) -> None:
        self.transport.write(_own_answer(400, "Invalid HTTP request received."))
        self._close()

    def shutdown(self) -> None:
        """The server is stopping: close now if no answer is in flight, else after it."""
        self.stopping = True
        if self.running is None or self.running.complete:
            self._close()
            return
        for cycle in (self.running, self.reading, *self.waiting):
            if cycle is not None:
                cycle.keep_alive = False

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()

    async def drain(self) -> None:
        """Wait until the transport takes writes again (or the client has gone)."""
        if self.write_paused and not self.closing:
            if self._drain is None:
                self._drain = self.loop.create_future()
            await asyncio.shield(self._drain)

    def _wake_drain(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_reading(self) -> None:
        if not self.reading_paused and not self.closing:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and not self.closing and not self.waiting and not self.invalid:
            reading = self.reading
            if reading is not None and reading.body_size > HIGH_WATER:
                return
            self.reading_paused = False
            self.transport.resume_reading()

    def _close(self) -> None:
        if not self.closing:
            self.closing = True
            self.transport.close()

    # -- idle keep-alive connections -------------------------------------------------

    def _arm_idle_timer(self) -> None:
        if self._idle_timer is None and self.keepalive > 0:
            self._idle_timer = self.loop.call_at(
                self._idle_since + self.keepalive, self._idle_check
            )

    def _idle_check(self) -> None:
        """Close a connection idle for the keep-alive timeout; one timer per connection,
        re-armed here (not per request) while it is busy or was used since."""
        self._idle_timer = None
        if self.closing:
            return
        busy = self._active or (self.running is not None and not self.running.complete)
        self._active = False
        if busy:
            self._idle_since = self.loop.time()
        elif self.loop.time() - self._idle_since >= self.keepalive:
            self._close()
            return
        self._arm_idle_timer()

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace
        if name == b"expect" and value.lower() == b"100-continue":
            self._continue = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        version = parser.get_http_version()
        url = httptools.parse_url(self._url)
        raw_path: bytes = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": parser.get_method().decode("ascii"),
            "root_path": self.root_path,
            "path": self.root_path + path,
            "raw_path": self.root_path.encode("ascii") + raw_path,
            "query_string": url.query or b"",
            "headers": self._headers,
            "state": self.app_state.copy(),
        }
        keep_alive = version != "1.0" and parser.should_keep_alive() and not self.stopping
        cycle = _Cycle(self, scope, keep_alive, self._continue)
        self.reading = cycle
        if self.running is None or self.running.complete:
            self._run(cycle)
        else:  # pipelined: waits for the answer in flight (reading pauses meanwhile)
            self.waiting.append(cycle)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self.reading
        if cycle is None or cycle.complete:
            return
        cycle.body.append(body)
        cycle.body_size += len(body)
        if cycle.body_size > HIGH_WATER:
            self.pause_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        cycle = self.reading
        self.reading = None
        if cycle is None or cycle.complete:
            return
        cycle.more_body = False
        cycle.wake()

    # -- running the app ---------------------------------------------------------------

    def _run(self, cycle: _Cycle) -> None:
        self.running = cycle
        task = self.loop.create_task(self._serve(cycle))
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _serve(self, cycle: _Cycle) -> None:
        try:
            await self.app(cycle.scope, cycle.receive, cycle.send)
        except asyncio.CancelledError:
            if not cycle.complete:
                self._close()
            raise
        except BaseException:
            if cycle.disconnected:  # the app stopped because the client had gone
                log.debug("ASGI application ended on a disconnect", exc_info=True)
            else:
                log.exception("Exception in ASGI application")
            if not cycle.started and not cycle.disconnected:
                self._fail(cycle)
            elif not cycle.complete:
                self._close()
        else:
            if not cycle.started and not cycle.disconnected:
                log.error("ASGI callable returned without starting response.")
                self._fail(cycle)
            elif not cycle.complete and not cycle.disconnected:
                log.error("ASGI callable returned without completing response.")
                self._close()

    def _fail(self, cycle: _Cycle) -> None:
        cycle.started = cycle.complete = True
        cycle.status = 500
        self.transport.write(_own_answer(500, "Internal Server Error"))
        self._close()

    def answered(self, cycle: _Cycle) -> None:
        """``cycle``'s answer is complete: keep the connection or close it, and start the
        next pipelined request."""
        if cycle is not self.running:
            return
        self.server_state.total_requests += 1  # uvicorn's limit_max_requests counts these
        if cycle is self.reading:  # answered before its body was read: the rest is dropped
            cycle.body.clear()
            cycle.body_size = 0
            if cycle.continue_:  # no 100 was sent, so the client will not send the body
                cycle.keep_alive = False
        if not cycle.keep_alive or self.closing:
            self._close()
            return
        if self.waiting:
            self._run(self.waiting.popleft())
        elif self.invalid:  # bytes that were not HTTP came after this request
            self._answer_invalid()
            return
        self._idle_since = self.loop.time()
        self._arm_idle_timer()
        self.resume_reading()

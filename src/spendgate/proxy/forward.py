"""The hot path: forward one call to Anthropic as a plain ASGI handler.

Bytes are relayed as they arrive, one ``send()`` per upstream chunk; nothing is
re-serialised. The capture reads usage from the same bytes on the side, and
the finished record is handed to the recorder, which writes it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

import aiohttp
import orjson

from spendgate.logs import Every, describe
from spendgate.proxy.auth import OUR_HEADERS, Authenticator, AuthError, Resolved
from spendgate.proxy.capture import Captured, JsonCapture, SseCapture
from spendgate.proxy.errors import ClientGone, Refused, send_error
from spendgate.proxy.upstream import UpstreamClient, UpstreamError
from spendgate.records import CLIENT_GONE, GATEWAY_ERROR, CallRecord, utcnow
from spendgate.usage import Usage

log = logging.getLogger("spendgate.proxy")
# Kinds of fault logged each on a timer of its own; more share one.
_FAULT_KINDS = 32

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Calls Anthropic bills by usage. Everything else is recorded as traffic at $0.
BILLABLE = frozenset({"/v1/messages", "/v1/complete"})
# Request bodies read whole so model, stream and max_tokens are known before forwarding.
READ_BODY = frozenset({"/v1/messages", "/v1/messages/count_tokens", "/v1/complete"})
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)
_CREDENTIAL_HEADERS = frozenset({b"x-api-key", b"authorization"})
_READABLE_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate", "identity"})
# Bodies with a known length up to this size are read in one go and sent in one message.
_SMALL_BODY = 256 * 1024
_ONE_MS = timedelta(milliseconds=1)  # divides a timedelta into float milliseconds


class RequestInfo(NamedTuple):
    """What the request body says, read without changing it.

    A named tuple, not a frozen dataclass: one is built for every call, and a frozen
    dataclass sets each field through ``object.__setattr__`` (3x the cost).
    """

    model: str | None = None
    stream: bool = False
    max_tokens: int | None = None
    body: bytes | None = None


def read_request_info(body: bytes) -> RequestInfo:
    """Model, stream flag and max_tokens of a Messages body; blanks when it is not JSON."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return RequestInfo(body=body)
    if not isinstance(doc, dict):
        return RequestInfo(body=body)
    model = doc.get("model")
    max_tokens = doc.get("max_tokens")
    return RequestInfo(
        model=model if isinstance(model, str) else None,
        stream=doc.get("stream") is True,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        body=body,
    )


async def read_body(receive: Receive) -> bytes:
    """The whole request body."""
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def stream_body(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives (uploads are never held in memory)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body"):
            return


def _filter_accept_encoding(value: bytes) -> bytes:
    # Usage must be readable from the response; keep only encodings we can decode.
    kept = [
        part
        for part in value.decode("latin-1").split(",")
        if part.split(";")[0].strip().lower() in _READABLE_ENCODINGS
    ]
    return ",".join(kept).strip().encode("latin-1") or b"identity"


def upstream_headers(
    headers: list[tuple[bytes, bytes]], resolved: Resolved, *, billable: bool
) -> list[tuple[bytes, bytes]]:
    """Client headers minus hop-by-hop and ours, with the upstream credential in place."""
    replace_auth = resolved.upstream_auth is not None
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name in HOP_BY_HOP or name in OUR_HEADERS:
            continue
        if replace_auth and name in _CREDENTIAL_HEADERS:
            continue
        if billable and name == b"accept-encoding":
            out.append((b"accept-encoding", _filter_accept_encoding(value)))
            continue
        out.append((name, value))
    if resolved.upstream_auth:
        out.extend(resolved.upstream_auth)
    return out


class UpstreamResponse(Protocol):
    """What the relay reads of an upstream answer (the lean client's, or aiohttp's)."""

    status: int
    content_length: int | None

    @property
    def raw_headers(self) -> Any: ...

    @property
    def headers(self) -> Any: ...

    def iter_any(self) -> AsyncIterator[bytes]: ...

    def at_end(self) -> bool: ...

    async def read(self) -> bytes: ...

    def release(self) -> None: ...


class _AiohttpResponse:
    """aiohttp's response behind the same few names (calls the lean client leaves)."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.content_length = resp.content_length
        self.raw_headers = resp.raw_headers
        self.headers = resp.headers

    def iter_any(self) -> AsyncIterator[bytes]:
        return self._resp.content.iter_any()

    def at_end(self) -> bool:
        return self._resp.content.at_eof()

    async def read(self) -> bytes:
        return await self._resp.read()

    def release(self) -> None:
        self._resp.release()


# A broken or cut-off upstream answer, from either client.
_BROKEN = (aiohttp.ClientError, UpstreamError, TimeoutError, asyncio.IncompleteReadError)


def _response_headers(resp: UpstreamResponse) -> list[tuple[bytes, bytes]]:
    out = []
    for name, value in resp.raw_headers:
        lower = name.lower()
        if lower not in HOP_BY_HOP:
            out.append((lower, value))
    return out


Hook = Callable[[Resolved, RequestInfo, str], Awaitable[Any]]
Settle = Callable[[Any, CallRecord], Awaitable[None]]
# Message Batches (spendgate.batches) take every call under this path.
BATCHES_PATH = "/v1/messages/batches"


class Capture(Protocol):
    """Reads a response body on the side as it is relayed."""

    def feed(self, chunk: bytes) -> None: ...

    def result(self) -> Captured: ...


class BatchCall(Protocol):
    """The side work of one Message Batches call (see :mod:`spendgate.batches`)."""

    body: bytes | None  # the request body, read by the hook; forwarded as is

    @property
    def rewrites(self) -> bool: ...

    def tee(self, encoding: str | None) -> Capture | None: ...

    async def rewrite(self, body: bytes, encoding: str | None) -> bytes: ...

    async def finish(self, record: CallRecord) -> None: ...


BatchHook = Callable[
    [Scope, Receive, Resolved, CallRecord, Callable[[CallRecord], None]],
    Awaitable[BatchCall | None],
]


class Proxy:
    """Forwards ``/v1/*`` to the upstream and records each call."""

    def __init__(
        self,
        *,
        upstream_url: str,
        authenticator: Authenticator,
        submit: Callable[[CallRecord], None],
        connect_timeout: float = 10.0,
        read_timeout: float = 900.0,
    ) -> None:
        self.upstream_url = upstream_url
        self.authenticator = authenticator
        self.submit = submit
        # The lean client forwards what it can (spendgate.proxy.upstream), aiohttp the rest.
        self.client: UpstreamClient | None = None
        self.session: aiohttp.ClientSession | None = None
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=read_timeout
        )
        # Budget reservation (keys/budgets) plugs in here: reserve before
        # forwarding, settle with the finished record.
        self.reserve: Hook | None = None
        self.settle: Settle | None = None
        # Message Batches: budgets at creation, usage read from the results.
        self.batches: BatchHook | None = None
        # Calls being handled now (graceful shutdown and flush wait for zero).
        self.in_flight = 0
        self._faults: dict[type[Exception], Every] = {}  # log lines per kind of fault

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        record = CallRecord(created_at=utcnow(), method=scope["method"], endpoint=scope["path"])
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        record.user_agent = _header(headers, b"user-agent")
        self.in_flight += 1
        try:
            await self._handle(scope, receive, send, record, started)
        except ClientGone:
            _client_gone(record)
        except Exception as exc:
            if record.status_code is not None:
                raise  # the upstream's answer has begun: recorded as it stands
            await self._failed(send, record, exc)
        finally:
            self.in_flight -= 1
            if record.status_code is not None:
                self._finish(record, started)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, record: CallRecord, started: float
    ) -> None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        path: str = scope["path"]
        try:
            resolved = await self.authenticator.resolve(headers)
        except AuthError as exc:
            await send_error(send, exc.status, exc.error_type, str(exc))
            return
        record.attribution = resolved.attribution
        billable = path in BILLABLE and record.method == "POST"
        info = RequestInfo()
        if record.method == "POST" and path in READ_BODY:
            info = read_request_info(await read_body(receive))
        record.model_requested = info.model
        record.stream = info.stream
        record.billable = billable
        batch = None
        if self.batches is not None and path.startswith(BATCHES_PATH):
            try:
                batch = await self.batches(scope, receive, resolved, record, self.submit)
            except Refused as refusal:
                await _refuse(send, record, refusal)
                return
            if batch is not None and batch.body is not None:
                info = RequestInfo(body=batch.body)
        reservation = None
        if self.reserve is not None and billable:
            try:
                reservation = await self.reserve(resolved, info, path)
            except Refused as refusal:
                await _refuse(send, record, refusal)
                return
        try:
            await self._forward(scope, receive, send, record, resolved, info, batch)
        except ClientGone:
            _client_gone(record)  # marked before the settlement below prices it
            raise
        except Exception:
            if record.status_code is None:
                _faulted(record)  # marked before the settlement below prices it
            raise
        finally:
            if self.settle is not None and reservation is not None:
                await self.settle(reservation, record)
            if batch is not None:
                await batch.finish(record)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        record: CallRecord,
        resolved: Resolved,
        info: RequestInfo,
        batch: BatchCall | None = None,
    ) -> None:
        assert self.session is not None, "proxy used before the app started"
        query = scope.get("query_string", b"")
        raw_path = scope.get("raw_path") or scope["path"].encode()
        target = raw_path.decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        method: str = scope["method"]
        headers = upstream_headers(
            scope["headers"], resolved, billable=record.billable or batch is not None
        )
        data: Any = info.body if info.body is not None else None
        if data is None and method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            data = stream_body(receive)
        record.forwarded_at = utcnow()
        resp: UpstreamResponse
        try:
            if self.client is not None and UpstreamClient.handles(method, info.body, headers):
                resp = await self.client.request(method, target, headers, data)
            else:
                resp = _AiohttpResponse(
                    await self.session.request(
                        method,
                        self.upstream_url + target,
                        headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers],
                        data=data,
                        allow_redirects=False,
                        timeout=self.timeout,
                        skip_auto_headers=(
                            "User-Agent",
                            "Accept",
                            "Accept-Encoding",
                            "Content-Type",
                        ),
                        auto_decompress=False,
                    )
                )
        except (TimeoutError, aiohttp.ServerTimeoutError):
            await self._upstream_failed(send, record, 504, "timeout_error", "timed out")
            return
        except (aiohttp.ClientError, UpstreamError) as exc:
            await self._upstream_failed(send, record, 502, "api_error", f"unreachable ({exc})")
            return
        # Once the request body is read, the only message left on ``receive`` is
        # the client's disconnect: a streamed relay watches it (see _relay_body),
        # unless the server's send() raises once the client has gone (ASGI 2.4).
        watch = (data is None or info.body is not None) and _drops_sends_when_gone(scope)
        try:
            await self._relay(resp, send, record, receive if watch else None, batch)
        finally:
            resp.release()

    async def _failed(self, send: Send, record: CallRecord, exc: Exception) -> None:
        """A fault of spendgate's own before any answer: the client gets a 500 in
        Anthropic's shape (the SDKs retry it) and the call is recorded, not lost. The
        traceback is logged at most every :data:`~spendgate.logs.EVERY_SECONDS` per kind
        of fault: one in the path of every call would log a traceback a call."""
        every = self._faults.get(type(exc))
        if every is None:  # a new kind: a timer of its own, or the shared one past the cap
            kind = type(exc) if len(self._faults) < _FAULT_KINDS else Exception
            every = self._faults.setdefault(kind, Every())
        every.log(
            log,
            logging.ERROR,
            "spendgate failed to handle a call to %s %s: %s",
            record.method,
            record.endpoint,
            describe(exc),
            exc_info=True,
        )
        message = (
            "spendgate: the gateway failed to handle this call (a fault of its own, in "
            "its log); retry, and report it if it persists"
        )
        _faulted(record)
        record.status_code = 500
        record.error_message = message
        with contextlib.suppress(ClientGone):  # the client may have gone meanwhile
            record.request_id = await send_error(send, 500, "api_error", message)

    async def _upstream_failed(
        self, send: Send, record: CallRecord, status: int, error_type: str, what: str
    ) -> None:
        message = (
            f"spendgate: upstream {self.upstream_url} {what}. Check that SPENDGATE_UPSTREAM_URL "
            "is right and reachable from the gateway, or raise SPENDGATE_CONNECT_TIMEOUT / "
            "SPENDGATE_READ_TIMEOUT"
        )
        record.status_code = status
        record.error_type = "upstream_timeout" if status == 504 else "upstream_unreachable"
        record.error_message = message
        record.complete = False
        record.billable = False
        record.request_id = await send_error(send, status, error_type, message)

    async def _relay(
        self,
        resp: UpstreamResponse,
        send: Send,
        record: CallRecord,
        receive: Receive | None,
        batch: BatchCall | None = None,
    ) -> None:
        record.request_id = resp.headers.get("request-id")
        content_type = resp.headers.get("content-type", "")
        encoding = resp.headers.get("content-encoding")
        is_sse = content_type.startswith("text/event-stream")
        record.stream = record.stream or is_sse
        capture: Capture | None = None
        if (record.billable or resp.status >= 400) and (
            encoding or "identity"
        ) in _READABLE_ENCODINGS:
            capture = SseCapture(encoding) if is_sse else JsonCapture(encoding)
        if batch is not None and resp.status < 400:
            if batch.rewrites:
                await self._relay_rewritten(resp, send, record, batch, encoding)
                return
            capture = batch.tee(encoding)
        try:
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": resp.status,
                        "headers": _response_headers(resp),
                    }
                )
            except OSError as exc:
                # The client went before the head (a timeout on a long call): what the
                # upstream answered is billed all the same, so its usage is still read.
                record.status_code = resp.status
                if capture is not None:
                    await _read_usage_only(resp, capture)
                raise ClientGone from exc
            # Set once the head is the server's: before it, a fault is spendgate's 500.
            record.status_code = resp.status
            await self._relay_body(resp, send, record, capture, receive)
        finally:
            if capture is not None:
                self._apply_capture(record, capture.result(), is_sse)
            if resp.status >= 400:
                record.billable = False

    async def _relay_body(
        self,
        resp: UpstreamResponse,
        send: Send,
        record: CallRecord,
        capture: Capture | None,
        receive: Receive | None,
    ) -> None:
        length = resp.content_length
        watch: asyncio.Future[Any] | None = None
        ended = False
        try:
            if length is not None and length <= _SMALL_BODY:
                body = await resp.read()
                self._mark_first_byte(record)
                if capture is not None:
                    capture.feed(body)
                await _send_body(send, body, more=False)
                return
            # uvicorn's protocol drops sends to a gone client silently, so there a
            # streamed relay watches for the disconnect (a one-shot body needs none).
            if receive is not None:
                watch = asyncio.ensure_future(_disconnected(receive))
            async for chunk in resp.iter_any():
                if record.first_byte_at is None:
                    self._mark_first_byte(record)
                try:
                    if watch is not None and watch.done():
                        raise ClientGone
                    # The upstream's body is complete: its last bytes end the answer in
                    # the same write (one syscall and one wake-up of the client fewer).
                    ended = resp.at_end()
                    await _send_body(send, chunk, more=not ended)
                except ClientGone:
                    if capture is not None:  # billed all the same: read for its usage
                        with contextlib.suppress(Exception):  # the client's exit stands
                            capture.feed(chunk)
                    raise
                # Read after the bytes are on their way: parsing a usage event before
                # the write cost the client its wait.
                if capture is not None:
                    capture.feed(chunk)
        except _BROKEN as exc:
            record.complete = False
            record.error_type = (
                "upstream_timeout" if isinstance(exc, TimeoutError) else "upstream_reset"
            )
            record.error_message = f"{type(exc).__name__}: {exc}"[:500]
            # Headers are gone already: end the client's response abruptly, as
            # the upstream did, so the client sees a broken stream, not success.
            raise ClientGone from exc
        finally:
            if watch is not None and not watch.done():
                watch.cancel()
        if not ended:
            await _send_body(send, b"", more=False)

    async def _relay_rewritten(
        self,
        resp: UpstreamResponse,
        send: Send,
        record: CallRecord,
        batch: BatchCall,
        encoding: str | None,
    ) -> None:
        """A small JSON answer read whole and passed through the batch hook."""
        try:
            body = await resp.read()
        except _BROKEN as exc:
            record.complete = False
            record.error_type = "upstream_reset"
            record.error_message = f"{type(exc).__name__}: {exc}"[:500]
            record.status_code = 502
            await send_error(send, 502, "api_error", "spendgate: upstream answer cut short")
            return
        self._mark_first_byte(record)
        headers = _response_headers(resp)
        changed = await batch.rewrite(body, encoding)
        if changed is not body:
            drop = (b"content-length", b"content-encoding")
            headers = [(n, v) for n, v in headers if n not in drop]
            headers.append((b"content-length", str(len(changed)).encode()))
        try:
            await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        except OSError as exc:
            record.status_code = resp.status
            raise ClientGone from exc
        record.status_code = resp.status  # once the head is the server's (see _relay)
        await _send_body(send, changed, more=False)

    @staticmethod
    def _mark_first_byte(record: CallRecord) -> None:
        record.first_byte_at = utcnow()

    @staticmethod
    def _apply_capture(record: CallRecord, captured: Captured, is_sse: bool) -> None:
        record.usage = Usage.from_raw(captured.usage)
        record.model = captured.model or record.model_requested
        record.message_id = captured.message_id
        record.stop_reason = captured.stop_reason
        if captured.error_type:
            record.error_type = captured.error_type
            record.error_message = captured.error_message
            record.complete = False if is_sse else record.complete
        if is_sse and not captured.saw_message_stop and record.status_code == 200:
            record.complete = False

    def _finish(self, record: CallRecord, started: float) -> None:
        # Whole microseconds (what the timestamps hold), without round()'s decimal
        # conversion: milliseconds with three decimals, as before.
        micros = int((time.perf_counter() - started) * 1_000_000)
        record.latency_ms = micros / 1000
        record.ended_at = record.created_at + timedelta(microseconds=micros)
        if record.first_byte_at is not None:
            record.ttft_ms = (record.first_byte_at - record.created_at) / _ONE_MS
        if record.model is None:
            record.model = record.model_requested
        try:
            self.submit(record)
        except Exception:  # recording must never break the proxied call
            log.exception("could not submit call record %s", record.id)


# ASGI versions whose servers may drop a send to a gone client instead of raising OSError.
_DROPPING_SPECS = frozenset({"2.0", "2.1", "2.2", "2.3"})


def _drops_sends_when_gone(scope: Scope) -> bool:
    """Whether the server drops sends once the client has gone (uvicorn's protocol) rather
    than raising ``OSError`` from them (ASGI 2.4: spendgate's own, spendgate.httpserver)."""
    asgi = scope.get("asgi")
    return not isinstance(asgi, dict) or asgi.get("spec_version", "2.0") in _DROPPING_SPECS


# How long the usage of an answer whose client has gone is waited for, at most.
_GONE_USAGE_SECONDS = 10.0


async def _read_usage_only(resp: UpstreamResponse, capture: Capture) -> None:
    """Feed ``capture`` without relaying: a one-shot body whole, a stream up to its first
    usage (``message_start``: the input's tokens), then stop; best effort, bounded."""
    try:
        async with asyncio.timeout(_GONE_USAGE_SECONDS):
            if resp.content_length is not None and resp.content_length <= _SMALL_BODY:
                capture.feed(await resp.read())
                return
            if not isinstance(capture, SseCapture):
                return  # a large body: not read for a client who is not there
            async for chunk in resp.iter_any():
                capture.feed(chunk)
                if capture.captured.usage is not None:
                    return
    except _BROKEN:
        return


async def _refuse(send: Send, record: CallRecord, refusal: Refused) -> None:
    """Mark a refused call's record (it is not forwarded; recorded even if the client
    has gone) and answer it."""
    record.status_code = refusal.status
    record.error_type = refusal.reason
    record.error_message = refusal.message
    record.billable = False
    await send_error(
        send, refusal.status, refusal.error_type, refusal.message, extra_headers=refusal.headers
    )


def _client_gone(record: CallRecord) -> None:
    """Mark a call whose client left before its answer was relayed whole (what it was
    answered is recorded all the same; see ``CallRecord.usage_unknown``)."""
    record.complete = False
    record.error_type = record.error_type or CLIENT_GONE


def _faulted(record: CallRecord) -> None:
    """Mark a call hit by a fault of spendgate's own before any answer began. If it was
    forwarded the upstream may have billed it: pricing leaves it unpriced
    (``CallRecord.usage_unknown``; a budget charges it its reservation, and it is
    listed among the unpriced calls); if not, it is not billable."""
    record.error_type = GATEWAY_ERROR
    record.complete = False
    if record.forwarded_at is None:
        record.billable = False


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (any leftover empty body messages are skipped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_body(send: Send, body: bytes, *, more: bool) -> None:
    try:
        await send({"type": "http.response.body", "body": body, "more_body": more})
    except OSError as exc:
        raise ClientGone from exc


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")[:512]
    return None

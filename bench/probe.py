"""Time to first byte and inter-event delay of a stream, seen from the client at c=1.

wrk times whole responses only. This probe sends the streaming request over one
keep-alive connection, one call after another, and timestamps every ``recv()``:
the first byte of the response (TTFB), the end of the first SSE event and the end of
the last. The upstream spaces the events ``GAP_MS`` apart (asked for in the body, which
every proxy forwards), so each is relayed on its own. Per call, the inter-event delay is
(last - first) / (events - 1); a relay that adds nothing per chunk shows the same as
direct. Event ends
are found by counting blank lines (``\\n\\n``) in the raw bytes: chunk-size lines of
the chunked encoding end in ``\\r\\n`` and cannot make one. The probe is bounded in
time and in calls; run it on the same target as the direct baseline to get "added".
"""

from __future__ import annotations

import socket
import statistics
import time
from dataclasses import dataclass

_END = b"\r\n0\r\n\r\n"


class ProbeError(RuntimeError):
    """The target did not answer the stream as expected."""


class _Closed(Exception):
    """The server closed the idle connection before answering."""


# The probe's stream: events 1 ms apart, so each is relayed on its own (a burst is
# coalesced by any proxy) and "per event" measures the relay, not the coalescing.
GAP_MS = 1
BODY = (
    '{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,'
    f'"metadata":{{"user_id":"bench-gap-{GAP_MS}"}},'
    '"messages":[{"role":"user","content":"Hello, world"}]}'
).encode()


@dataclass(frozen=True)
class StreamTiming:
    """Medians over the probe's calls, in microseconds."""

    calls: int
    events: int
    ttfb_p50_us: float
    ttfb_p99_us: float
    first_event_p50_us: float
    per_event_p50_us: float
    total_p50_us: float


def _request(path: str, host: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _one(sock: socket.socket, request: bytes) -> tuple[float, float, float, float, int]:
    """(ttfb, first event end, last event end, done) in seconds from the send, and events."""
    t0 = time.perf_counter()
    sock.sendall(request)
    ttfb = first = last = 0.0
    events = 0
    head_done = False
    buffer = b""
    tail = b""
    while True:
        data = sock.recv(65536)
        now = time.perf_counter() - t0
        if not data:
            if not ttfb:
                raise _Closed  # a keep-alive limit (nginx: 1,000 calls): reconnect
            raise ProbeError("connection closed mid-response")
        if not ttfb:
            ttfb = now
        if not head_done:
            buffer += data
            split = buffer.find(b"\r\n\r\n")
            if split < 0:
                continue
            status = buffer.split(b" ", 2)[1]
            if status != b"200":
                raise ProbeError(f"HTTP {status.decode()}: {buffer[:300]!r}")
            head_done = True
            data = buffer[split + 4 :]
        window = tail + data
        found = window.count(b"\n\n") - tail.count(b"\n\n")
        if found:
            events += found
            if not first:
                first = now
            last = now
        tail = window[-8:]
        if window.endswith(_END):
            return ttfb, first, last, now, events


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def probe(
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    seconds: float = 3.0,
    max_calls: int = 5000,
) -> StreamTiming:
    """Sequential streaming calls to ``127.0.0.1:port`` for ``seconds``; medians of them."""
    request = _request(path, f"127.0.0.1:{port}", body, headers)
    deadline = time.monotonic() + seconds
    ttfbs: list[float] = []
    firsts: list[float] = []
    per_event: list[float] = []
    totals: list[float] = []
    events = 0
    sock = _connect(port)
    try:
        for i in range(20 + max_calls):
            if i >= 20 and (time.monotonic() >= deadline or len(ttfbs) >= max_calls):
                break
            if i == 20:
                deadline = time.monotonic() + seconds  # after the warm-up calls
            try:
                ttfb, first, last, done, events = _one(sock, request)
            except _Closed:
                sock.close()
                sock = _connect(port)
                continue
            if i < 20:
                continue
            ttfbs.append(ttfb)
            firsts.append(first)
            totals.append(done)
            if events > 1:
                per_event.append((last - first) / (events - 1))
    finally:
        sock.close()
    if not ttfbs:
        raise ProbeError("no call completed")
    ordered = sorted(ttfbs)
    return StreamTiming(
        calls=len(ttfbs),
        events=events,
        ttfb_p50_us=statistics.median(ttfbs) * 1e6,
        ttfb_p99_us=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
        first_event_p50_us=statistics.median(firsts) * 1e6,
        per_event_p50_us=statistics.median(per_event) * 1e6 if per_event else 0.0,
        total_p50_us=statistics.median(totals) * 1e6,
    )

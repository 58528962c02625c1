"""The fast fake upstream: a raw ASGI app (no framework), so the upstream costs little.

``POST /v1/messages`` answers a fixed ~1 KB Anthropic ``message`` JSON. When the request
body contains ``"stream":true`` it answers a 25-event SSE stream instead (``message_start``,
``content_block_start``, 20 ``content_block_delta``, ``content_block_stop``,
``message_delta``, ``message_stop``), one ASGI body message per event, with no delay
(or ``x-bench-gap-ms`` apart).
Usage objects have the real shape, so the gateway parses and prices what it would in
production. Run on its own process: ``python -m bench.upstream --port 9001``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MODEL = "claude-sonnet-4-5-20250929"
MESSAGE_ID = "msg_01XFDUDYJgAACzvnptvVoYEL"
REQUEST_ID = "req_011CSHoEeqs5C35K2UUqR7Fy"
INPUT_TOKENS = 2_095
OUTPUT_TOKENS = 503
CACHE_READ = 1_024

_TEXT = (
    "Hello! Here is a short answer so that the response body has a realistic size. "
    "spendgate reads the usage object from these bytes on the side while relaying them. "
) * 4


def _usage(output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": INPUT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": CACHE_READ,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message_body() -> bytes:
    """The fixed non-streaming answer (about 1 KB)."""
    doc = {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": _TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _usage(OUTPUT_TOKENS),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def sse_events() -> list[bytes]:
    """The fixed 25-event stream, one entry per event."""
    start = {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(1),
    }
    events = [
        _event("message_start", {"type": "message_start", "message": start}),
        _event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    for i in range(20):
        delta = {"type": "text_delta", "text": f"word{i} and a few more "}
        events.append(
            _event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
        )
    events.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": OUTPUT_TOKENS},
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


_BODY = message_body()
_EVENTS = sse_events()
_COMMON = [
    (b"request-id", REQUEST_ID.encode()),
    (b"anthropic-organization-id", b"00000000-0000-4000-8000-000000000000"),
    (b"anthropic-ratelimit-requests-limit", b"4000"),
    (b"anthropic-ratelimit-requests-remaining", b"3999"),
    (b"anthropic-ratelimit-input-tokens-limit", b"2000000"),
    (b"anthropic-ratelimit-input-tokens-remaining", b"1998000"),
]
_JSON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_BODY)).encode()),
    *_COMMON,
]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    *_COMMON,
]


def _gap_seconds(headers: list[tuple[bytes, bytes]], body: bytes) -> float:
    """A pause between SSE events: header ``x-bench-gap-ms`` (the soak), or a body with
    ``"user_id":"bench-gap-N"`` in its metadata (the probe: every proxy forwards bodies)."""
    at = body.find(b'"user_id":"bench-gap-')
    if at >= 0:
        digits = body[at + 21 : at + 27].split(b'"', 1)[0]
        try:
            return max(0.0, float(digits) / 1000)
        except ValueError:
            return 0.0
    for name, value in headers:
        if name == b"x-bench-gap-ms":
            try:
                return max(0.0, float(value) / 1000)
            except ValueError:
                return 0.0
    return 0.0


class FakeUpstream:
    """The ASGI app; counts the Messages calls it answered (``GET /bench/count``), so the
    bench can check that spendgate recorded every call it forwarded."""

    def __init__(self) -> None:
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST /v1/messages: JSON, or SSE when the body asks for a stream; anything else 404."""
        if scope["type"] != "http":  # served with lifespan="off"
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET" and scope["path"] == "/bench/count":
            count = str(self.answered).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": count})
            return
        if scope["method"] != "POST" or scope["path"] != "/v1/messages":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        self.answered += 1
        if b'"stream":true' in body:
            gap = _gap_seconds(scope["headers"], body)
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            for event in _EVENTS:
                await send({"type": "http.response.body", "body": event, "more_body": True})
                if gap:
                    await asyncio.sleep(gap)
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": _JSON_HEADERS})
        await send({"type": "http.response.body", "body": _BODY})


app = FakeUpstream()


def main() -> None:
    """Serve the fake upstream on loopback with uvicorn (uvloop, httptools), one process."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()

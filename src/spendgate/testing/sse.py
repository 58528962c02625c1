"""Server-sent events as the API writes them: one event per chunk, flushed at once."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from spendgate.testing.served import Exchange
from spendgate.testing.wire import dumps

CONTENT_TYPE = "text/event-stream; charset=utf-8"


class ClientGone(ConnectionError):
    """The client closed the connection while the fake was still streaming."""


def encode_event(event: str, data: Any) -> bytes:
    """One SSE frame: ``event: X\\ndata: {json}\\n\\n``."""
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


class EventStream:
    """A chunked ``text/event-stream`` answer that records every byte it writes."""

    def __init__(self, request: web.Request, exchange: Exchange, delay: float) -> None:
        self.request = request
        self.exchange = exchange
        self.delay = delay
        self.response = web.StreamResponse(
            status=200, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-cache"}
        )
        self._sent = 0

    async def open(self) -> None:
        """Send the status line and headers."""
        self.response.enable_chunked_encoding()
        self.exchange.stream = True
        self.exchange.status = 200
        self.exchange.completed = False
        await self.response.prepare(self.request)

    async def send(self, event: str, data: Any, *, last: bool = False) -> None:
        """Write one event as its own chunk, after the inter-chunk delay.

        ``last`` commits the record before the final bytes leave, so a client
        that has read the whole stream always finds it in the log.
        """
        if self._sent and self.delay > 0:
            await asyncio.sleep(self.delay)
        frame = encode_event(event, data)
        self.exchange.chunks.append(frame)
        self._sent += 1
        if last:
            self.exchange.commit()
        try:
            await self.response.write(frame)
        except ConnectionError as exc:
            self.exchange.completed = False
            self.exchange.commit()
            raise ClientGone("client closed the stream") from exc

    def abort(self) -> web.StreamResponse:
        """Drop the TCP connection mid-body: no terminating chunk is ever sent."""
        self.exchange.completed = False
        self.exchange.commit()
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        return self.response

"""Reading usage out of responses as they pass, without changing a byte.

The proxy forwards every chunk untouched and hands a reference to the capture;
the capture keeps what it needs. For streams it splits events at blank lines
and parses only the few that carry usage (``message_start``,
``message_delta``) or an ``error``; text deltas are skipped by a prefix check.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from spendgate.usage import JSON, merge_usage

_INTERESTING = (b"message_start", b"message_delta", b"message_stop", b"error")
_INTERESTING_NAMES = frozenset(_INTERESTING)
# Every interesting event's name contains one of these; a chunk with neither is skipped.
_MARK_MESSAGE, _MARK_ERROR = b"message_", b"error"
assert all(_MARK_MESSAGE in name or _MARK_ERROR in name for name in _INTERESTING)
# Non-streamed bodies larger than this are not parsed for usage (no Messages
# response comes near it; it bounds memory on odd endpoints).
MAX_JSON_CAPTURE = 64 * 1024 * 1024


@dataclass
class Captured:
    """What a response told us about the call."""

    usage: JSON | None = None
    model: str | None = None
    message_id: str | None = None
    stop_reason: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    saw_message_stop: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _decompressor(encoding: str | None) -> Any:
    if not encoding or encoding == "identity":
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise ValueError(encoding)


class JsonCapture:
    """Keeps a copy of a JSON body and reads it at the end."""

    def __init__(self, content_encoding: str | None = None) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._decomp = _decompressor(content_encoding)

    def feed(self, chunk: bytes) -> None:
        """Keep a chunk (bounded)."""
        if self._size <= MAX_JSON_CAPTURE:
            self._parts.append(chunk)
            self._size += len(chunk)

    def result(self) -> Captured:
        """Parse the body kept so far."""
        out = Captured()
        if self._size > MAX_JSON_CAPTURE:
            return out
        body = b"".join(self._parts)
        if self._decomp is not None:
            try:
                body = self._decomp.decompress(body) + self._decomp.flush()
            except zlib.error:
                return out
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return out
        if isinstance(doc, dict):
            read_message(doc, out)
        return out


def read_message(doc: dict[str, Any], out: Captured) -> None:
    """Fill ``out`` from a Message object or an error object."""
    if doc.get("type") == "error":
        _read_error(doc, out)
        return
    usage = doc.get("usage")
    if isinstance(usage, dict):
        out.usage = merge_usage(out.usage, usage)
    for name in ("model", "stop_reason"):
        value = doc.get(name)
        if isinstance(value, str):
            setattr(out, name, value)
    msg_id = doc.get("id")
    if isinstance(msg_id, str):
        out.message_id = msg_id


def _read_error(doc: dict[str, Any], out: Captured) -> None:
    error = doc.get("error")
    if isinstance(error, dict):
        etype, message = error.get("type"), error.get("message")
        out.error_type = etype if isinstance(etype, str) else "error"
        out.error_message = message[:500] if isinstance(message, str) else None
    else:
        out.error_type = "error"


class SseCapture:
    """Incremental SSE reader for the usage-bearing events of a Messages stream."""

    def __init__(self, content_encoding: str | None = None) -> None:
        self._buffer = b""
        self._decomp = _decompressor(content_encoding)
        self.captured = Captured()

    def feed(self, chunk: bytes) -> None:
        """Consume a chunk exactly as it was forwarded."""
        if self._decomp is not None:
            try:
                chunk = self._decomp.decompress(chunk)
            except zlib.error:
                self._decomp = None
                return
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            # CRLF framing is legal SSE (Anthropic sends LF); a CR held back at a
            # chunk edge is completed by the next chunk.
            buffer = buffer.replace(b"\r\n", b"\n")
        if _MARK_MESSAGE not in buffer and _MARK_ERROR not in buffer:
            # Most chunks are text deltas: no event that matters can be in them (every
            # name in _INTERESTING contains one of the marks), so only the unfinished
            # event at the end is kept (its name may be completed by the next chunk).
            end = buffer.rfind(b"\n\n")
            self._buffer = buffer[end + 2 :] if end >= 0 else buffer
            return
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            self._event(buffer[start:end])
            start = end + 2
        self._buffer = buffer[start:]

    def _event(self, block: bytes) -> None:
        # Cheap filter: most events are content_block_delta; skip them unparsed.
        # Anthropic names every event on its first line; a block without an
        # ``event:`` line is judged by the start of its data instead.
        if block.startswith(b"event:"):
            end = block.find(b"\n")
            if block[6 : end if end >= 0 else len(block)].strip() not in _INTERESTING_NAMES:
                return
        else:
            head = block[:64]
            if not any(name in head for name in _INTERESTING):
                return
        data = b"".join(
            line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")
        )
        if not data:
            return
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict):
            self._apply(doc)

    def _apply(self, doc: dict[str, Any]) -> None:
        kind = doc.get("type")
        out = self.captured
        if kind == "message_start":
            message = doc.get("message")
            if isinstance(message, dict):
                read_message(message, out)
        elif kind == "message_delta":
            usage = doc.get("usage")
            if isinstance(usage, dict):
                out.usage = merge_usage(out.usage, usage)
            delta = doc.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                out.stop_reason = delta["stop_reason"]
        elif kind == "message_stop":
            out.saw_message_stop = True
        elif kind == "error":
            _read_error(doc, out)

    def result(self) -> Captured:
        """What the stream said so far (the tail without a blank line is parsed too)."""
        if self._buffer.strip():
            self._event(self._buffer.strip())
            self._buffer = b""
        return self.captured

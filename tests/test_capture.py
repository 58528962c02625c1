"""Reading usage from an SSE stream as it passes: any chunking reads the same."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from spendgate.proxy.capture import Captured, SseCapture

USAGE_START = {"input_tokens": 2095, "cache_read_input_tokens": 1024, "output_tokens": 1}
USAGE_END = {"output_tokens": 503}


def _event(name: str, data: dict[str, Any], *, named: bool, crlf: bool) -> bytes:
    lines = [f"event: {name}"] if named else []
    lines.append("data: " + json.dumps(data))
    eol = "\r\n" if crlf else "\n"
    return (eol.join(lines) + eol + eol).encode()


def stream(texts: list[str], *, named: bool = True, crlf: bool = False) -> bytes:
    """A Messages stream whose text deltas say ``texts`` (which may look like events)."""
    start = {
        "type": "message_start",
        "message": {"id": "msg_1", "model": "claude-x", "usage": USAGE_START},
    }
    events = [_event("message_start", start, named=named, crlf=crlf)]
    events.append(_event("ping", {"type": "ping"}, named=named, crlf=crlf))
    for text in texts:
        delta = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": text}}
        events.append(_event("content_block_delta", delta, named=named, crlf=crlf))
    end = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": USAGE_END}
    events.append(_event("message_delta", end, named=named, crlf=crlf))
    events.append(_event("message_stop", {"type": "message_stop"}, named=named, crlf=crlf))
    return b"".join(events)


def captured(body: bytes, cuts: list[int]) -> Captured:
    capture = SseCapture()
    edges = [0, *sorted({c % (len(body) + 1) for c in cuts}), len(body)]
    for a, b in itertools.pairwise(edges):
        if b > a:
            capture.feed(body[a:b])
    return capture.result()


def test_the_whole_stream_reads_usage_model_id_and_stop() -> None:
    for named in (True, False):
        for crlf in (False, True):
            got = captured(stream(["Hello", " world"], named=named, crlf=crlf), [])
            assert got.usage is not None
            assert got.usage["input_tokens"] == 2095 and got.usage["output_tokens"] == 503
            assert got.usage["cache_read_input_tokens"] == 1024
            assert (got.model, got.message_id, got.stop_reason) == ("claude-x", "msg_1", "end_turn")
            assert got.saw_message_stop and got.error_type is None


# Text that tries to look like the interesting events, and the marks the fast path
# looks for, split anywhere.
_TRICKY = st.sampled_from(
    ["", "message_", "error", "event: message_delta", "data: {", "\n\n", "mess", "age_stop", "é"]
)


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.one_of(st.text(max_size=30), _TRICKY), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
    named=st.booleans(),
    crlf=st.booleans(),
)
def test_any_chunking_reads_what_the_whole_stream_says(
    texts: list[str], cuts: list[int], named: bool, crlf: bool
) -> None:
    body = stream(texts, named=named, crlf=crlf)
    assert captured(body, cuts) == captured(body, [])


def test_an_error_event_mid_stream_is_read_when_split_across_chunks() -> None:
    body = stream(["a" * 50]) + _event(
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        named=True,
        crlf=False,
    )
    at = body.index(b"event: error") + 8  # "event: e" | "rror ..."
    got = captured(body, [at])
    assert (got.error_type, got.error_message) == ("overloaded_error", "Overloaded")

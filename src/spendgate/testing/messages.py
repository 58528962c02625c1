"""The fake's Messages API: ``/v1/messages``, ``count_tokens`` and legacy ``/v1/complete``.

Answers are deterministic: the input token count is derived from the prompt
(so a stream and a non-stream call of the same prompt agree), each text piece
counts as one output token, and the ``x-fake-*`` scenario can override both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from spendgate.testing.scenario import Scenario
from spendgate.testing.served import JSON, new_id
from spendgate.testing.sse import ClientGone, EventStream
from spendgate.testing.wire import (
    DEFAULT_MESSAGES,
    EXCHANGE,
    SCENARIO,
    STATE,
    invalid_request,
    json_object,
    json_response,
)

PIECES = ("Hello", " from", " the", " fake", " upstream", ".")
PROMPT_FIELDS = ("system", "messages", "tools", "tool_choice", "thinking")
# Fields a message_delta usage never carries; the client keeps them from message_start.
START_ONLY_USAGE = frozenset({"cache_creation", "service_tier", "inference_geo", "speed"})
# Fields that grow while the answer is generated; message_start shows none of them.
OUTPUT_USAGE = frozenset({"output_tokens", "server_tool_use", "output_tokens_details"})


def prompt_tokens(body: Mapping[str, Any]) -> int:
    """A deterministic input count: canonical prompt JSON length // 4 + 1."""
    prompt = {k: body[k] for k in PROMPT_FIELDS if k in body}
    return len(json.dumps(prompt, separators=(",", ":"), sort_keys=True)) // 4 + 1


def pieces(count: int) -> list[str]:
    """``count`` text pieces, cycling through a fixed sentence."""
    return [
        ("" if i < len(PIECES) or i % len(PIECES) else " ") + PIECES[i % len(PIECES)]
        for i in range(count)
    ]


def split_usage(final: Mapping[str, Any]) -> tuple[JSON, JSON]:
    """The ``message_start`` and cumulative ``message_delta`` usage for a final usage.

    Overwriting the first with the second gives back ``final`` exactly; the
    delta repeats the input and cache counts, as live streams do.
    """
    start = {k: v for k, v in final.items() if k not in OUTPUT_USAGE}
    start["output_tokens"] = 1
    delta = {k: v for k, v in final.items() if k not in START_ONLY_USAGE}
    return start, delta


def merge_usage(start: Mapping[str, Any], delta: Mapping[str, Any]) -> JSON:
    """Final stream usage as a client computes it: overwrite, never add."""
    merged = dict(start)
    merged.update(delta)
    return merged


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake will answer to one Messages request."""

    id: str
    model: str
    texts: list[str]
    stop_reason: str
    usage: JSON

    def message(self, *, content: bool = True) -> JSON:
        """The Message object (``content=False`` for ``message_start``)."""
        blocks = [{"type": "text", "text": "".join(self.texts)}] if content and self.texts else []
        message: JSON = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": blocks,
            "stop_reason": self.stop_reason if content else None,
            "stop_sequence": None,
        }
        if content and self.stop_reason == "refusal":
            message["stop_details"] = REFUSAL_DETAILS
        message["usage"] = self.usage
        return message


REFUSAL_DETAILS: JSON = {"type": "refusal", "category": None, "explanation": None}


def plan_reply(
    body: Mapping[str, Any], scenario: Scenario, *, service_tier: str = "standard"
) -> Reply:
    """Decide the answer to a validated Messages request body."""
    requested = body.get("model")
    model = scenario.model or (requested if isinstance(requested, str) else "claude-sonnet-4-6")
    count = 0 if scenario.refusal else scenario.events
    stop_reason = "refusal" if scenario.refusal else "end_turn"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and 0 <= max_tokens < count:
        count, stop_reason = max_tokens, "max_tokens"
    texts = pieces(count)
    geo = body.get("inference_geo")
    usage = scenario.usage
    if usage is None:
        usage = {
            "input_tokens": prompt_tokens(body),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": len(texts),
            "service_tier": service_tier,
            "inference_geo": geo if isinstance(geo, str) else "not_available",
        }
    return Reply(new_id("msg_01", 22), model, texts, stop_reason, dict(usage))


def validate_messages_body(body: JSON | None, *, needs_max_tokens: bool) -> str | None:
    """Why a Messages body would be refused with a 400, or None if it is fine."""
    if body is None:
        return "There was an error parsing the body of your request: not a JSON object"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(body.get("messages"), list):
        return "messages: Field required"
    if needs_max_tokens and not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    return None


async def create_message(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages``: a Message, or its SSE stream when ``"stream": true``."""
    exchange, scenario = request[EXCHANGE], request[SCENARIO]
    body = json_object(exchange.body)
    problem = validate_messages_body(body, needs_max_tokens=True)
    if problem is not None or body is None:
        return invalid_request(request, problem or "invalid body")
    reply = plan_reply(body, scenario)
    exchange.message_id, exchange.model = reply.id, reply.model
    if body.get("stream") is True:
        delay = scenario.delay if scenario.delay is not None else request.app[STATE].chunk_delay
        stream = EventStream(request, exchange, delay)
        try:
            return await stream_message(stream, reply, scenario)
        except ClientGone:
            return stream.response
    if scenario.reset:
        return EventStream(request, exchange, 0.0).abort()
    exchange.usage = reply.usage
    return json_response(reply.message())


async def stream_message(
    stream: EventStream, reply: Reply, scenario: Scenario
) -> web.StreamResponse:
    """The full SSE sequence, or a cut one when the scenario asks for it."""
    exchange = stream.exchange
    start_usage, delta_usage = split_usage(reply.usage)
    exchange.usage = dict(start_usage)
    await stream.open()
    start = reply.message(content=False)
    start["usage"] = start_usage
    await stream.send("message_start", {"type": "message_start", "message": start})
    cut = max(1, len(reply.texts) // 2) if scenario.midstream_error or scenario.reset else None
    if reply.texts:
        block = {"type": "text", "text": ""}
        await stream.send(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
    await stream.send("ping", {"type": "ping"})
    for text in reply.texts[:cut]:
        delta = {"type": "text_delta", "text": text}
        await stream.send(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )
    if scenario.midstream_error:
        error = {"type": scenario.midstream_error, "message": _midstream_message(scenario)}
        await stream.send("error", {"type": "error", "error": error}, last=True)
        return stream.response
    if scenario.reset:
        return stream.abort()
    if reply.texts:
        await stream.send("content_block_stop", {"type": "content_block_stop", "index": 0})
    stop: JSON = {"stop_reason": reply.stop_reason, "stop_sequence": None}
    if reply.stop_reason == "refusal":
        stop["stop_details"] = REFUSAL_DETAILS
    await stream.send(
        "message_delta", {"type": "message_delta", "delta": stop, "usage": delta_usage}
    )
    exchange.usage = merge_usage(start_usage, delta_usage)
    exchange.completed = True
    await stream.send("message_stop", {"type": "message_stop"}, last=True)
    return stream.response


def _midstream_message(scenario: Scenario) -> str:
    return DEFAULT_MESSAGES.get(scenario.midstream_error or "", "Internal server error")


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``, as a message would bill."""
    body = json_object(request[EXCHANGE].body)
    problem = validate_messages_body(body, needs_max_tokens=False)
    if problem is not None or body is None:
        return invalid_request(request, problem or "invalid body")
    return json_response({"input_tokens": prompt_tokens(body)})


async def complete(request: web.Request) -> web.StreamResponse:
    """``POST /v1/complete`` (legacy Text Completions): JSON, or SSE ``completion`` events."""
    exchange, scenario = request[EXCHANGE], request[SCENARIO]
    body = json_object(exchange.body)
    if body is None or not isinstance(body.get("prompt"), str):
        return invalid_request(request, "prompt: Field required")
    requested = body.get("model")
    model = scenario.model or (requested if isinstance(requested, str) else "claude-2.1")
    completion_id = new_id("compl_01", 22)
    exchange.message_id, exchange.model = completion_id, model
    texts = [" " + t.strip() for t in pieces(scenario.events)]
    if body.get("stream") is not True:
        return json_response(_completion(completion_id, model, "".join(texts), "stop_sequence"))
    delay = scenario.delay if scenario.delay is not None else request.app[STATE].chunk_delay
    stream = EventStream(request, exchange, delay)
    try:
        await stream.open()
        for text in texts:
            await stream.send("completion", _completion(completion_id, model, text, None))
        await stream.send("ping", {"type": "ping"})
        exchange.completed = True
        final = _completion(completion_id, model, "", "stop_sequence")
        await stream.send("completion", final, last=True)
    except ClientGone:
        pass
    return stream.response


def _completion(completion_id: str, model: str, text: str, stop_reason: str | None) -> JSON:
    return {
        "type": "completion",
        "id": completion_id,
        "completion": text,
        "stop_reason": stop_reason,
        "stop": "\n\nHuman:" if stop_reason else None,
        "model": model,
    }

"""The fake Anthropic upstream, driven directly by the official ``anthropic`` SDK.

If the SDK parses everything the fake serves and raises the right exception
classes, the gateway's tests can trust the fake to stand in for the real API.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from spendgate.testing import FakeUpstream, Served

MODEL = "claude-sonnet-4-6"
PROMPT: list[Any] = [{"role": "user", "content": "Say hello."}]
RICH_USAGE = {
    "input_tokens": 2679,
    "cache_creation_input_tokens": 100,
    "cache_read_input_tokens": 5000,
    "cache_creation": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40},
    "output_tokens": 510,
    "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
    "service_tier": "standard",
    "inference_geo": "global",
}


@pytest.fixture(scope="module")
def running_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def upstream(running_upstream: FakeUpstream) -> FakeUpstream:
    running_upstream.clear()
    running_upstream.chunk_delay = 0.0
    return running_upstream


@pytest.fixture
def sdk_client(upstream: FakeUpstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=upstream.url, api_key="sk-ant-test", max_retries=0) as c:
        yield c


@pytest.fixture
async def async_sdk_client(upstream: FakeUpstream) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=upstream.url, api_key="sk-ant-test", max_retries=0
    ) as client:
        yield client


def last(upstream: FakeUpstream) -> Served:
    served = upstream.served
    assert served, "the fake recorded nothing"
    return served[-1]


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs of an SSE body, checking the framing on the way."""
    events = []
    for frame in raw.decode().split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        events.append((event_line[7:], json.loads(data_line[6:])))
    return events


# -- Messages ----------------------------------------------------------------------------


def test_create_message_sync(sdk_client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    raw = sdk_client.messages.with_raw_response.create(model=MODEL, max_tokens=256, messages=PROMPT)
    message = raw.parse()
    served = last(upstream)

    assert message.id == served.message_id and message.id.startswith("msg_")
    assert message.model == MODEL == served.model
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the fake upstream"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 5
    assert message.usage.service_tier == "standard"
    assert message.usage.cache_creation is not None
    assert message.usage.model_dump(exclude_none=True) == served.usage
    assert raw.headers["request-id"] == served.request_id
    assert raw.headers["anthropic-organization-id"]
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "3999"
    assert raw.headers["anthropic-ratelimit-output-tokens-reset"].endswith("Z")
    assert served.response_body == raw.http_response.content
    assert int(raw.headers["content-length"]) == len(served.response_body)
    assert (served.method, served.path, served.status) == ("POST", "/v1/messages", 200)
    assert served.stream is False and served.completed is True
    assert json.loads(served.body)["messages"] == PROMPT
    assert served.headers["authorization"] == "Bearer sk-ant-test"


async def test_create_message_async(
    async_sdk_client: anthropic.AsyncAnthropic, upstream: FakeUpstream
) -> None:
    message = await async_sdk_client.messages.create(
        model=MODEL, max_tokens=256, messages=PROMPT, extra_headers={"x-fake-events": "3"}
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the"
    assert message.usage.output_tokens == 3
    assert last(upstream).headers["x-stainless-async"] != "false"


def test_beta_messages_query_and_input_count_deterministic(
    sdk_client: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    plain = sdk_client.messages.create(model=MODEL, max_tokens=64, messages=PROMPT)
    beta = sdk_client.beta.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=PROMPT,
        betas=["context-1m-2025-08-07"],
        extra_query={"beta": "true"},  # what Claude Code sends
    )
    counted = sdk_client.messages.count_tokens(model=MODEL, messages=PROMPT)
    served = upstream.served

    assert plain.usage.input_tokens == beta.usage.input_tokens == counted.input_tokens > 0
    assert served[1].query == "beta=true"
    assert served[1].headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert served[2].path == "/v1/messages/count_tokens"
    assert served[2].usage is None


def test_exact_usage_and_served_model_override(sdk_client: anthropic.Anthropic) -> None:
    headers = {"x-fake-usage": json.dumps(RICH_USAGE), "x-fake-model": "claude-opus-4-8"}
    message = sdk_client.messages.create(
        model=MODEL, max_tokens=64, messages=PROMPT, extra_headers=headers
    )
    assert message.model == "claude-opus-4-8"
    assert message.usage.model_dump(exclude_none=True) == RICH_USAGE


def test_refusal_has_no_output(sdk_client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    message = sdk_client.messages.create(
        model=MODEL, max_tokens=64, messages=PROMPT, extra_headers={"x-fake-refusal": "1"}
    )
    assert message.stop_reason == "refusal"
    assert message.stop_details is not None and message.stop_details.type == "refusal"
    assert message.content == []
    assert message.usage.output_tokens == 0

    with sdk_client.messages.stream(
        model=MODEL, max_tokens=64, messages=PROMPT, extra_headers={"x-fake-refusal": "1"}
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "refusal"
    assert final.usage.output_tokens == 0 == last(upstream).usage["output_tokens"]  # type: ignore[index]


def test_max_tokens_truncates(sdk_client: anthropic.Anthropic) -> None:
    message = sdk_client.messages.create(model=MODEL, max_tokens=2, messages=PROMPT)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2


# -- Streaming -----------------------------------------------------------------------------


def test_stream_sync_final_usage_matches_served(
    sdk_client: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    with sdk_client.messages.stream(
        model=MODEL, max_tokens=256, messages=PROMPT, extra_headers={"x-fake-events": "7"}
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        assert stream.response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.response.headers["cache-control"] == "no-cache"
        assert stream.response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in stream.response.headers
    served = last(upstream)

    assert text == "Hello from the fake upstream. Hello"
    assert served.stream is True and served.completed is True
    assert final.usage.model_dump(exclude_none=True) == served.usage
    assert final.usage.output_tokens == 7
    names = [name for name, _ in sse_events(served.response_body)]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 7,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_stream_async_cumulative_usage_is_overwritten(
    async_sdk_client: anthropic.AsyncAnthropic, upstream: FakeUpstream
) -> None:
    headers = {"x-fake-usage": json.dumps(RICH_USAGE)}
    async with async_sdk_client.messages.stream(
        model=MODEL, max_tokens=256, messages=PROMPT, extra_headers=headers
    ) as stream:
        final = await stream.get_final_message()
    served = last(upstream)
    events = dict(sse_events(served.response_body))

    start_usage = events["message_start"]["message"]["usage"]
    delta_usage = events["message_delta"]["usage"]
    assert start_usage["output_tokens"] == 1
    assert start_usage["cache_read_input_tokens"] == 5000
    # Cumulative: the delta repeats the input and cache counts, like live streams.
    assert delta_usage["input_tokens"] == 2679
    assert delta_usage["cache_read_input_tokens"] == 5000
    assert delta_usage["server_tool_use"] == {"web_search_requests": 1, "web_fetch_requests": 0}
    assert "cache_creation" not in delta_usage
    assert served.usage == RICH_USAGE
    assert final.usage.model_dump(exclude_none=True) == RICH_USAGE


def test_stream_delay_between_chunks(
    sdk_client: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    upstream.chunk_delay = 0.02
    started = time.monotonic()
    with sdk_client.messages.stream(model=MODEL, max_tokens=64, messages=PROMPT) as stream:
        stream.until_done()
    # 11 events, 10 gaps of 20 ms.
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    with sdk_client.messages.stream(
        model=MODEL, max_tokens=64, messages=PROMPT, extra_headers={"x-fake-delay": "0"}
    ) as stream:
        stream.until_done()
    assert time.monotonic() - started < 0.2


def test_midstream_error_raises(sdk_client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    headers = {"x-fake-midstream-error": "overloaded_error"}
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        sdk_client.messages.stream(
            model=MODEL, max_tokens=64, messages=PROMPT, extra_headers=headers
        ) as stream,
    ):
        stream.until_done()
    served = last(upstream)

    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert served.status == 200 and served.stream is True and served.completed is False
    events = sse_events(served.response_body)
    assert events[-1][0] == "error"
    assert "message_delta" not in dict(events)
    assert served.usage is not None and served.usage["output_tokens"] == 1


def test_reset_raises(sdk_client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    with (
        pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)),
        sdk_client.messages.stream(
            model=MODEL, max_tokens=64, messages=PROMPT, extra_headers={"x-fake-reset": "1"}
        ) as stream,
    ):
        stream.until_done()
    served = last(upstream)
    assert served.completed is False and served.stream is True
    assert [name for name, _ in sse_events(served.response_body)][-1] == "content_block_delta"

    with pytest.raises(anthropic.APIConnectionError):
        sdk_client.messages.create(
            model=MODEL, max_tokens=64, messages=PROMPT, extra_headers={"x-fake-reset": "1"}
        )
    assert last(upstream).status == 0 and last(upstream).completed is False


async def test_reset_raises_async(async_sdk_client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        async with async_sdk_client.messages.stream(
            model=MODEL, max_tokens=64, messages=PROMPT, extra_headers={"x-fake-reset": "1"}
        ) as stream:
            await stream.until_done()


# -- Errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "status", "error_type", "exception"),
    [
        ("400:invalid_request_error", 400, "invalid_request_error", anthropic.BadRequestError),
        ("429:rate_limit_error", 429, "rate_limit_error", anthropic.RateLimitError),
        ("500:api_error", 500, "api_error", anthropic.InternalServerError),
        ("529:overloaded_error", 529, "overloaded_error", anthropic.OverloadedError),
        ("overloaded_error", 529, "overloaded_error", anthropic.OverloadedError),
        ("403", 403, "permission_error", anthropic.PermissionDeniedError),
    ],
)
def test_scenario_errors(
    sdk_client: anthropic.Anthropic,
    upstream: FakeUpstream,
    scenario: str,
    status: int,
    error_type: str,
    exception: type[anthropic.APIStatusError],
) -> None:
    with pytest.raises(exception) as caught:
        sdk_client.messages.create(
            model=MODEL, max_tokens=64, messages=PROMPT, extra_headers={"x-fake-error": scenario}
        )
    error = caught.value
    served = last(upstream)

    assert error.status_code == status == served.status
    assert isinstance(error.body, dict) and error.body["error"]["type"] == error_type
    assert error.body["request_id"] == error.response.headers["request-id"] == served.request_id
    assert served.usage is None and served.message_id is None
    assert served.response_body == error.response.content
    if status == 429:
        assert error.response.headers["retry-after"] == "7"
    else:
        assert "retry-after" not in error.response.headers


async def test_scenario_error_async(async_sdk_client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.OverloadedError):
        await async_sdk_client.messages.create(
            model=MODEL, max_tokens=64, messages=PROMPT, extra_headers={"x-fake-error": "529"}
        )


def test_missing_credentials_is_authentication_error(sdk_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk_client.messages.create(
            model=MODEL,
            max_tokens=64,
            messages=PROMPT,
            extra_headers={"Authorization": anthropic.Omit()},
        )
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
        "request_id": caught.value.response.headers["request-id"],
    }


def test_x_api_key_is_accepted_and_auth_can_be_off(upstream: FakeUpstream) -> None:
    body = {"model": MODEL, "max_tokens": 8, "messages": PROMPT}
    ok = httpx.post(f"{upstream.url}/v1/messages", json=body, headers={"x-api-key": "sk"})
    assert ok.status_code == 200
    with FakeUpstream(require_auth=False) as open_upstream:
        assert httpx.post(f"{open_upstream.url}/v1/messages", json=body).status_code == 200


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "There was an error parsing the body"),
        (b"[]", "There was an error parsing the body"),
        (b'{"model":"m","messages":[]}', "max_tokens: Field required"),
    ],
)
def test_malformed_body_is_invalid_request(
    upstream: FakeUpstream, content: bytes, message: str
) -> None:
    response = httpx.post(
        f"{upstream.url}/v1/messages", content=content, headers={"x-api-key": "sk"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["message"].startswith(message)


def test_bad_scenario_header_is_invalid_request(sdk_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="x-fake-usage"):
        sdk_client.messages.create(
            model=MODEL, max_tokens=64, messages=PROMPT, extra_headers={"x-fake-usage": "{"}
        )


def test_slow_answer_times_out(sdk_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APITimeoutError):
        sdk_client.with_options(timeout=0.2).messages.create(
            model=MODEL, max_tokens=64, messages=PROMPT, extra_headers={"x-fake-sleep": "1"}
        )


def test_unknown_path_and_probe(sdk_client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        sdk_client.get("/v1/nowhere", cast_to=object)
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    probe = httpx.head(upstream.url + "/")
    assert probe.status_code == 200 and probe.headers["request-id"].startswith("req_")


# -- Models, batches, files, legacy completions -------------------------------------------------


def test_models_list_pages_and_retrieve(sdk_client: anthropic.Anthropic) -> None:
    first = sdk_client.models.list(limit=2)
    assert len(first.data) == 2 and first.has_more is True
    assert first.first_id == first.data[0].id and first.last_id == first.data[1].id
    every = [model.id for model in sdk_client.models.list(limit=2)]
    assert len(every) == len(set(every)) == 7
    assert every[0] == "claude-opus-4-8"

    back = sdk_client.models.list(limit=2, before_id=every[4])
    assert [m.id for m in back.data] == every[2:4] and back.has_more is True

    model = sdk_client.models.retrieve("claude-haiku-4-5-20251001")
    assert model.display_name == "Claude Haiku 4.5" and model.lifecycle == "active"
    with pytest.raises(anthropic.NotFoundError):
        sdk_client.models.retrieve("claude-nonexistent")


async def test_models_list_async(async_sdk_client: anthropic.AsyncAnthropic) -> None:
    ids = [model.id async for model in async_sdk_client.models.list(limit=3)]
    assert len(ids) == 7


def test_batches_end_at_once_with_batch_tier_usage(
    sdk_client: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    batch = sdk_client.messages.batches.create(
        requests=[
            {"custom_id": f"r{i}", "params": {"model": MODEL, "max_tokens": 64, "messages": PROMPT}}
            for i in range(3)
        ]
    )
    assert batch.processing_status == "ended"
    assert batch.request_counts.succeeded == 3
    assert batch.results_url == f"{upstream.url}/v1/messages/batches/{batch.id}/results"

    results = list(sdk_client.messages.batches.results(batch.id))
    assert sorted(r.custom_id for r in results) == ["r0", "r1", "r2"]
    for result in results:
        assert result.result.type == "succeeded"
        assert result.result.message.usage.service_tier == "batch"
        assert result.result.message.usage.output_tokens == 5
    served = last(upstream)
    assert served.path.endswith("/results")
    assert served.response_body.count(b"\n") == 3

    assert sdk_client.messages.batches.retrieve(batch.id).id == batch.id
    assert batch.id in [b.id for b in sdk_client.messages.batches.list()]
    canceled = sdk_client.messages.batches.cancel(batch.id)
    assert canceled.cancel_initiated_at is not None
    with pytest.raises(anthropic.NotFoundError):
        sdk_client.messages.batches.retrieve("msgbatch_missing")


def test_files_keep_exact_bytes(sdk_client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    content = bytes(range(256)) + b"\r\n--boundary-lookalike\r\n\r\n"
    uploaded = sdk_client.files.upload(file=("data.bin", content, "application/octet-stream"))
    assert uploaded.size_bytes == len(content) and uploaded.filename == "data.bin"
    assert sdk_client.files.download(uploaded.id).read() == content
    assert last(upstream).response_body == content
    assert uploaded.id in [f.id for f in sdk_client.files.list()]
    assert sdk_client.files.retrieve_metadata(uploaded.id).mime_type == "application/octet-stream"
    sdk_client.files.delete(uploaded.id)
    with pytest.raises(anthropic.NotFoundError):
        sdk_client.files.retrieve_metadata(uploaded.id)


def test_legacy_complete(upstream: FakeUpstream) -> None:
    body = {
        "model": "claude-2.1",
        "prompt": "\n\nHuman: hi\n\nAssistant:",
        "max_tokens_to_sample": 8,
    }
    headers = {"x-api-key": "sk"}
    plain = httpx.post(f"{upstream.url}/v1/complete", json=body, headers=headers)
    assert plain.json()["type"] == "completion"
    assert plain.json()["stop_reason"] == "stop_sequence"
    assert plain.headers["anthropic-ratelimit-requests-limit"]

    streamed = httpx.post(
        f"{upstream.url}/v1/complete", json={**body, "stream": True}, headers=headers
    )
    events = sse_events(streamed.content)
    assert {name for name, _ in events} == {"completion", "ping"}
    assert events[-1][1]["stop_reason"] == "stop_sequence"
    assert last(upstream).stream is True and last(upstream).completed is True


# -- Lifecycle -----------------------------------------------------------------------------------


async def test_start_async_on_callers_loop() -> None:
    async with FakeUpstream(chunk_delay=0.001) as upstream:
        async with anthropic.AsyncAnthropic(
            base_url=upstream.url, api_key="sk", max_retries=0
        ) as client:
            message = await client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
        assert upstream.served[0].message_id == message.id
    with pytest.raises(RuntimeError, match="not running"):
        _ = upstream.url


def test_served_headers_join_repeated_values(upstream: FakeUpstream) -> None:
    httpx.get(
        f"{upstream.url}/v1/models",
        headers=[("x-api-key", "sk"), ("Anthropic-Beta", "a"), ("anthropic-beta", "b")],
    )
    assert last(upstream).headers["anthropic-beta"] == "a, b"
    assert last(upstream).query == ""


def test_client_leaving_mid_stream_is_recorded_incomplete(upstream: FakeUpstream) -> None:
    body = {"model": MODEL, "max_tokens": 64, "stream": True, "messages": PROMPT}
    headers = {"x-api-key": "sk", "x-fake-delay": "0.05", "x-fake-events": "40"}
    with httpx.stream("POST", f"{upstream.url}/v1/messages", json=body, headers=headers) as resp:
        next(resp.iter_raw())
    deadline = time.monotonic() + 10
    while not upstream.served and time.monotonic() < deadline:
        time.sleep(0.05)
    served = last(upstream)
    assert served.stream is True and served.completed is False
    assert b"message_stop" not in served.response_body

"""The proxy seen from the official SDK: invisible, and every call recorded exactly."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from spendgate.pricing import PriceBook, apply_cost
from spendgate.proxy import forward
from spendgate.proxy.auth import Authenticator, fingerprint
from spendgate.proxy.errors import Refused, send_error
from spendgate.proxy.forward import ClientGone, Proxy
from spendgate.proxy.upstream import UpstreamClient
from spendgate.records import CallRecord
from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.testing.upstream import FakeUpstream
from spendgate.usage import Usage

CLIENT_KEY = "sk-ant-api03-client-secret-key"
USAGE = {
    "input_tokens": 1200,
    "cache_creation_input_tokens": 3000,
    "cache_read_input_tokens": 50000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
    "output_tokens": 321,
    "service_tier": "standard",
    "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1},
    "future_field": {"kept": True},
}


def sdk(gateway: GatewayServer, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0, **kw)


def records(gateway: GatewayServer, **params: Any) -> list[dict[str, Any]]:
    gateway.flush()
    resp = httpx.get(f"{gateway.url}/api/requests", params={"limit": 100, **params})
    assert resp.status_code == 200, resp.text
    data: list[dict[str, Any]] = resp.json()["data"]
    return data


def records_once_written(gateway: GatewayServer, seconds: float = 10) -> list[dict[str, Any]]:
    """The records, once there are any (a call still being answered upstream is recorded
    when it ends)."""
    deadline = time.monotonic() + seconds
    recs = records(gateway)
    while not recs and time.monotonic() < deadline:
        time.sleep(0.1)
        recs = records(gateway)
    return recs


def assert_usage_recorded(rec: dict[str, Any], usage: dict[str, Any]) -> None:
    creation = usage.get("cache_creation") or {}
    assert rec["input_tokens"] == usage["input_tokens"]
    assert rec["output_tokens"] == usage["output_tokens"]
    assert rec["cache_read_input_tokens"] == usage.get("cache_read_input_tokens", 0)
    assert rec["cache_creation_5m_input_tokens"] == creation.get(
        "ephemeral_5m_input_tokens", usage.get("cache_creation_input_tokens", 0)
    )
    assert rec["cache_creation_1h_input_tokens"] == creation.get("ephemeral_1h_input_tokens", 0)
    tools = usage.get("server_tool_use") or {}
    assert rec["web_search_requests"] == tools.get("web_search_requests", 0)
    assert rec["usage"] == usage


def test_messages_create_is_byte_identical_and_recorded(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    client = sdk(gateway)
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hello"}],
        extra_headers={"x-fake-usage": json.dumps(USAGE)},
    )
    message = raw.parse()
    served = upstream.served[-1]
    assert raw.http_response.content == served.response_body
    assert raw.http_response.headers["request-id"] == served.request_id
    assert raw.http_response.headers["anthropic-ratelimit-requests-remaining"]
    # SDK 2.x sends api_key as a bearer token; older ones as x-api-key.
    # Either is forwarded as is.
    sent = served.headers.get("x-api-key") or served.headers["authorization"].removeprefix(
        "Bearer "
    )
    assert sent == CLIENT_KEY
    assert message.usage.output_tokens == 321

    (rec,) = records(gateway)
    assert rec["request_id"] == served.request_id
    assert rec["message_id"] == message.id
    assert rec["model"] == "claude-sonnet-4-5"
    assert rec["endpoint"] == "/v1/messages"
    assert rec["stream"] is False
    assert rec["status_code"] == 200
    assert rec["complete"] is True
    assert rec["source"] == "proxy"
    assert rec["credential_fingerprint"] == fingerprint(CLIENT_KEY)
    assert_usage_recorded(rec, USAGE)
    assert rec["cost_usd"] is not None
    assert rec["latency_ms"] > 0


async def test_async_stream_usage_is_final_not_added(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)
    async with client.messages.stream(
        model="claude-opus-4-6",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hi"}],
        extra_headers={"x-fake-usage": json.dumps(USAGE), "x-fake-events": "12"},
    ) as stream:
        final = await stream.get_final_message()
    served = upstream.served[-1]
    assert final.usage.output_tokens == USAGE["output_tokens"]
    (rec,) = records(gateway)
    assert rec["stream"] is True
    assert rec["complete"] is True
    assert rec["ttft_ms"] is not None
    assert served.usage is not None
    assert_usage_recorded(rec, served.usage)
    # message_delta repeats the input counts; they must not be added twice.
    assert rec["input_tokens"] == USAGE["input_tokens"]


def test_stream_bytes_identical(sqlite_gateway: GatewayServer, upstream: FakeUpstream) -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    with httpx.stream(
        "POST",
        f"{sqlite_gateway.url}/v1/messages?beta=true",
        json=body,
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
    ) as resp:
        got = b"".join(resp.iter_raw())
        assert resp.headers["content-type"].startswith("text/event-stream")
    served = upstream.served[-1]
    assert served.query == "beta=true"
    assert got == served.response_body


def test_streaming_is_not_buffered(sqlite_gateway: GatewayServer, upstream: FakeUpstream) -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    start = time.monotonic()
    arrivals = []
    with httpx.stream(
        "POST",
        f"{sqlite_gateway.url}/v1/messages",
        json=body,
        headers={"x-api-key": CLIENT_KEY, "x-fake-delay": "0.2", "x-fake-events": "8"},
        timeout=30,
    ) as resp:
        for _chunk in resp.iter_raw():
            arrivals.append(time.monotonic() - start)
    total = arrivals[-1]
    assert total >= 2.0  # 12+ chunks 200 ms apart
    assert arrivals[0] < 0.5, f"first chunk after {arrivals[0]:.2f}s of {total:.2f}s"


def test_count_tokens_and_models_are_traffic_at_zero_cost(gateway: GatewayServer) -> None:
    client = sdk(gateway)
    counted = client.messages.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hello"}]
    )
    assert counted.input_tokens > 0
    models = client.models.list()
    assert models.data
    recs = {r["endpoint"]: r for r in records(gateway)}
    assert recs["/v1/messages/count_tokens"]["pricing_status"] == "not_billable"
    assert recs["/v1/messages/count_tokens"]["cost_usd"] == "0.000000000"
    assert recs["/v1/models"]["method"] == "GET"
    assert recs["/v1/models"]["pricing_status"] == "not_billable"


@pytest.mark.parametrize(
    ("error", "exc_class"),
    [
        ("429:rate_limit_error", anthropic.RateLimitError),
        ("529:overloaded_error", anthropic.InternalServerError),
        ("500:api_error", anthropic.InternalServerError),
        ("400:invalid_request_error", anthropic.BadRequestError),
        ("401:authentication_error", anthropic.AuthenticationError),
    ],
)
def test_upstream_errors_pass_through(
    sqlite_gateway: GatewayServer,
    upstream: FakeUpstream,
    error: str,
    exc_class: type[Exception],
) -> None:
    client = sdk(sqlite_gateway)
    with pytest.raises(exc_class) as info:
        client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-fake-error": error},
        )
    err = info.value
    assert isinstance(err, anthropic.APIStatusError)
    served = upstream.served[-1]
    assert err.response.content == served.response_body
    assert err.response.status_code == served.status
    if served.status == 429:
        assert err.response.headers["retry-after"] == "7"
    (rec,) = records(sqlite_gateway)
    assert rec["status_code"] == served.status
    assert rec["error_type"] == error.split(":")[1]
    assert rec["pricing_status"] == "not_billable"


def test_overloaded_is_sdk_overloaded_error(sqlite_gateway: GatewayServer) -> None:
    overloaded = getattr(anthropic, "OverloadedError", anthropic.InternalServerError)
    with pytest.raises(overloaded):
        sdk(sqlite_gateway).messages.create(
            model="claude-sonnet-4-5",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-fake-error": "529:overloaded_error"},
        )


def test_midstream_error_recorded_incomplete(sqlite_gateway: GatewayServer) -> None:
    client = sdk(sqlite_gateway)
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-fake-midstream-error": "overloaded_error"},
        ) as stream,
    ):
        for _ in stream:
            pass
    (rec,) = records(sqlite_gateway)
    assert rec["complete"] is False
    assert rec["error_type"] == "overloaded_error"
    assert rec["input_tokens"] > 0  # what message_start said is kept


def test_upstream_reset_recorded_and_client_sees_broken_stream(
    sqlite_gateway: GatewayServer,
) -> None:
    client = sdk(sqlite_gateway)
    # The SDK surfaces a cut stream as its transport's protocol error.
    with (
        pytest.raises((anthropic.APIError, httpx.HTTPError, httpx2.HTTPError)),
        client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-fake-reset": "1"},
        ) as stream,
    ):
        for _ in stream:
            pass
    (rec,) = records(sqlite_gateway)
    assert rec["complete"] is False
    assert rec["error_type"] == "upstream_reset"


@pytest.mark.parametrize("server", ["spendgate", "uvicorn"])
def test_client_disconnect_midstream_still_recorded(
    server: str, tmp_path: Path, upstream: FakeUpstream
) -> None:
    # spendgate's protocol raises at the next send once the client has gone (ASGI 2.4);
    # under uvicorn's, which drops such sends, the relay watches receive() instead.
    settings = gateway_settings(
        tmp_path, upstream.url, f"sqlite:///{tmp_path / 'spendgate.db'}", http_server=server
    )
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    with GatewayServer(settings) as gateway:
        with httpx.stream(
            "POST",
            f"{gateway.url}/v1/messages",
            json=body,
            headers={"x-api-key": CLIENT_KEY, "x-fake-delay": "0.1", "x-fake-events": "30"},
        ) as resp:
            next(resp.iter_raw())
        (rec,) = records_once_written(gateway)
    assert rec["complete"] is False
    assert rec["error_type"] == "client_disconnected"
    assert rec["input_tokens"] > 0


def test_refusal_is_recorded_free(sqlite_gateway: GatewayServer) -> None:
    message = sdk(sqlite_gateway).messages.create(
        model="claude-sonnet-4-5",
        max_tokens=10,
        messages=[{"role": "user", "content": "x"}],
        extra_headers={"x-fake-refusal": "1"},
    )
    assert message.stop_reason == "refusal"
    (rec,) = records(sqlite_gateway)
    assert rec["stop_reason"] == "refusal"
    assert rec["cost_usd"] == "0.000000000"


def test_served_model_differs_from_requested(sqlite_gateway: GatewayServer) -> None:
    sdk(sqlite_gateway).messages.create(
        model="claude-opus-5",
        max_tokens=10,
        messages=[{"role": "user", "content": "x"}],
        extra_headers={"x-fake-model": "claude-sonnet-5"},
    )
    (rec,) = records(sqlite_gateway)
    assert rec["model"] == "claude-sonnet-5"
    assert rec["model_requested"] == "claude-opus-5"


def test_unknown_model_passes_and_is_unpriced(sqlite_gateway: GatewayServer) -> None:
    sdk(sqlite_gateway).messages.create(
        model="claude-future-9", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    (rec,) = records(sqlite_gateway)
    assert rec["model"] == "claude-future-9"
    assert rec["pricing_status"] == "unpriced"
    assert rec["cost_usd"] is None


def test_malformed_body_is_forwarded_untouched(
    sqlite_gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    resp = httpx.post(
        f"{sqlite_gateway.url}/v1/messages",
        content=b"{not json",
        headers={"x-api-key": CLIENT_KEY, "content-type": "application/json"},
    )
    served = upstream.served[-1]
    assert served.body == b"{not json"
    assert resp.status_code == 400
    assert resp.content == served.response_body
    (rec,) = records(sqlite_gateway)
    assert rec["model"] is None


def test_answer_headers_are_the_upstreams_once_and_own_answers_are_dated(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": []}
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    direct = httpx.post(f"{upstream.url}/v1/messages", json=body, headers=headers)
    relayed = httpx.post(f"{gateway.url}/v1/messages", json=body, headers=headers)
    assert relayed.status_code == direct.status_code == 200
    # No date or server header of the gateway's own next to the upstream's.
    for name in ("date", "server"):
        assert len(relayed.headers.get_list(name)) == len(direct.headers.get_list(name)) <= 1
    assert relayed.headers.get("server") == direct.headers.get("server")
    assert "uvicorn" not in str(relayed.headers).lower()
    # The gateway's own answers (an error it makes, the API, the probe) carry one date.
    refused = httpx.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": "sg-nope"})
    health = httpx.get(f"{gateway.url}/health")
    probe = httpx.head(f"{gateway.url}/")
    for own in (refused, health, probe):
        assert len(own.headers.get_list("date")) == 1, own.headers
        assert "server" not in own.headers


def test_attribution_headers_stripped_claude_code_headers_kept(
    sqlite_gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    sdk(sqlite_gateway).messages.create(
        model="claude-sonnet-4-5",
        max_tokens=10,
        messages=[{"role": "user", "content": "x"}],
        extra_headers={
            "x-spendgate-user": "ada@example.com",
            "x-spendgate-project": "apollo",
            "x-spendgate-tags": "eval, nightly",
            "x-claude-code-session-id": "sess-123",
            "x-claude-code-agent-id": "agent-7",
            "anthropic-beta": "some-future-beta-2027-01-01",
        },
    )
    headers = upstream.served[-1].headers
    assert not any(name.startswith("x-spendgate-") for name in headers)
    assert headers["x-claude-code-session-id"] == "sess-123"
    assert headers["anthropic-beta"] == "some-future-beta-2027-01-01"
    (rec,) = records(sqlite_gateway)
    assert rec["user"] == "ada@example.com"
    assert rec["project"] == "apollo"
    assert rec["tags"] == ["eval", "nightly"]
    assert rec["session_id"] == "sess-123"
    assert rec["agent_id"] == "agent-7"


def test_bearer_credential_forwarded_as_is(
    sqlite_gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    client = anthropic.Anthropic(
        base_url=sqlite_gateway.url, auth_token="sk-ant-oat01-oauth-token", max_retries=0
    )
    client.messages.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    assert upstream.served[-1].headers["authorization"] == "Bearer sk-ant-oat01-oauth-token"
    (rec,) = records(sqlite_gateway)
    assert rec["credential_fingerprint"] == fingerprint("sk-ant-oat01-oauth-token")


def test_unknown_endpoint_and_head_root(
    sqlite_gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    resp = httpx.get(f"{sqlite_gateway.url}/v1/not-invented-yet?x=1", headers={"x-api-key": "k"})
    assert resp.status_code == 404
    assert resp.content == upstream.served[-1].response_body
    assert httpx.head(sqlite_gateway.url + "/").status_code == 200


def test_file_upload_streams_through(sqlite_gateway: GatewayServer, upstream: FakeUpstream) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    resp = httpx.post(
        f"{sqlite_gateway.url}/v1/files",
        files={"file": ("data.bin", payload, "application/octet-stream")},
        headers={"x-api-key": CLIENT_KEY, "anthropic-beta": "files-api-2025-04-14"},
    )
    assert resp.status_code == 200, resp.text
    file_id = resp.json()["id"]
    content = httpx.get(
        f"{sqlite_gateway.url}/v1/files/{file_id}/content", headers={"x-api-key": CLIENT_KEY}
    )
    assert content.content == payload


def test_no_credential_and_no_server_key_is_authentication_error(
    sqlite_gateway: GatewayServer,
) -> None:
    resp = httpx.post(f"{sqlite_gateway.url}/v1/messages", json={"model": "m"})
    assert resp.status_code == 401
    body = resp.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert "ANTHROPIC_API_KEY" in body["error"]["message"]


def test_upstream_unreachable_is_502_in_anthropic_shape(tmp_path: Any) -> None:
    from spendgate.testing.gateway import free_port, gateway_settings

    dead = f"http://127.0.0.1:{free_port()}"
    settings = gateway_settings(tmp_path, dead, f"sqlite:///{tmp_path / 'g.db'}")
    with GatewayServer(settings) as gw:
        with pytest.raises(anthropic.InternalServerError) as info:
            sdk(gw).messages.create(
                model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert info.value.status_code == 502
        body = info.value.response.json()
        assert body["error"]["type"] == "api_error"
        assert "SPENDGATE_UPSTREAM_URL" in body["error"]["message"]
        (rec,) = records(gw)
        assert rec["error_type"] == "upstream_unreachable"


def test_a_fault_of_the_gateways_own_is_a_shaped_500_recorded_and_logged_once(
    sqlite_gateway: GatewayServer,
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)

    async def faulty(headers: Any) -> Any:
        raise RuntimeError("an injected fault")

    async def timed_out(headers: Any) -> Any:
        raise TimeoutError  # an OSError: not the client gone, a fault all the same

    proxy = sqlite_gateway.app.proxy
    for fault in (faulty, faulty, faulty, timed_out, timed_out):
        monkeypatch.setattr(proxy.authenticator, "resolve", fault)
        _assert_gateway_fault(sqlite_gateway)
    assert upstream.served == []
    monkeypatch.undo()
    rows = records_once_written(sqlite_gateway)
    assert len(rows) == 5
    assert {(r["status_code"], r["error_type"], r["billable"]) for r in rows} == {
        (500, "gateway_error", False)
    }
    faults = [r for r in caplog.records if "failed to handle a call" in r.getMessage()]
    # A fault may hit every call: each kind is logged once per 10 s, with its traceback.
    assert [r.getMessage() for r in faults] == [
        "spendgate failed to handle a call to POST /v1/messages: RuntimeError: an injected fault",
        "spendgate failed to handle a call to POST /v1/messages: TimeoutError",
    ]
    assert all(r.exc_info is not None for r in faults)
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]


def _assert_gateway_fault(gateway: GatewayServer) -> None:
    with pytest.raises(anthropic.InternalServerError) as info:
        sdk(gateway).messages.create(
            model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 500
    error = info.value.response.json()["error"]
    assert error["type"] == "api_error"
    assert error["message"].startswith("spendgate: the gateway failed to handle this call")


def test_a_fault_under_a_budget_settles_it_by_whether_the_call_was_forwarded(
    sqlite_gateway: GatewayServer, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forwarded, the upstream may have billed the call: it stays unpriced and the budget
    is charged its reservation. Not forwarded, it is not billable and costs nothing."""
    created = httpx.post(
        f"{sqlite_gateway.url}/api/budgets",
        json={"scope": "global", "limit_usd": "1000", "period": "monthly"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    report_url = f"{sqlite_gateway.url}/api/budgets/{created.json()['id']}"

    def fault(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("an injected fault")

    monkeypatch.setattr(forward, "upstream_headers", fault)  # before the call is forwarded
    _assert_gateway_fault(sqlite_gateway)
    monkeypatch.undo()
    (before,) = records_once_written(sqlite_gateway)
    assert (before["billable"], before["pricing_status"], before["cost_usd"]) == (
        False,
        "not_billable",
        "0.000000000",
    )
    sqlite_gateway.flush()
    assert httpx.get(report_url, timeout=10).json()["spent_usd"] == "0.000000000"

    monkeypatch.setattr(UpstreamClient, "handles", staticmethod(fault))  # once forwarded
    _assert_gateway_fault(sqlite_gateway)
    monkeypatch.undo()
    after = [r for r in records(sqlite_gateway) if r["id"] != before["id"]]
    assert [(r["error_type"], r["billable"], r["pricing_status"]) for r in after] == [
        ("gateway_error", True, "unpriced")
    ]
    assert "gateway_error" in after[0]["cost_breakdown"]["reason"]
    sqlite_gateway.flush()
    spent = httpx.get(report_url, timeout=10).json()["spent_usd"]
    assert spent != "0.000000000"  # charged its reservation: the worst case
    assert upstream.served == []

    # The upstream answered, but the fault came before the answer's head was sent: the
    # client gets spendgate's 500, and the call, billed upstream, is left unpriced.
    monkeypatch.setattr(forward, "_response_headers", fault)
    _assert_gateway_fault(sqlite_gateway)
    monkeypatch.undo()
    assert len(upstream.served) == 1
    seen = {before["id"], after[0]["id"]}
    (answered,) = [r for r in records(sqlite_gateway) if r["id"] not in seen]
    assert (answered["status_code"], answered["error_type"], answered["pricing_status"]) == (
        500,
        "gateway_error",
        "unpriced",
    )
    sqlite_gateway.flush()
    now = httpx.get(report_url, timeout=10).json()["spent_usd"]
    assert Decimal(now) > Decimal(spent)  # one more worst case


@pytest.mark.parametrize(
    ("fields", "status", "why"),
    [
        ({"error_type": "gateway_error"}, "unpriced", "a fault of spendgate's own"),
        ({"error_type": "gateway_error", "billable": False}, "not_billable", None),
        ({"error_type": "client_disconnected", "status_code": 200}, "unpriced", "client left"),
        (
            {
                "error_type": "client_disconnected",
                "status_code": 200,
                "usage": Usage.from_raw({"input_tokens": 10, "output_tokens": 5}),
            },
            "priced",
            None,
        ),
        ({"status_code": 200}, "priced", None),  # no usage, nobody left: zero, as reported
    ],
    ids=["fault", "fault-not-forwarded", "gone-unread", "gone-read", "answered"],
)
def test_a_call_whose_usage_was_never_seen_stays_unpriced_when_priced_again(
    fields: dict[str, Any], status: str, why: str | None
) -> None:
    record = CallRecord(model="claude-sonnet-4-5", **fields)
    apply_cost(PriceBook.load(), record)  # what the writer, a budget and reprice all do
    assert record.pricing_status == status
    if why is not None:
        assert record.cost_nanousd is None
        assert record.cost_breakdown is not None and why in record.cost_breakdown["reason"]


def test_a_budgeted_call_whose_client_left_before_its_usage_was_read_is_unpriced(
    sqlite_gateway: GatewayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Billed upstream, usage unseen: left unpriced, and its budget charged the
    reservation (the budget settles before the record is written: the mark must come
    first)."""
    created = httpx.post(
        f"{sqlite_gateway.url}/api/budgets",
        json={"scope": "global", "limit_usd": "1000", "period": "monthly"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    monkeypatch.setattr(forward, "_SMALL_BODY", 0)  # an answer too long to read for nobody
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{sqlite_gateway.url}/v1/messages",
            json={"model": "claude-haiku-4-5", "max_tokens": 50, "messages": []},
            headers={"x-api-key": CLIENT_KEY, "x-fake-sleep": "1.0"},
            timeout=httpx.Timeout(10, read=0.3),
        )
    (rec,) = records_once_written(sqlite_gateway)
    assert (rec["status_code"], rec["error_type"], rec["pricing_status"]) == (
        200,
        "client_disconnected",
        "unpriced",
    )
    sqlite_gateway.flush()
    report = httpx.get(f"{sqlite_gateway.url}/api/budgets/{created.json()['id']}").json()
    assert Decimal(report["spent_usd"]) > 0  # charged its reservation, not $0


def test_upstream_cookies_are_not_kept_between_calls(tmp_path: Path) -> None:
    """A proxy keeps no cookie jar: a cookie the upstream sets on one client's call is
    never sent on the next call (that client's or another's)."""
    from spendgate.testing.gateway import free_port, gateway_settings

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append(self.headers.get("cookie"))
            body = b'{"type":"message","usage":{"input_tokens":1,"output_tokens":1}}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.send_header("set-cookie", "__cf_bm=secret-ish; Path=/; Domain=localhost")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"sqlite:///{tmp_path / 'spendgate.db'}"
        settings = gateway_settings(tmp_path, f"http://localhost:{port}", url)
        with GatewayServer(settings) as gateway:
            for key in ("sk-ant-api03-first", "sk-ant-api03-second"):
                resp = httpx.post(
                    f"{gateway.url}/v1/messages",
                    content=b'{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[]}',
                    headers={"x-api-key": key, "content-type": "application/json"},
                    timeout=10,
                )
                assert resp.status_code == 200
    finally:
        server.shutdown()
    assert seen == [None, None]


class _ScriptedBody:
    """An upstream answer whose body comes in ``chunks``; ``end_known``: the upstream's
    end arrived with the last chunk (else it comes after it)."""

    status = 200
    content_length = None

    def __init__(self, chunks: list[bytes], *, end_known: bool) -> None:
        self.chunks, self.end_known, self.left = chunks, end_known, len(chunks)

    async def iter_any(self) -> Any:
        for chunk in self.chunks:
            self.left -= 1
            yield chunk

    def at_end(self) -> bool:
        return self.end_known and self.left == 0


def _relay_only_proxy() -> Proxy:
    """A proxy whose relay is called directly (no upstream, no recording)."""
    return Proxy(
        upstream_url="http://127.0.0.1:9",
        authenticator=Authenticator(
            server_key=None, server_key_usable=False, allow_client_credentials=True
        ),
        submit=lambda record: None,
    )


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "method": "POST",
        "path": "/v1/messages",
        "raw_path": b"/v1/messages",
        "query_string": b"",
        "headers": [(b"x-api-key", CLIENT_KEY.encode()), (b"content-type", b"application/json")],
    }


async def _body() -> dict[str, Any]:
    body = b'{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}'
    return {"type": "http.request", "body": body, "more_body": False}


async def _client_gone(message: dict[str, Any]) -> None:
    raise ConnectionResetError("the client has gone")  # what an ASGI 2.4 server raises


@pytest.mark.parametrize("what", ["refused", "fault"])
async def test_a_call_whose_client_left_before_its_answer_is_still_recorded(what: str) -> None:
    recorded: list[CallRecord] = []
    proxy = _relay_only_proxy()
    proxy.submit = recorded.append

    async def reserve(*args: Any) -> Any:
        if what == "refused":
            raise Refused(503, "api_error", "spendgate: budgets down", reason="budget_unavailable")
        raise RuntimeError("an injected fault")

    proxy.reserve = reserve
    await proxy(_scope(), _body, _client_gone)  # nothing escapes to the server
    (record,) = recorded
    expected = (503, "budget_unavailable") if what == "refused" else (500, "gateway_error")
    assert (record.status_code, record.error_type) == expected
    assert record.complete is False and record.billable is False


def test_send_error_says_the_client_has_gone() -> None:
    with pytest.raises(ClientGone):
        asyncio.run(send_error(_client_gone, 503, "api_error", "spendgate: down"))


@pytest.mark.parametrize("end_known", [True, False])
async def test_a_relayed_stream_ends_in_the_write_of_its_last_bytes(end_known: bool) -> None:
    proxy = _relay_only_proxy()
    sent: list[tuple[bytes, bool]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append((message["body"], message["more_body"]))

    body = _ScriptedBody([b"event: a\n\n", b"event: message_stop\n\n"], end_known=end_known)
    await proxy._relay_body(body, send, CallRecord(), None, None)  # type: ignore[arg-type]
    if end_known:  # one message, so one write, ends the answer
        assert sent == [(b"event: a\n\n", True), (b"event: message_stop\n\n", False)]
    else:
        assert sent == [(b"event: a\n\n", True), (b"event: message_stop\n\n", True), (b"", False)]


@pytest.mark.parametrize("client_leaves", [False, True])
async def test_a_relayed_chunk_is_written_before_the_capture_reads_it(
    client_leaves: bool,
) -> None:
    # Parsing a usage event (message_start: ~6 us warm, several times that between
    # calls) came before the write and so delayed the first byte; it now comes after,
    # and a chunk the client did not take is still read for its usage.
    proxy = _relay_only_proxy()
    order: list[tuple[str, bytes]] = []

    class Capture:
        def feed(self, chunk: bytes) -> None:
            order.append(("feed", chunk))

    async def send(message: dict[str, Any]) -> None:
        order.append(("send", message["body"]))
        if client_leaves:
            raise OSError("the client has gone")

    body = _ScriptedBody([b"event: message_start\n\n", b"event: b\n\n"], end_known=True)
    relay = proxy._relay_body(body, send, CallRecord(), Capture(), None)  # type: ignore[arg-type]
    if client_leaves:
        with pytest.raises(ClientGone):
            await relay
        assert order == [
            ("send", b"event: message_start\n\n"),
            ("feed", b"event: message_start\n\n"),
        ]
    else:
        await relay
        assert order == [
            ("send", b"event: message_start\n\n"),
            ("feed", b"event: message_start\n\n"),
            ("send", b"event: b\n\n"),
            ("feed", b"event: b\n\n"),
        ]


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_gone_before_the_head_still_gets_its_call_priced(
    sqlite_gateway: GatewayServer, stream: bool
) -> None:
    # The client gives up while the upstream works (a timeout on a long call); the
    # answer comes later and is billed all the same: its usage is read, not relayed.
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "stream": stream,
        "messages": [{"role": "user", "content": "x"}],
    }
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{sqlite_gateway.url}/v1/messages",
            json=body,
            headers={"x-api-key": CLIENT_KEY, "x-fake-sleep": "1.0"},
            timeout=httpx.Timeout(10, read=0.3),
        )
    (rec,) = records_once_written(sqlite_gateway)
    assert rec["status_code"] == 200
    assert rec["complete"] is False and rec["error_type"] == "client_disconnected"
    assert rec["input_tokens"] > 0
    assert rec["pricing_status"] == "priced" and rec["cost_usd"] not in (None, "0.000000000")

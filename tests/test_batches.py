"""Message Batches through the gateway: results recorded once at batch prices,
attributed to the creator, and budgets reserved at creation and settled from results."""

from __future__ import annotations

import gzip
import json
import time
from datetime import timedelta
from typing import Any

import anthropic
import httpx
import pytest
from sqlalchemy import update

from spendgate.batches import BatchCall, BatchLedger, result_record_id
from spendgate.pricing import PriceBook
from spendgate.records import CallRecord, utcnow
from spendgate.storage.batches_schema import batches
from spendgate.testing.gateway import GatewayServer
from spendgate.testing.upstream import FakeUpstream

UPSTREAM_KEY = "sk-ant-api03-upstream-batch-test-secret"
MODEL = "claude-sonnet-4-6"
REQUESTS = 3
# Each request: "Say hello number N" is 16 input tokens at the fake, and it answers 5
# output tokens. Sonnet 4.6 is $3 / $15 per MTok; batch prices are half: $1.50 / $7.50.
# 16 x $1.50/M + 5 x $7.50/M = $0.000024 + $0.0000375 = $0.0000615 per result.
RESULT_USD = "0.000061500"
TOTAL_USD = "0.000184500"  # three results


def _key(url: str, label: str) -> dict[str, Any]:
    resp = httpx.post(
        f"{url}/api/keys", json={"label": label, "upstream_key": UPSTREAM_KEY}, timeout=10
    )
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _budget(url: str, key_id: str, limit: str) -> dict[str, Any]:
    resp = httpx.post(
        f"{url}/api/budgets",
        json={"scope": "key", "value": key_id, "limit_usd": limit, "period": "monthly"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _client(url: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=30)


def _create(client: anthropic.Anthropic, max_tokens: int = 100) -> Any:
    return client.messages.batches.create(
        requests=[
            {
                "custom_id": f"req-{i}",
                "params": {
                    "model": MODEL,
                    "max_tokens": max_tokens,
                    "messages": [{"role": "user", "content": f"Say hello number {i}"}],
                },
            }
            for i in range(REQUESTS)
        ]
    )


def _batch_records(gateway: GatewayServer, count: int) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = []
    for _ in range(100):
        gateway.flush()
        resp = httpx.get(f"{gateway.url}/api/requests", params={"source": "batch", "limit": 100})
        data = resp.json()["data"]
        if len(data) >= count:
            break
        time.sleep(0.02)
    return data


def _report(gateway: GatewayServer, budget_id: str) -> dict[str, Any]:
    assert gateway.app.governance is not None and gateway.app.governance.guard is not None
    gateway.call(gateway.app.governance.guard.flush())
    data: dict[str, Any] = httpx.get(f"{gateway.url}/api/budgets/{budget_id}").json()
    return data


def test_results_recorded_once_at_batch_prices_for_the_creator(gateway: GatewayServer) -> None:
    creator, downloader = _key(gateway.url, "creator"), _key(gateway.url, "downloader")
    batch = _create(_client(gateway.url, creator["key"]))
    assert batch.processing_status == "ended"
    # Pointed at the gateway, so the SDK downloads the results through it.
    assert batch.results_url == f"{gateway.url}/v1/messages/batches/{batch.id}/results"

    reader = _client(gateway.url, downloader["key"])
    first = list(reader.messages.batches.results(batch.id))
    second = list(reader.messages.batches.results(batch.id))
    assert [r.custom_id for r in first] == [r.custom_id for r in second]
    assert len(first) == REQUESTS
    assert all(r.result.type == "succeeded" for r in first)

    records = _batch_records(gateway, REQUESTS)
    time.sleep(0.1)  # a late duplicate would show up now
    records = _batch_records(gateway, REQUESTS)
    assert len(records) == REQUESTS  # downloaded twice, recorded once
    by_message = {r.result.message.id: r.custom_id for r in first}  # type: ignore[union-attr]
    for record in records:
        assert record["source"] == "batch"
        assert record["endpoint"] == "/v1/messages/batches"
        assert record["model"] == MODEL
        assert record["cost_usd"] == RESULT_USD
        assert record["key_id"] == creator["id"]  # the creator, not the downloader
        custom_id = by_message[record["message_id"]]
        assert record["id"] == result_record_id(batch.id, custom_id)
        assert record["input_tokens"] == 16 and record["output_tokens"] == 5


def test_batch_over_budget_is_refused_with_the_budget_named(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    key = _key(gateway.url, "tight")
    budget = _budget(gateway.url, key["id"], limit="0.01")
    # 3 x 100 000 output tokens at $7.50/M = $2.25 worst case: far over $0.01.
    with pytest.raises(anthropic.RateLimitError) as refused:
        _create(_client(gateway.url, key["key"]), max_tokens=100_000)
    assert refused.value.status_code == 429
    assert refused.value.response.headers.get("x-should-retry") == "false"
    message = refused.value.body["error"]["message"]  # type: ignore[index]
    assert budget["name"] in message and "exhausted" in message
    assert "/v1/messages/batches" not in [s.path for s in upstream.served]  # never forwarded
    report = _report(gateway, budget["id"])
    assert report["reserved_usd"] == "0.000000000"
    assert report["refused"] == 1


def test_reservation_held_until_results_then_settled_at_actual(gateway: GatewayServer) -> None:
    key = _key(gateway.url, "roomy")
    budget = _budget(gateway.url, key["id"], limit="1.00")
    client = _client(gateway.url, key["key"])
    batch = _create(client)
    held = _report(gateway, budget["id"])
    # Worst case: per request ~(body bytes / 3) tokens at $6/M + 100 x $15/M, halved.
    assert held["reserved_usd"] != "0.000000000"
    assert float(held["reserved_usd"]) >= REQUESTS * 100 * 7.5e-6
    assert held["spent_usd"] == "0.000000000"

    list(client.messages.batches.results(batch.id))
    settled = _report(gateway, budget["id"])
    assert settled["reserved_usd"] == "0.000000000"
    assert settled["spent_usd"] == TOTAL_USD

    list(client.messages.batches.results(batch.id))  # a second download settles nothing
    again = _report(gateway, budget["id"])
    assert (again["reserved_usd"], again["spent_usd"]) == ("0.000000000", TOTAL_USD)


def test_sweep_releases_reservations_past_results_retention(gateway: GatewayServer) -> None:
    key = _key(gateway.url, "forgotten")
    budget = _budget(gateway.url, key["id"], limit="1.00")
    _create(_client(gateway.url, key["key"]))
    assert _report(gateway, budget["id"])["reserved_usd"] != "0.000000000"
    governance = gateway.app.governance
    assert governance is not None and governance.ledger is not None
    store = gateway.app.store
    assert store is not None
    with store.engine.begin() as conn:  # the batch was created 30 days ago
        conn.execute(update(batches).values(created_at=utcnow() - timedelta(days=30)))
    assert gateway.call(governance.ledger.sweep()) == 1
    assert gateway.call(governance.ledger.sweep()) == 0  # nothing twice
    report = _report(gateway, budget["id"])
    assert (report["reserved_usd"], report["spent_usd"]) == ("0.000000000", "0.000000000")


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_results_tee_reads_lines_split_across_chunks(encoding: str | None) -> None:
    """Byte-sized chunks, gzip, a last line without a newline, unbilled results skipped."""
    lines = [
        {
            "custom_id": f"req-{i}",
            "result": {
                "type": "succeeded",
                "message": {
                    "id": f"msg_{i}",
                    "model": MODEL,
                    "stop_reason": "end_turn",
                    "usage": {"input_tokens": 16, "output_tokens": 5},  # no service_tier
                },
            },
        }
        for i in range(3)
    ]
    lines.insert(1, {"custom_id": "gone", "result": {"type": "expired"}})
    body = b"\n".join(json.dumps(line).encode() for line in lines)  # no final newline
    if encoding == "gzip":
        body = gzip.compress(body)
    filed: list[CallRecord] = []
    ledger = BatchLedger(
        book=PriceBook.load(),
        guard=None,  # type: ignore[arg-type]
        budgets=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        upstream_url="https://api.anthropic.com",
    )
    call = BatchCall(ledger, "results", None, filed.append, batch_id="msgbatch_1")
    tee = call.tee(encoding)
    assert tee is not None
    for i in range(0, len(body), 7):
        tee.feed(body[i : i + 7])
    tee.result()
    assert [r.message_id for r in filed] == ["msg_0", "msg_1", "msg_2"]
    assert all(r.usage.service_tier == "batch" for r in filed)  # batch prices applied
    assert all(r.cost_nanousd == 61_500 for r in filed)
    assert call.cost_nanousd == 184_500

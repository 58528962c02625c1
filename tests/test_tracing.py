"""OpenTelemetry: one span per proxied call with the GenAI semantic conventions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from spendgate.observability.tracing import CallTracer
from spendgate.storage import CallFilter, Store
from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.testing.upstream import FakeUpstream

USAGE = {"input_tokens": 40, "output_tokens": 7, "cache_read_input_tokens": 100}
BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "trace me"}],
}


def test_a_span_per_call_with_genai_attributes_and_cost(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    url = f"sqlite:///{tmp_path / 'sg.db'}"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = GatewayServer(gateway_settings(tmp_path, upstream.url, url))
    assert server.app.operations is not None
    server.app.operations.telemetry.tracer = CallTracer(provider, upstream_host="127.0.0.1")
    with server:
        client = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-t", max_retries=0)
        headers = {"x-fake-usage": json.dumps(USAGE)}
        client.messages.create(**BODY, extra_headers=headers)  # type: ignore[call-overload]
        with client.messages.stream(**BODY, extra_headers=headers) as stream:  # type: ignore[arg-type]
            stream.until_done()
        with pytest.raises(anthropic.APIStatusError):
            client.messages.create(**BODY, extra_headers={"x-fake-error": "529"})  # type: ignore[call-overload]
        server.flush()
    store = Store.open(url)
    rows = {r["id"]: r for r in store.iter_call_rows(CallFilter())}
    store.close()

    spans = exporter.get_finished_spans()
    assert len(spans) == len(rows) == 3
    for span in spans:
        attrs = dict(span.attributes or {})
        row = rows[str(attrs["spendgate.call_id"])]
        assert span.name == "chat claude-sonnet-4-6"
        assert span.kind == SpanKind.CLIENT
        assert attrs["gen_ai.system"] == "anthropic"
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.request.model"] == "claude-sonnet-4-6"
        assert attrs["http.response.status_code"] == row["status_code"]
        assert span.start_time is not None and span.end_time is not None
        assert span.end_time - span.start_time == pytest.approx(row["latency_ms"] * 1e6, rel=0.01)
        if row["status_code"] == 200:
            assert attrs["gen_ai.response.model"] == row["model"]
            assert attrs["gen_ai.response.id"] == row["message_id"]
            assert attrs["gen_ai.usage.input_tokens"] == 40 + 100  # cached input counts too
            assert attrs["gen_ai.usage.output_tokens"] == 7
            assert attrs["gen_ai.usage.cache_read.input_tokens"] == 100
            assert attrs["spendgate.cost_usd"] == row["cost_nanousd"] / 1e9 > 0
            assert span.status.status_code == StatusCode.UNSET
        else:
            assert attrs["error.type"] == "overloaded_error"
            assert span.status.status_code == StatusCode.ERROR


def test_without_the_extra_tracing_is_skipped_with_a_hint(tmp_path: Path) -> None:
    script = f"""
import logging, sys
sys.modules["opentelemetry.sdk"] = None  # as if `spendgate[otel]` were not installed
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from spendgate.observability.tracing import otel_available
from spendgate.observability.telemetry import Telemetry
from spendgate.settings import Settings
settings = Settings(_env_file=None, home={str(tmp_path)!r}, otel_endpoint="http://127.0.0.1:9/v1/traces")
telemetry = Telemetry.from_settings(settings)
telemetry.start(settings)
assert not otel_available() and telemetry.tracer is None
print("skipped")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "skipped"
    assert "pip install 'spendgate[otel]'" in result.stderr

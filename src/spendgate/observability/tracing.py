"""OpenTelemetry: one span per proxied call, following the GenAI semantic conventions.

Optional (``pip install 'spendgate[otel]'``). Spans are built after the fact
from the finished, priced record, with the call's own start and end times, so
the hot path pays nothing and the span can carry the cost. Exported over
OTLP/HTTP to ``SPENDGATE_OTEL_ENDPOINT``; the exporter's usual variables
(``OTEL_EXPORTER_OTLP_HEADERS`` for an API key, ...) apply as well.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from spendgate.observability.metrics import NANOS_PER_USD, upstream_error
from spendgate.records import CallRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("spendgate.tracing")

INSTALL_HINT = "pip install 'spendgate[otel]'"
_OPERATIONS = {"/v1/messages": "chat", "/v1/complete": "text_completion"}


def otel_available() -> bool:
    """Whether the OpenTelemetry SDK (the ``otel`` extra) is installed."""
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


def _ns(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000) * 1000


def span_attributes(record: CallRecord, upstream_host: str | None = None) -> dict[str, Any]:
    """The span attributes of a call (GenAI semantic conventions plus ``spendgate.*``)."""
    usage = record.usage
    attr = record.attribution
    out: dict[str, Any] = {
        "http.request.method": record.method,
        "url.path": record.endpoint,
        "spendgate.call_id": record.id,
        "spendgate.stream": record.stream,
        "spendgate.pricing_status": record.pricing_status,
    }
    operation = _OPERATIONS.get(record.endpoint)
    if operation is not None:
        out["gen_ai.operation.name"] = operation
        out["gen_ai.system"] = "anthropic"
        out["gen_ai.provider.name"] = "anthropic"
    optional: dict[str, Any] = {
        "gen_ai.request.model": record.model_requested,
        "gen_ai.response.model": record.model,
        "gen_ai.response.id": record.message_id,
        "http.response.status_code": record.status_code,
        "server.address": upstream_host,
        "spendgate.request_id": record.request_id,
        "spendgate.key_id": attr.key_id,
        "spendgate.team": attr.team,
        "spendgate.project": attr.project,
        "enduser.id": attr.user,
        "session.id": attr.session_id,
    }
    out.update({name: value for name, value in optional.items() if value is not None})
    if record.stop_reason:
        out["gen_ai.response.finish_reasons"] = [record.stop_reason]
    if record.forwarded_at is not None and operation is not None:
        # The conventions count every prompt token as input, cached or not.
        out["gen_ai.usage.input_tokens"] = usage.prompt_tokens
        out["gen_ai.usage.output_tokens"] = usage.output_tokens
        out["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_input_tokens
        out["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_creation_input_tokens
    if record.cost_nanousd is not None:
        out["spendgate.cost_usd"] = record.cost_nanousd / NANOS_PER_USD
    if record.ttft_ms is not None and record.stream:
        out["spendgate.time_to_first_token_ms"] = record.ttft_ms
    error = upstream_error(record) or (record.error_type if record.forwarded_at is None else None)
    if error is not None:
        out["error.type"] = error
    return out


class CallTracer:
    """Turns finished call records into spans on a tracer provider of its own."""

    def __init__(self, provider: TracerProvider, *, upstream_host: str | None = None) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.provider = provider
        self.upstream_host = upstream_host
        self._tracer = provider.get_tracer("spendgate")
        self._kind = SpanKind.CLIENT
        self._error = Status(StatusCode.ERROR)

    @classmethod
    def otlp(cls, endpoint: str, *, service_name: str, upstream_host: str | None) -> CallTracer:
        """A tracer exporting in batches over OTLP/HTTP to ``endpoint``."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from spendgate import __version__

        resource = Resource.create({"service.name": service_name, "service.version": __version__})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        return cls(provider, upstream_host=upstream_host)

    def observe(self, records: Sequence[CallRecord]) -> None:
        """One span per record, with the call's own start and end times."""
        for record in records:
            attributes = span_attributes(record, self.upstream_host)
            operation = _OPERATIONS.get(record.endpoint)
            if operation is not None and record.model:
                name = f"{operation} {record.model}"
            else:
                name = f"{record.method} {record.endpoint}"
            span = self._tracer.start_span(
                name, kind=self._kind, start_time=_ns(record.created_at), attributes=attributes
            )
            if "error.type" in attributes:
                span.set_status(self._error)
            span.end(end_time=_ns(record.ended_at or record.created_at))

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter."""
        self.provider.shutdown()

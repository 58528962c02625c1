"""What the writer hands every priced batch to: metrics, spans and the call log."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from spendgate.observability.metrics import GatewayMetrics
from spendgate.observability.tracing import INSTALL_HINT, CallTracer, otel_available
from spendgate.records import CallRecord
from spendgate.settings import Settings

log = logging.getLogger("spendgate.telemetry")
call_log = logging.getLogger("spendgate.calls")


def call_fields(record: CallRecord) -> dict[str, Any]:
    """The fields of one call-log line: ids and figures, never bodies or credentials."""
    attr = record.attribution
    usage = record.usage
    return {
        "call_id": record.id,
        "request_id": record.request_id,
        "message_id": record.message_id,
        "endpoint": record.endpoint,
        "model": record.model or record.model_requested,
        "stream": record.stream,
        "status": record.status_code,
        "error_type": record.error_type,
        "complete": record.complete,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_input_tokens,
        "cache_write_tokens": usage.cache_creation_input_tokens,
        "cost_nanousd": record.cost_nanousd,
        "latency_ms": record.latency_ms,
        "ttft_ms": record.ttft_ms,
        "key_id": attr.key_id,
        "team": attr.team,
        "user": attr.user,
        "credential": attr.credential_fingerprint,
    }


class Telemetry:
    """Metrics, spans and call-log lines of one gateway process, all fed from records."""

    def __init__(
        self,
        *,
        metrics: GatewayMetrics | None = None,
        tracer: CallTracer | None = None,
        log_calls: bool = False,
    ) -> None:
        self.metrics = metrics
        self.tracer = tracer
        self.log_calls = log_calls

    @classmethod
    def from_settings(cls, settings: Settings) -> Telemetry:
        """Metrics as configured; the OTLP tracer is built by :meth:`start`."""
        metrics = None
        if settings.metrics:
            shared = settings.effective_metrics_dir if settings.workers > 1 else None
            metrics = GatewayMetrics(
                label_limit=settings.metrics_label_limit, multiprocess_dir=shared
            )
        return cls(metrics=metrics, log_calls=settings.call_log)

    def start(self, settings: Settings) -> None:
        """Start exporting spans when an OTLP endpoint is configured (and OTel installed)."""
        if self.tracer is not None or not settings.otel_endpoint:
            return
        if not otel_available():
            log.warning(
                "SPENDGATE_OTEL_ENDPOINT is set but OpenTelemetry is not installed, so no "
                "spans are exported; install it with %s",
                INSTALL_HINT,
            )
            return
        self.tracer = CallTracer.otlp(
            settings.otel_endpoint,
            service_name=settings.otel_service_name,
            upstream_host=urlsplit(settings.upstream_url).hostname,
        )

    def observe(self, records: Sequence[CallRecord]) -> None:
        """Count, trace and log a batch of finished, priced records."""
        for part in (self.metrics, self.tracer):
            if part is None:
                continue
            try:
                part.observe(records)
            except Exception:  # one sink failing must not starve the others
                log.exception("%s could not observe %d calls", type(part).__name__, len(records))
        if self.log_calls:
            for record in records:
                call_log.info("call", extra=call_fields(record))

    def shutdown(self) -> None:
        """Flush buffered spans."""
        if self.tracer is not None:
            self.tracer.shutdown()

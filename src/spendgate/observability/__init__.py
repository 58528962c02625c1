"""Seeing a running gateway: Prometheus metrics, OpenTelemetry spans, probes, call log.

Everything here is fed from finished, priced call records by the writer task
(:class:`Telemetry.observe`), so the proxy's hot path pays nothing for it.
"""

from spendgate.observability.telemetry import Telemetry

__all__ = ["Telemetry"]

"""Prometheus metrics of one gateway process (and of all its workers, when it has several).

Call metrics are updated from finished, priced records by the writer task,
never on the proxy's hot path. Process state (in-flight calls, writer queue,
spool) is sampled: at every scrape and once a second.

Several worker processes (``spendgate serve --workers N``) use prometheus-client's
multi-process mode: every process writes its values to memory-mapped files in
``metrics_dir`` and the process that answers a scrape adds all of them up, so
counters of a worker that died and was replaced are kept.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from spendgate.budgets.guard import LedgerStats
from spendgate.limits.guard import LimitStats
from spendgate.observability.labels import LabelCap
from spendgate.recording.writer import RecorderStats
from spendgate.records import CallRecord

CONTENT_TYPE = CONTENT_TYPE_LATEST
NANOS_PER_USD = 1_000_000_000

# Error types the proxy sets itself when the client, not the upstream, went away.
_NOT_UPSTREAM = frozenset({"client_disconnected"})
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
_OVERHEAD_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
CALL_LABELS = ("model", "team", "key")


def token_classes(record: CallRecord) -> tuple[tuple[str, int], ...]:
    """A record's tokens by billing class, as the ``class`` label names them."""
    usage = record.usage
    return (
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("cache_read", usage.cache_read_input_tokens),
        ("cache_write_5m", usage.cache_creation_5m_input_tokens),
        ("cache_write_1h", usage.cache_creation_1h_input_tokens),
    )


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for every value, counted per bucket first.

    ``observe`` takes two locks per value (the sum and one bucket), 44 % of the
    metrics observer's time for a writer batch; here each bucket touched is
    incremented once and the sum once. The buckets are prometheus_client's own
    (``_upper_bounds``, ``_buckets``, ``_sum``, unchanged since 0.4; a test checks
    them); without them it falls back to ``observe``.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for value in values:
            histogram.observe(value)
        return
    counts: dict[int, int] = {}
    for value in values:
        if not math.isnan(value):  # NaN falls in no bucket (observe compares it with each)
            at = bisect_left(bounds, value)  # the first bound >= value (the last is +Inf)
            counts[at] = counts.get(at, 0) + 1
    for at, count in counts.items():
        buckets[at].inc(count)
    if values:
        total.inc(math.fsum(values))


def upstream_error(record: CallRecord) -> str | None:
    """The upstream error a forwarded call met (HTTP error, error event, timeout, reset)."""
    if record.forwarded_at is None:
        return None
    if record.error_type is not None and record.error_type not in _NOT_UPSTREAM:
        return record.error_type
    if record.status_code is not None and record.status_code >= 400:
        return f"http_{record.status_code}"
    return None


class GatewayMetrics:
    """The metric objects of one process and how to render them."""

    def __init__(self, *, label_limit: int = 100, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self._model = LabelCap(label_limit)
        self._team = LabelCap(label_limit)
        self._key = LabelCap(label_limit)
        self._reason = LabelCap(label_limit)
        self._error = LabelCap(label_limit)
        reg = self.registry
        self.calls = Counter(
            "spendgate_calls",
            "Proxied calls by model, team, proxy key and HTTP status.",
            [*CALL_LABELS, "status"],
            registry=reg,
        )
        self.tokens = Counter(
            "spendgate_tokens",
            "Tokens by billing class (input, output, cache_read, cache_write_5m, cache_write_1h).",
            [*CALL_LABELS, "class"],
            registry=reg,
        )
        self.cost = Counter(
            "spendgate_cost_usd",
            "Cost in USD as priced by the price book (the ledger holds the exact figure).",
            list(CALL_LABELS),
            registry=reg,
        )
        self.unpriced = Counter(
            "spendgate_unpriced_calls",
            "Billable calls the price book could not price (unknown model).",
            ["model"],
            registry=reg,
        )
        self.refused = Counter(
            "spendgate_refused_calls",
            "Calls the gateway answered itself without forwarding (budget_exceeded, ...).",
            ["reason"],
            registry=reg,
        )
        self.upstream_errors = Counter(
            "spendgate_upstream_errors",
            "Forwarded calls that met an upstream error, by type.",
            ["type"],
            registry=reg,
        )
        self.duration = Histogram(
            "spendgate_request_duration_seconds",
            "Whole proxied calls as the client sees them, first byte in to last byte out.",
            ["stream"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.upstream_duration = Histogram(
            "spendgate_upstream_duration_seconds",
            "From forwarding a call upstream to its last byte.",
            ["stream"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.overhead = Histogram(
            "spendgate_gateway_overhead_seconds",
            "Latency the gateway adds before forwarding (auth, body, budget check).",
            buckets=_OVERHEAD_BUCKETS,
            registry=reg,
        )
        self.ttft = Histogram(
            "spendgate_time_to_first_token_seconds",
            "Streamed calls: request in to first upstream byte out.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.inflight = Gauge(
            "spendgate_inflight_requests",
            "Proxied calls (streams included) being answered right now.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.queue_depth = Gauge(
            "spendgate_writer_queue_depth",
            "Finished call records waiting in memory for the writer.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.spooled = Gauge(
            "spendgate_spooled_records",
            "Records waiting in the spool for the database to come back.",
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.database_up = Gauge(
            "spendgate_database_up",
            "1 when the writer's last database write succeeded.",
            registry=reg,
            multiprocess_mode="livemin",
        )
        self.written = Counter(
            "spendgate_written_records", "Records written to the database.", registry=reg
        )
        self.lost = Counter(
            "spendgate_lost_records",
            "Records neither the database nor the spool would take.",
            registry=reg,
        )
        self.ledger_transactions = Counter(
            "spendgate_budget_ledger_transactions",
            "Database transactions of the budget ledger (settlements, leases, reservations).",
            registry=reg,
        )
        self.ledger_waits = Counter(
            "spendgate_budget_reservation_waits",
            "Budgeted calls that found no lease and waited for a reservation in the database.",
            registry=reg,
        )
        self.ledger_leases = Counter(
            "spendgate_budget_leases",
            "Budget leases taken by this process; kind=topup when taken before the last ran dry.",
            ["kind"],
            registry=reg,
        )
        self.limit_transactions = Counter(
            "spendgate_rate_limit_transactions",
            "Database transactions for rate limits (takes, settlements, lease rounds).",
            registry=reg,
        )
        self.limit_checks = Counter(
            "spendgate_rate_limit_checks",
            "Calls under a rate limit, by where they were counted: lease (this process's "
            "room, in memory) or database.",
            ["where"],
            registry=reg,
        )
        self._written_seen = 0
        self._lost_seen = 0
        self._ledger_seen = LedgerStats()
        self._limits_seen = LimitStats()
        # Sampled from the event loop (every second) and from scrapes (a thread).
        self._sample_lock = threading.Lock()

    # -- from records (writer task) ------------------------------------

    def observe(self, records: Sequence[CallRecord]) -> None:
        """Count a batch of finished, priced records.

        Counters are summed per label tuple over the batch and incremented once per
        series; histogram children are looked up once per batch. A ``labels()``
        lookup per record and metric was the largest cost of the writer's thread.
        """
        calls: dict[tuple[str, ...], int] = {}
        tokens: dict[tuple[str, ...], int] = {}
        cost: dict[tuple[str, ...], int] = {}
        refused: dict[str, int] = {}
        unpriced: dict[str, int] = {}
        errors: dict[str, int] = {}
        overhead: list[float] = []
        durations: dict[str, list[float]] = {"true": [], "false": []}
        upstream: dict[str, list[float]] = {"true": [], "false": []}
        ttft: dict[str, list[float]] = {}
        for record in records:
            attr = record.attribution
            model = self._model(record.model or record.model_requested)
            labels = (model, self._team(attr.team), self._key(attr.key_id))
            status = str(record.status_code) if record.status_code is not None else "none"
            calls[(*labels, status)] = calls.get((*labels, status), 0) + 1
            forwarded_at = record.forwarded_at
            if forwarded_at is None:
                reason = self._reason(record.error_type)
                refused[reason] = refused.get(reason, 0) + 1
                continue
            for name, count in token_classes(record):
                if count:
                    tokens[(*labels, name)] = tokens.get((*labels, name), 0) + count
            if record.cost_nanousd:
                cost[labels] = cost.get(labels, 0) + record.cost_nanousd
            if record.billable and record.pricing_status == "unpriced":
                unpriced[model] = unpriced.get(model, 0) + 1
            error = upstream_error(record)
            if error is not None:
                kind = self._error(error)
                errors[kind] = errors.get(kind, 0) + 1
            stream = "true" if record.stream else "false"
            overhead.append((forwarded_at - record.created_at).total_seconds())
            if record.latency_ms is not None:
                durations[stream].append(record.latency_ms / 1000)
            if record.ended_at is not None:
                seconds = (record.ended_at - forwarded_at).total_seconds()
                upstream[stream].append(max(seconds, 0.0))
            if record.stream and record.ttft_ms is not None:
                ttft.setdefault(model, []).append(record.ttft_ms / 1000)
        self._count(self.calls, calls)
        self._count(self.tokens, tokens)
        # Summed in whole nano-dollars, converted once per series.
        for three, nanos in cost.items():
            self.cost.labels(*three).inc(nanos / NANOS_PER_USD)
        self._count(self.refused, {(k,): n for k, n in refused.items()})
        self._count(self.unpriced, {(k,): n for k, n in unpriced.items()})
        self._count(self.upstream_errors, {(k,): n for k, n in errors.items()})
        observe_many(self.overhead, overhead)
        self._observe_all(self.duration, {(k,): v for k, v in durations.items()})
        self._observe_all(self.upstream_duration, {(k,): v for k, v in upstream.items()})
        self._observe_all(self.ttft, {(k,): v for k, v in ttft.items()})

    @staticmethod
    def _count(counter: Counter, totals: dict[tuple[str, ...], int]) -> None:
        for series, amount in totals.items():
            counter.labels(*series).inc(amount)

    @staticmethod
    def _observe_all(histogram: Histogram, values: dict[tuple[str, ...], list[float]]) -> None:
        for series, observed in values.items():
            if observed:
                observe_many(histogram.labels(*series), observed)

    # -- sampled state -------------------------------------------------

    def sample(
        self,
        *,
        inflight: int,
        recorder: RecorderStats | None,
        ledger: LedgerStats | None = None,
        limits: LimitStats | None = None,
    ) -> None:
        """Copy the process's current state into the gauges (and counters kept elsewhere)."""
        self.inflight.set(inflight)
        if ledger is not None:
            self._sample_ledger(ledger)
        if limits is not None:
            self._sample_limits(limits)
        if recorder is None:
            return
        self.queue_depth.set(recorder.queue_depth)
        self.spooled.set(recorder.spooled_pending)
        self.database_up.set(1 if recorder.database_ok else 0)
        with self._sample_lock:
            if recorder.written > self._written_seen:
                self.written.inc(recorder.written - self._written_seen)
                self._written_seen = recorder.written
            if recorder.lost > self._lost_seen:
                self.lost.inc(recorder.lost - self._lost_seen)
                self._lost_seen = recorder.lost

    @staticmethod
    def _add(deltas: Sequence[tuple[Counter, int]]) -> None:
        """Count what a stats object's counts rose by since the last sample."""
        for counter, delta in deltas:
            if delta > 0:
                counter.inc(delta)

    def _sample_ledger(self, ledger: LedgerStats) -> None:
        with self._sample_lock:
            seen = self._ledger_seen
            new_leases = ledger.leases - ledger.topups - (seen.leases - seen.topups)
            self._add(
                [
                    (self.ledger_transactions, ledger.transactions - seen.transactions),
                    (self.ledger_waits, ledger.waited - seen.waited),
                    (self.ledger_leases.labels("new"), new_leases),
                    (self.ledger_leases.labels("topup"), ledger.topups - seen.topups),
                ]
            )
            self._ledger_seen = replace(ledger)

    def _sample_limits(self, limits: LimitStats) -> None:
        with self._sample_lock:
            seen = self._limits_seen
            self._add(
                [
                    (self.limit_transactions, limits.transactions - seen.transactions),
                    (self.limit_checks.labels("lease"), limits.from_leases - seen.from_leases),
                    (
                        self.limit_checks.labels("database"),
                        limits.in_database - seen.in_database,
                    ),
                ]
            )
            self._limits_seen = replace(limits)

    def render(self) -> bytes:
        """The text exposition of this process, or of every worker in multi-process mode."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)

"""``/metrics``: parsed by the Prometheus text parser and cross-checked against the ledger."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from spendgate.budgets.admin import create_budget
from spendgate.budgets.guard import LedgerStats
from spendgate.keys import create_key
from spendgate.limits.guard import LimitStats
from spendgate.observability.labels import OTHER, LabelCap
from spendgate.observability.metrics import GatewayMetrics, observe_many
from spendgate.settings import Settings
from spendgate.storage import CallFilter, Store
from spendgate.storage.budgets import BudgetStore
from spendgate.storage.keys import KeyStore
from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.testing.prometheus import scrape, total
from spendgate.testing.upstream import FakeUpstream
from spendgate.vault import SecretBox

CLIENT_KEY = "sk-ant-api03-metrics-test-key"
USAGE = {
    "input_tokens": 120,
    "output_tokens": 33,
    "cache_read_input_tokens": 4000,
    "cache_creation_input_tokens": 900,
    "cache_creation": {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 300},
}
TOKEN_COLUMNS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_input_tokens",
    "cache_write_5m": "cache_creation_5m_input_tokens",
    "cache_write_1h": "cache_creation_1h_input_tokens",
}


def test_label_cap_folds_values_past_the_limit() -> None:
    cap = LabelCap(2)
    assert [cap(v) for v in ("a", "b", "c", "a", None, "")] == [
        "a",
        "b",
        OTHER,
        "a",
        "none",
        "none",
    ]


def team_keys(settings: Settings, teams: tuple[str, ...]) -> dict[str, str]:
    """A proxy key per team (created in the database before the gateway starts)."""
    store = Store.open(settings.effective_database_url)
    keys = KeyStore(store.engine)
    box = SecretBox.from_settings(settings)
    out = {}
    for name in teams:
        team = keys.create_team(name)
        issued = create_key(keys, label=name, team_id=team.id, upstream_key=CLIENT_KEY, box=box)
        out[name] = issued.secret
    store.close()
    return out


def _traffic(gateway: GatewayServer, keys: dict[str, str]) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"x-fake-usage": json.dumps(USAGE)}
    broke = client.with_options(api_key=keys.pop("broke"))
    for secret in keys.values():
        keyed = client.with_options(api_key=secret)
        keyed.messages.create(**body, extra_headers=headers)  # type: ignore[call-overload]
        with keyed.messages.stream(**body, extra_headers=headers) as stream:  # type: ignore[arg-type]
            stream.until_done()
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(**body, extra_headers={"x-fake-error": "529"})  # type: ignore[call-overload]
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(
            **body,
            extra_headers={"x-fake-midstream-error": "overloaded_error"},  # type: ignore[arg-type]
        ) as stream,
    ):
        stream.until_done()
    httpx.get(f"{gateway.url}/v1/models", headers={"x-api-key": CLIENT_KEY})
    with pytest.raises(anthropic.RateLimitError):
        broke.messages.create(**body)  # type: ignore[call-overload]


def test_metrics_match_the_ledger(tmp_path: Path, upstream: FakeUpstream) -> None:
    url = f"sqlite:///{tmp_path / 'spendgate.db'}"
    settings = gateway_settings(tmp_path, upstream.url, url, metrics_label_limit=2)
    keys = team_keys(settings, ("red", "blue", "green", "broke"))
    store = Store.open(url)  # team "broke" may spend one nano-dollar a day: refused
    create_budget(
        KeyStore(store.engine),
        BudgetStore(store.engine),
        scope="team",
        value="broke",
        period="daily",
        limit_nanousd=1,
    )
    store.close()
    with GatewayServer(settings) as gateway:
        _traffic(gateway, keys)
        gateway.flush()
        samples = scrape(gateway.url)
        readyz = httpx.get(f"{gateway.url}/readyz")
    assert readyz.status_code == 200, readyz.text
    store = Store.open(url)
    rows = list(store.iter_call_rows(CallFilter()))
    store.close()

    assert total(samples, "spendgate_calls_total") == len(rows) == 10
    refused = [r for r in rows if r["error_type"] == "budget_exceeded"]
    assert len(refused) == 1
    assert total(samples, "spendgate_refused_calls_total", reason="budget_exceeded") == 1
    assert total(samples, "spendgate_calls_total", status="429") == 1
    for label, column in TOKEN_COLUMNS.items():
        assert total(samples, "spendgate_tokens_total", **{"class": label}) == sum(
            r[column] for r in rows
        ), label
    ledger_cost = sum(Decimal(r["cost_nanousd"] or 0) for r in rows) / 10**9
    assert ledger_cost > 0
    assert total(samples, "spendgate_cost_usd_total") == pytest.approx(float(ledger_cost))
    # Two teams fit under the cap; the third is counted as "other", never dropped.
    teams = {s.labels["team"] for s in samples if s.name == "spendgate_cost_usd_total"}
    assert {"red", "blue", OTHER} <= teams <= {"red", "blue", OTHER, "none"}
    assert total(samples, "spendgate_cost_usd_total", team=OTHER) > 0
    assert total(samples, "spendgate_upstream_errors_total", type="overloaded_error") == 2
    assert total(samples, "spendgate_calls_total", status="529") == 1
    streamed = sum(1 for r in rows if r["stream"])
    assert total(samples, "spendgate_time_to_first_token_seconds_count") == streamed
    assert total(samples, "spendgate_gateway_overhead_seconds_count") == len(rows) - len(refused)
    assert total(samples, "spendgate_written_records_total") == len(rows)
    assert total(samples, "spendgate_lost_records_total") == 0
    assert total(samples, "spendgate_writer_queue_depth") == 0
    assert total(samples, "spendgate_inflight_requests") == 0
    # The refused call waited for a reservation in the database; a budget with no
    # room left takes no lease.
    assert total(samples, "spendgate_budget_reservation_waits_total") >= 1
    assert total(samples, "spendgate_budget_ledger_transactions_total") >= 1
    assert total(samples, "spendgate_budget_leases_total") == 0


def _read(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_budget_ledger_counters_follow_the_guard() -> None:
    """The ledger's own counts become Prometheus counters, each delta counted once."""
    metrics = GatewayMetrics()

    metrics.sample(
        inflight=0, recorder=None, ledger=LedgerStats(transactions=3, waited=2, leases=5, topups=2)
    )
    metrics.sample(
        inflight=0, recorder=None, ledger=LedgerStats(transactions=3, waited=2, leases=5, topups=2)
    )  # no change
    assert _read(metrics, "spendgate_budget_ledger_transactions_total") == 3
    assert _read(metrics, "spendgate_budget_reservation_waits_total") == 2
    assert _read(metrics, "spendgate_budget_leases_total", kind="new") == 3
    assert _read(metrics, "spendgate_budget_leases_total", kind="topup") == 2
    metrics.sample(
        inflight=0, recorder=None, ledger=LedgerStats(transactions=10, waited=2, leases=9, topups=5)
    )
    assert _read(metrics, "spendgate_budget_ledger_transactions_total") == 10
    assert _read(metrics, "spendgate_budget_leases_total", kind="new") == 4
    assert _read(metrics, "spendgate_budget_leases_total", kind="topup") == 5


def test_rate_limit_counters_follow_the_guard() -> None:
    """The rate-limit guard's counts become Prometheus counters, each delta counted once."""
    metrics = GatewayMetrics()

    for stats in (  # the second sample changes nothing
        LimitStats(transactions=4, from_leases=90, in_database=10),
        LimitStats(transactions=4, from_leases=90, in_database=10),
        LimitStats(transactions=6, from_leases=190, in_database=11),
    ):
        metrics.sample(inflight=0, recorder=None, limits=stats)
        assert _read(metrics, "spendgate_rate_limit_transactions_total") == stats.transactions
        checks = "spendgate_rate_limit_checks_total"
        assert _read(metrics, checks, where="lease") == stats.from_leases
        assert _read(metrics, checks, where="database") == stats.in_database


_BOUNDS = (0.0001, 0.001, 0.05, 0.5, 1.0, 30.0)
_VALUES = st.lists(
    st.sampled_from([*_BOUNDS, 0.0, -1.0, float("inf")])
    | st.floats(min_value=-1, max_value=100, allow_nan=False),
    max_size=40,
)


def _histograms() -> tuple[CollectorRegistry, Histogram, Histogram]:
    registry = CollectorRegistry()
    one = Histogram("one_by_one", "observe per value", ["s"], buckets=_BOUNDS, registry=registry)
    many = Histogram("counted", "observe_many", ["s"], buckets=_BOUNDS, registry=registry)
    return registry, one, many


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(_VALUES, min_size=1, max_size=4))
def test_observe_many_counts_what_observe_does(batches: list[list[float]]) -> None:
    """Bucket counts exactly as ``observe`` one value at a time (bounds themselves,
    zero, negatives and +Inf included), the sum to float precision, over batches."""
    registry, one, many = _histograms()
    for values in batches:
        for value in values:
            one.labels("x").observe(value)
        observe_many(many.labels("x"), values)
    samples = {
        (metric.name, sample.name[len(metric.name) :], tuple(sorted(sample.labels.items()))): (
            sample.value
        )
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }
    for (name, suffix, labels), value in samples.items():
        if name != "one_by_one":
            continue
        counted = samples[("counted", suffix, labels)]
        if suffix == "_sum":
            assert counted == pytest.approx(value, rel=1e-9, abs=1e-9)
        else:
            assert counted == value, (suffix, labels)


def test_observe_many_uses_the_client_buckets() -> None:
    """The counted path reads prometheus_client's bucket fields; if an upgrade renamed
    them, observe_many would fall back to one observe per value (correct, slower)."""
    _, _, many = _histograms()
    child = many.labels("x")
    assert all(hasattr(child, name) for name in ("_upper_bounds", "_buckets", "_sum"))
    assert list(child._upper_bounds) == [*_BOUNDS, float("inf")]

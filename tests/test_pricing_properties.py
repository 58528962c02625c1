"""Properties of the cost engine over random usage, for every priced model and modifier."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from spendgate.pricing import PriceBook, apply_cost, price_usage
from spendgate.pricing.engine import COMPONENTS
from spendgate.records import CallRecord
from spendgate.usage import Usage

COUNT_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "web_search_requests",
)


@functools.cache
def book() -> PriceBook:
    return PriceBook.load()


@functools.cache
def priced_moments() -> list[tuple[str, datetime, str]]:
    """(model, a moment inside each of its rows, speed) for every row of the built-in book."""
    moments: list[tuple[str, datetime, str]] = []
    for summary in book().models():
        for row in book().rows_for(summary.model.id):
            moments.append((summary.model.id, row.effective_from + timedelta(hours=1), row.speed))
    return moments


moment = st.deferred(lambda: st.sampled_from(priced_moments()))
tokens = st.integers(min_value=0, max_value=400_000)
modifiers = st.fixed_dictionaries(
    {
        "service_tier": st.sampled_from([None, "standard", "batch"]),
        "inference_geo": st.sampled_from([None, "global", "us"]),
    }
)


def make_usage(counts: dict[str, Any], mods: dict[str, Any], speed: str) -> Usage:
    return Usage.manual(**counts, **mods, speed=speed)


counts_strategy = st.fixed_dictionaries({name: tokens for name in COUNT_FIELDS[:5]}) | st.just(
    dict.fromkeys(COUNT_FIELDS[:5], 0)
)
searches = st.integers(min_value=0, max_value=50)


@settings(max_examples=300)
@given(
    where=moment,
    counts=counts_strategy,
    n_searches=searches,
    mods=modifiers,
    field=st.sampled_from(COUNT_FIELDS),
    extra=st.integers(min_value=1, max_value=300_000),
)
def test_cost_is_monotone_in_every_count(
    where: tuple[str, datetime, str],
    counts: dict[str, int],
    n_searches: int,
    mods: dict[str, Any],
    field: str,
    extra: int,
) -> None:
    model, at, speed = where
    base = make_usage({**counts, "web_search_requests": n_searches}, mods, speed)
    more_counts = {**counts, "web_search_requests": n_searches}
    more_counts[field] += extra
    more = make_usage(more_counts, mods, speed)
    low = price_usage(book(), model=model, usage=base, at=at)
    high = price_usage(book(), model=model, usage=more, at=at)
    assert low.status == high.status == "priced"
    assert low.total_nanousd is not None and high.total_nanousd is not None
    assert high.total_nanousd >= low.total_nanousd


def iteration_items(served: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    other = st.sampled_from(["claude-opus-4-8", "claude-haiku-4-5", "claude-sonnet-4-6", served])
    item = st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["message", "advisor_message", "fallback_message", "compaction"]
            ),
            "model": other,
            "input_tokens": tokens,
            "output_tokens": tokens,
            "cache_read_input_tokens": tokens,
            "cache_creation_input_tokens": tokens,
        }
    )
    return st.lists(item, max_size=4)


@settings(max_examples=300)
@given(
    where=moment,
    counts=counts_strategy,
    n_searches=searches,
    mods=modifiers,
    data=st.data(),
)
def test_breakdown_sums_to_the_total_exactly(
    where: tuple[str, datetime, str],
    counts: dict[str, int],
    n_searches: int,
    mods: dict[str, Any],
    data: st.DataObject,
) -> None:
    model, at, speed = where
    usage = make_usage({**counts, "web_search_requests": n_searches}, mods, speed)
    items = data.draw(iteration_items(model))
    if items and at >= datetime(2026, 5, 28, tzinfo=UTC):  # when every iteration model exists
        usage = replace(usage, raw={**usage.raw, "iterations": items})
    cost = price_usage(book(), model=model, usage=usage, at=at)
    assert cost.status == "priced"
    parts = [cost.breakdown[name] for name in COMPONENTS]
    for it in cost.breakdown.get("iterations", []):
        parts.extend(it[name] for name in COMPONENTS[:-1])
        assert it["subtotal"] == sum(it[name] for name in COMPONENTS[:-1])
    assert all(isinstance(p, int) and p >= 0 for p in parts)
    assert sum(parts) == cost.total_nanousd


@settings(max_examples=200)
@given(where=moment, counts=counts_strategy, n_searches=searches, mods=modifiers)
def test_pricing_twice_changes_nothing(
    where: tuple[str, datetime, str],
    counts: dict[str, int],
    n_searches: int,
    mods: dict[str, Any],
) -> None:
    model, at, speed = where
    usage = make_usage({**counts, "web_search_requests": n_searches}, mods, speed)
    first = price_usage(book(), model=model, usage=usage, at=at)
    second = price_usage(book(), model=model, usage=usage, at=at)
    assert first == second
    record = CallRecord(created_at=at, model=model, usage=usage)
    apply_cost(book(), record)
    once = (record.cost_nanousd, record.cache_savings_nanousd, record.cost_breakdown)
    apply_cost(book(), record)
    assert (record.cost_nanousd, record.cache_savings_nanousd, record.cost_breakdown) == once
    assert record.cost_nanousd == first.total_nanousd


@settings(max_examples=200)
@given(where=moment, counts=counts_strategy, mods=modifiers)
def test_batch_never_costs_more_and_us_never_less(
    where: tuple[str, datetime, str], counts: dict[str, int], mods: dict[str, Any]
) -> None:
    model, at, speed = where
    plain = price_usage(book(), model=model, usage=make_usage(counts, {}, speed), at=at)
    batch = price_usage(
        book(), model=model, usage=make_usage(counts, {"service_tier": "batch"}, speed), at=at
    )
    us = price_usage(
        book(), model=model, usage=make_usage(counts, {"inference_geo": "us"}, speed), at=at
    )
    assert plain.total_nanousd is not None
    assert batch.total_nanousd is not None and us.total_nanousd is not None
    assert batch.total_nanousd <= plain.total_nanousd <= us.total_nanousd


@settings(max_examples=300, deadline=None)
@given(moment, counts_strategy, modifiers, st.sampled_from([None, "standard", "fast"]))
def test_plain_usage_priced_from_a_plan_as_by_the_general_path(
    at: tuple[str, datetime, str], counts: dict[str, Any], mods: dict[str, Any], speed: str | None
) -> None:
    """A usage without iterations is priced from a cached per-model plan; an empty
    ``iterations`` list sends the same usage down the general path: same cost, same
    breakdown, keys in the same order."""
    model, when, _ = at
    usage = Usage.manual(**counts, **mods, speed=speed)
    general = Usage.from_raw({**usage.raw, "iterations": []})
    for _ in range(2):  # the second time from the plan built by the first
        fast = price_usage(book(), model=model, usage=usage, at=when)
        slow = price_usage(book(), model=model, usage=general, at=when)
        assert fast == slow
        assert list(fast.breakdown) == list(slow.breakdown)

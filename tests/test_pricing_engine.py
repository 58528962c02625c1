"""Worked examples: every expected amount is written out by hand from Anthropic's list prices.

Arithmetic used throughout: $R per million tokens is R/1,000,000 dollars per token.
The "standard usage" U is 10,000 uncached input + 2,000 output + 50,000 cache read
+ 4,000 5-minute cache write + 1,000 1-hour cache write tokens, so its cost is
0.01*input + 0.002*output + 0.05*cache_read + 0.004*write_5m + 0.001*write_1h.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from spendgate.pricing import PriceBook, apply_cost, price_usage
from spendgate.records import CallRecord
from spendgate.usage import Usage


def usd(text: str) -> int:
    """A hand-written dollar amount in nano-dollars (must be a whole number of them)."""
    nanos = Decimal(text) * 1_000_000_000
    assert nanos == nanos.to_integral_value(), text
    return int(nanos)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


U: dict[str, Any] = {
    "input_tokens": 10_000,
    "output_tokens": 2_000,
    "cache_read_input_tokens": 50_000,
    "cache_creation_5m_input_tokens": 4_000,
    "cache_creation_1h_input_tokens": 1_000,
}


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load()


# model, date, expected cost of U (by hand: see each comment)
FAMILY_CASES = [
    # Opus 5.5 $4/$20, writes $5/$8, read $0.20: .04+.04+.01+.02+.008
    ("claude-opus-5-5", "2026-10-01", "0.118"),
    # Opus 5 / 4.8 / 4.7 / 4.6 / 4.5 $5/$25, $6.25/$10, $0.50: .05+.05+.025+.025+.01
    ("claude-opus-5", "2026-08-01", "0.16"),
    ("claude-opus-4-8", "2026-06-01", "0.16"),
    ("claude-opus-4-7", "2026-05-01", "0.16"),
    ("claude-opus-4-6", "2026-03-01", "0.16"),
    ("claude-opus-4-5", "2026-01-15", "0.16"),
    ("claude-opus-4-5-20251101", "2026-01-15", "0.16"),
    # Opus 4.1 / 4 / 3 $15/$75, $18.75/$30, $1.50: .15+.15+.075+.075+.03
    ("claude-opus-4-1", "2026-01-01", "0.48"),
    ("claude-opus-4-0", "2025-12-01", "0.48"),
    ("claude-4-opus-20250514", "2025-12-01", "0.48"),
    ("claude-3-opus-latest", "2025-06-01", "0.48"),
    # Sonnet 5.5 before the cut: $2/$10, $2.50/$4, $0.20: .02+.02+.01+.01+.004
    ("claude-sonnet-5-5", "2026-09-30", "0.064"),
    # Sonnet 5.5 from 2026-10-07: read $0.10: .02+.02+.005+.01+.004
    ("claude-sonnet-5-5", "2026-10-07", "0.059"),
    ("claude-sonnet-5", "2026-08-01", "0.064"),
    # Sonnet 4.6 / 4.5 / 4 / 3.7 / 3.5 $3/$15, $3.75/$6, $0.30: .03+.03+.015+.015+.006
    ("claude-sonnet-4-6", "2026-05-01", "0.096"),
    ("claude-sonnet-4-5", "2026-06-01", "0.096"),
    ("claude-sonnet-4-5-20250929", "2026-01-01", "0.096"),
    ("claude-sonnet-4-0", "2026-01-01", "0.096"),
    ("claude-3-7-sonnet-latest", "2025-06-01", "0.096"),
    ("claude-3-5-sonnet-20241022", "2025-01-01", "0.096"),
    ("claude-3-5-sonnet-20240620", "2024-08-01", "0.096"),
    # Haiku 5.5, prompt 65,000 <= 100K: $0.10/$0.50, $0.125/$0.20, $0.01:
    # .001+.001+.0005+.0005+.0002
    ("claude-haiku-5-5", "2026-11-01", "0.0032"),
    # Haiku 4.5 $1/$5, $1.25/$2, $0.10: .01+.01+.005+.005+.002
    ("claude-haiku-4-5", "2026-01-01", "0.032"),
    # Haiku 3.5 $0.80/$4, $1/$1.60, $0.08: .008+.008+.004+.004+.0016
    ("claude-3-5-haiku-latest", "2025-06-01", "0.0256"),
    # Haiku 3 $0.25/$1.25, $0.30/$0.50, $0.03: .0025+.0025+.0015+.0012+.0005
    ("claude-3-haiku-20240307", "2025-06-01", "0.0082"),
    # Fable / Mythos 5 $10/$50, $12.50/$20, $1: .1+.1+.05+.05+.02
    ("claude-fable-5", "2026-07-01", "0.32"),
    ("claude-mythos-5", "2026-07-01", "0.32"),
    # Fable / Mythos 5.1: read $0.25: .1+.1+.0125+.05+.02
    ("claude-fable-5-1", "2026-10-01", "0.2825"),
    ("claude-mythos-5-1", "2026-10-01", "0.2825"),
    # Fable / Mythos 5.2 $8/$40, $10/$16, $0.20: .08+.08+.01+.04+.016
    ("claude-fable-5-2", "2026-11-20", "0.226"),
    ("claude-mythos-5-2", "2026-11-20", "0.226"),
]


@pytest.mark.parametrize(("model", "day", "expected"), FAMILY_CASES)
def test_every_model_prices_the_standard_usage(
    book: PriceBook, model: str, day: str, expected: str
) -> None:
    cost = price_usage(book, model=model, usage=Usage.manual(**U), at=when(day))
    assert cost.status == "priced"
    assert cost.total_nanousd == usd(expected)


def test_breakdown_and_cache_savings_of_opus_4_5(book: PriceBook) -> None:
    cost = price_usage(
        book, model="claude-opus-4-5", usage=Usage.manual(**U), at=when("2026-01-15")
    )
    b = cost.breakdown
    assert b["input"] == usd("0.05")  # 10,000 * $5
    assert b["output"] == usd("0.05")  # 2,000 * $25
    assert b["cache_read"] == usd("0.025")  # 50,000 * $0.50
    assert b["cache_write_5m"] == usd("0.025")  # 4,000 * $6.25
    assert b["cache_write_1h"] == usd("0.01")  # 1,000 * $10
    assert b["web_search"] == 0
    assert b["model_priced"] == "claude-opus-4-5-20251101"
    assert b["tier"] == "standard"
    assert b["modifiers"] == []
    assert b["price_book_version"] == book.version == cost.book_version
    # 55,000 cached tokens at $5 = .275, they cost .025+.025+.01 = .06
    assert cost.cache_savings_nanousd == usd("0.215")
    assert cost.total_usd == Decimal("0.16")
    json.dumps(b)


def test_cache_savings_after_the_sonnet_5_5_cache_read_cut(book: PriceBook) -> None:
    cost = price_usage(
        book, model="claude-sonnet-5-5", usage=Usage.manual(**U), at=when("2026-11-01")
    )
    # 55,000 at $2 = .11, minus .005 + .01 + .004
    assert cost.cache_savings_nanousd == usd("0.091")
    assert cost.breakdown["unconfirmed"] is True


def test_cache_writes_without_reuse_are_negative_savings(book: PriceBook) -> None:
    usage = Usage.manual(input_tokens=100, cache_creation_5m_input_tokens=10_000)
    cost = price_usage(book, model="claude-haiku-4-5", usage=usage, at=when("2026-01-01"))
    # 10,000 at $1 = .01 uncached, cost 10,000 at $1.25 = .0125
    assert cost.cache_savings_nanousd == usd("-0.0025")


def test_sonnet_5_5_cache_read_changes_at_midnight_utc(book: PriceBook) -> None:
    usage = Usage.manual(cache_read_input_tokens=1_000_000)
    before = price_usage(
        book, model="claude-sonnet-5-5", usage=usage, at=when("2026-10-06T23:59:59")
    )
    after = price_usage(
        book, model="claude-sonnet-5-5", usage=usage, at=when("2026-10-07T00:00:00")
    )
    assert (before.total_nanousd, after.total_nanousd) == (usd("0.20"), usd("0.10"))


# model, date, usage, expected total, modifiers that must be listed
MODIFIER_CASES: list[tuple[str, str, dict[str, Any], str, list[str]]] = [
    # Haiku 5.5 prompt 110,000 > 100K: every token at $0.50/$2.50, read $0.05:
    # 90,000*.5 = .045, 20,000*.05 = .001, 1,000*2.5 = .0025
    (
        "claude-haiku-5-5",
        "2026-11-01",
        {"input_tokens": 90_000, "cache_read_input_tokens": 20_000, "output_tokens": 1_000},
        "0.0485",
        ["tier:prompt_over_100k"],
    ),
    # cache writes count toward the 100K: 90,000+5,000+6,000 = 101,000;
    # .045 + 5,000*.625 (.003125) + 6,000*1 (.006) + .0025
    (
        "claude-haiku-5-5",
        "2026-11-01",
        {
            "input_tokens": 90_000,
            "cache_creation_5m_input_tokens": 5_000,
            "cache_creation_1h_input_tokens": 6_000,
            "output_tokens": 1_000,
        },
        "0.056625",
        ["tier:prompt_over_100k"],
    ),
    # exactly 100,000 is not over: 100,000*.1 + 1,000*.5
    (
        "claude-haiku-5-5",
        "2026-11-01",
        {"input_tokens": 100_000, "output_tokens": 1_000},
        "0.0105",
        [],
    ),
    # Haiku 5.5 tier with US inference: .0485 * 1.1
    (
        "claude-haiku-5-5",
        "2026-11-01",
        {
            "input_tokens": 90_000,
            "cache_read_input_tokens": 20_000,
            "output_tokens": 1_000,
            "inference_geo": "us",
        },
        "0.05335",
        ["tier:prompt_over_100k", "inference_geo_us"],
    ),
    # Sonnet 4.5 long context before 2026-03-31, prompt 210,000 > 200K:
    # 150,000*$6 = .9, 60,000*$0.60 = .036, 10,000*$22.50 = .225
    (
        "claude-sonnet-4-5",
        "2026-02-01",
        {"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 10_000},
        "1.161",
        ["tier:long_context_over_200k"],
    ),
    # the same request from 2026-03-31 has no premium: .45 + .018 + .15
    (
        "claude-sonnet-4-5",
        "2026-03-31",
        {"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 10_000},
        "0.618",
        [],
    ),
    # Sonnet 4, 190,000 input + 11,000 1h writes = 201,000: 1.14 + 11,000*$12 (.132) + 1,000*$22.50
    (
        "claude-sonnet-4-20250514",
        "2025-10-01",
        {"input_tokens": 190_000, "cache_creation_1h_input_tokens": 11_000, "output_tokens": 1_000},
        "1.2945",
        ["tier:long_context_over_200k"],
    ),
    # Sonnet 4 at exactly 200,000: standard $3
    ("claude-sonnet-4-0", "2025-10-01", {"input_tokens": 200_000}, "0.6", []),
    # long context with batch: 1.161 / 2
    (
        "claude-sonnet-4-5",
        "2026-02-01",
        {
            "input_tokens": 150_000,
            "cache_read_input_tokens": 60_000,
            "output_tokens": 10_000,
            "service_tier": "batch",
        },
        "0.5805",
        ["tier:long_context_over_200k", "batch"],
    ),
    # batch halves every component, caching included: U on Opus 4.5 .16 / 2
    ("claude-opus-4-5", "2026-01-15", {**U, "service_tier": "batch"}, "0.08", ["batch"]),
    # explicit standard tier changes nothing
    ("claude-opus-4-5", "2026-01-15", {**U, "service_tier": "standard"}, "0.16", []),
    # US-only inference on a 4.6 model: .16 * 1.1
    ("claude-opus-4-6", "2026-03-01", {**U, "inference_geo": "us"}, "0.176", ["inference_geo_us"]),
    # US + batch on Sonnet 4.6: .096 * .5 * 1.1
    (
        "claude-sonnet-4-6",
        "2026-05-01",
        {**U, "inference_geo": "us", "service_tier": "batch"},
        "0.0528",
        ["batch", "inference_geo_us"],
    ),
    # global routing is standard pricing
    ("claude-opus-4-6", "2026-03-01", {**U, "inference_geo": "global"}, "0.16", []),
    # Haiku 4.5 does not support inference_geo: standard price, noted
    ("claude-haiku-4-5", "2026-01-01", {**U, "inference_geo": "us"}, "0.032", []),
    # fast Opus 4.8 $10/$50, writes $12.50/$20, read $1: .1+.1+.05+.05+.02
    ("claude-opus-4-8", "2026-08-01", {**U, "speed": "fast"}, "0.32", ["fast"]),
    # fast Opus 5.5 $8/$40, writes $10/$16, read $0.40 (0.05x): .08+.08+.02+.04+.016
    ("claude-opus-5-5", "2026-10-01", {**U, "speed": "fast"}, "0.236", ["fast"]),
    # fast Opus 5 with US inference: .32 * 1.1
    (
        "claude-opus-5",
        "2026-08-01",
        {**U, "speed": "fast", "inference_geo": "us"},
        "0.352",
        ["fast", "inference_geo_us"],
    ),
    # fast Opus 4.6 at launch, 6x: $30/$150, $37.50/$60, $3: .3+.3+.15+.15+.06
    ("claude-opus-4-6", "2026-03-01", {**U, "speed": "fast"}, "0.96", ["fast"]),
    ("claude-opus-4-7", "2026-05-01", {**U, "speed": "fast"}, "0.96", ["fast"]),
    # fast Opus 4.6 now runs and bills at standard rates
    ("claude-opus-4-6", "2026-10-15", {**U, "speed": "fast"}, "0.16", []),
    # web search $0.01 each on top of tokens: 1,000*$3 + 100*$15 + 3 searches
    (
        "claude-sonnet-4-5",
        "2026-06-01",
        {"input_tokens": 1_000, "output_tokens": 100, "web_search_requests": 3},
        "0.0345",
        [],
    ),
    # batch halves tokens, not searches: (.003 + .0015) / 2 + .02
    (
        "claude-sonnet-4-5",
        "2026-06-01",
        {
            "input_tokens": 1_000,
            "output_tokens": 100,
            "web_search_requests": 2,
            "service_tier": "batch",
        },
        "0.02225",
        ["batch"],
    ),
    # US inference multiplies tokens, not searches: (1,000*$4 + 100*$20) * 1.1 + .01
    (
        "claude-opus-5-5",
        "2026-10-01",
        {
            "input_tokens": 1_000,
            "output_tokens": 100,
            "web_search_requests": 1,
            "inference_geo": "us",
        },
        "0.0166",
        ["inference_geo_us"],
    ),
    # rounding: Haiku 5.5, 3 cache-read tokens, batch + US:
    # 3 * $0.01/M * .55 = 16.5 nano -> 16 (even)
    (
        "claude-haiku-5-5",
        "2026-11-01",
        {"cache_read_input_tokens": 3, "service_tier": "batch", "inference_geo": "us"},
        "0.000000016",
        ["batch", "inference_geo_us"],
    ),
    # 1 token: 5.5 nano -> 6 (even)
    (
        "claude-haiku-5-5",
        "2026-11-01",
        {"cache_read_input_tokens": 1, "service_tier": "batch", "inference_geo": "us"},
        "0.000000006",
        ["batch", "inference_geo_us"],
    ),
]


@pytest.mark.parametrize(("model", "day", "fields", "expected", "modifiers"), MODIFIER_CASES)
def test_modifiers(
    book: PriceBook,
    model: str,
    day: str,
    fields: dict[str, Any],
    expected: str,
    modifiers: list[str],
) -> None:
    cost = price_usage(book, model=model, usage=Usage.manual(**fields), at=when(day))
    assert cost.status == "priced"
    assert cost.total_nanousd == usd(expected)
    assert cost.breakdown["modifiers"] == modifiers


def test_web_search_component_is_separate(book: PriceBook) -> None:
    usage = Usage.manual(input_tokens=1_000, output_tokens=100, web_search_requests=3)
    cost = price_usage(book, model="claude-sonnet-4-5", usage=usage, at=when("2026-06-01"))
    assert cost.breakdown["web_search"] == usd("0.03")


def test_web_fetch_costs_tokens_only(book: PriceBook) -> None:
    usage = Usage.from_raw(
        {"input_tokens": 1_000, "output_tokens": 100, "server_tool_use": {"web_fetch_requests": 5}}
    )
    cost = price_usage(book, model="claude-sonnet-4-5", usage=usage, at=when("2026-06-01"))
    assert cost.total_nanousd == usd("0.0045")  # .003 + .0015


def test_code_execution_is_noted_not_priced(book: PriceBook) -> None:
    usage = Usage.from_raw(
        {
            "input_tokens": 1_000,
            "output_tokens": 100,
            "server_tool_use": {"code_execution_requests": 1},
        }
    )
    cost = price_usage(book, model="claude-sonnet-4-5", usage=usage, at=when("2026-06-01"))
    assert cost.total_nanousd == usd("0.0045")
    assert "code_execution_not_priced" in cost.breakdown["notes"]


def test_inference_geo_on_an_unsupported_model_is_noted(book: PriceBook) -> None:
    usage = Usage.manual(**{**U, "inference_geo": "us"})
    cost = price_usage(book, model="claude-haiku-4-5", usage=usage, at=when("2026-01-01"))
    assert cost.breakdown["notes"] == ["inference_geo_us_not_supported:claude-haiku-4-5-20251001"]


def test_fast_on_a_model_without_fast_rows_is_standard_and_noted(book: PriceBook) -> None:
    usage = Usage.manual(**{**U, "speed": "fast"})
    cost = price_usage(book, model="claude-opus-4-6", usage=usage, at=when("2026-10-15"))
    assert cost.breakdown["speed"] == "standard"
    assert cost.breakdown["notes"] == ["fast_priced_as_standard:claude-opus-4-6"]


def test_fast_6x_rows_are_flagged_unconfirmed(book: PriceBook) -> None:
    usage = Usage.manual(**{**U, "speed": "fast"})
    cost = price_usage(book, model="claude-opus-4-6", usage=usage, at=when("2026-03-01"))
    assert cost.breakdown["unconfirmed"] is True


@pytest.mark.parametrize("tier", ["priority", "flex"])
def test_non_list_service_tiers_are_not_list_priced(book: PriceBook, tier: str) -> None:
    usage = Usage.manual(**{**U, "service_tier": tier})
    cost = price_usage(book, model="claude-opus-4-6", usage=usage, at=when("2026-03-01"))
    assert cost.status == "not_list_priced"
    assert cost.total_nanousd is None
    assert cost.cache_savings_nanousd is None
    assert "reason" in cost.breakdown


def test_refusal_without_output_costs_nothing(book: PriceBook) -> None:
    usage = Usage.manual(input_tokens=5_000)
    cost = price_usage(
        book, model="claude-fable-5", usage=usage, at=when("2026-07-01"), refusal=True
    )
    assert (cost.status, cost.total_nanousd) == ("priced", 0)
    assert cost.breakdown["modifiers"] == ["refusal_not_billed"]


def test_not_billable_calls_cost_nothing(book: PriceBook) -> None:
    cost = price_usage(
        book, model="claude-fable-5", usage=Usage.manual(**U), at=when("2026-07-01"), billable=False
    )
    assert (cost.status, cost.total_nanousd, cost.cache_savings_nanousd) == ("not_billable", 0, 0)


@pytest.mark.parametrize(
    ("model", "day"),
    [
        ("claude-unknown-9", "2026-11-01"),
        (None, "2026-11-01"),
        ("claude-mythos-preview", "2026-11-01"),  # known, price UNCONFIRMED
        ("claude-opus-5-5", "2026-01-01"),  # before release
    ],
)
def test_unpriced_models_never_raise(book: PriceBook, model: str | None, day: str) -> None:
    cost = price_usage(book, model=model, usage=Usage.manual(**U), at=when(day))
    assert (cost.status, cost.total_nanousd, cost.cache_savings_nanousd) == ("unpriced", None, None)
    assert "price file" in cost.breakdown["reason"]


def test_naive_datetimes_are_utc(book: PriceBook) -> None:
    usage = Usage.manual(cache_read_input_tokens=1_000_000)
    cost = price_usage(book, model="claude-sonnet-5-5", usage=usage, at=datetime(2026, 10, 7))
    assert cost.total_nanousd == usd("0.10")


# -- per-iteration pricing ---------------------------------------------------------------


def iteration(kind: str, model: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "type": kind,
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }


def with_iterations(input_tokens: int, output_tokens: int, items: list[dict[str, Any]]) -> Usage:
    return Usage.from_raw(
        {"input_tokens": input_tokens, "output_tokens": output_tokens, "iterations": items}
    )


def test_advisor_iteration_included_in_top_level_is_split_out(book: PriceBook) -> None:
    usage = with_iterations(
        12_000,
        3_000,
        [
            iteration("message", "claude-sonnet-4-6", 10_000, 2_500),
            iteration("advisor_message", "claude-opus-4-8", 2_000, 500),
        ],
    )
    cost = price_usage(book, model="claude-sonnet-4-6", usage=usage, at=when("2026-08-01"))
    b = cost.breakdown
    # Sonnet 4.6 remainder: 10,000*$3 + 2,500*$15 = .03 + .0375
    assert (b["input"], b["output"]) == (usd("0.03"), usd("0.0375"))
    # Opus 4.8 advisor: 2,000*$5 + 500*$25 = .01 + .0125
    [advisor] = b["iterations"]
    assert (advisor["input"], advisor["output"]) == (usd("0.01"), usd("0.0125"))
    assert advisor["model_priced"] == "claude-opus-4-8"
    assert cost.total_nanousd == usd("0.09")
    assert "iterations_included" in b["modifiers"]


def test_advisor_iteration_not_in_top_level_is_added(book: PriceBook) -> None:
    usage = with_iterations(
        10_000, 2_500, [iteration("advisor_message", "claude-opus-4-8", 2_000, 500)]
    )
    cost = price_usage(book, model="claude-sonnet-4-6", usage=usage, at=when("2026-08-01"))
    assert cost.total_nanousd == usd("0.09")  # .0675 + .0225
    assert "iterations_added" in cost.breakdown["modifiers"]


def test_other_model_message_iteration_is_priced_at_its_own_rates(book: PriceBook) -> None:
    usage = with_iterations(2_000, 200, [iteration("message", "claude-opus-4-8", 1_000, 100)])
    cost = price_usage(book, model="claude-haiku-4-5", usage=usage, at=when("2026-08-01"))
    # Haiku 4.5: 2,000*$1 + 200*$5 = .003; Opus 4.8: 1,000*$5 + 100*$25 = .0075
    assert cost.total_nanousd == usd("0.0105")


def test_fallback_the_refused_attempt_without_output_is_not_billed(book: PriceBook) -> None:
    usage = with_iterations(
        10_000,
        1_000,
        [
            iteration("message", "claude-fable-5-2", 5_000, 0),
            iteration("fallback_message", "claude-sonnet-5-5", 5_000, 1_000),
        ],
    )
    cost = price_usage(book, model="claude-sonnet-5-5", usage=usage, at=when("2026-11-15"))
    # only the Sonnet 5.5 retry: 5,000*$2 + 1,000*$10
    assert cost.total_nanousd == usd("0.02")
    assert "refused_iteration_not_billed:claude-fable-5-2" in cost.breakdown["notes"]


def test_iterations_of_the_served_model_only_change_nothing(book: PriceBook) -> None:
    usage = with_iterations(
        12_000,
        3_000,
        [
            iteration("message", "claude-sonnet-4-6", 10_000, 2_500),
            {"type": "compaction", "input_tokens": 2_000, "output_tokens": 500},
        ],
    )
    cost = price_usage(book, model="claude-sonnet-4-6", usage=usage, at=when("2026-08-01"))
    assert cost.total_nanousd == usd("0.081")  # 12,000*$3 + 3,000*$15
    assert "iterations" not in cost.breakdown


def test_an_iteration_of_an_unknown_model_leaves_the_call_unpriced(book: PriceBook) -> None:
    usage = with_iterations(1_000, 100, [iteration("advisor_message", "claude-nope", 10, 1)])
    cost = price_usage(book, model="claude-sonnet-4-6", usage=usage, at=when("2026-08-01"))
    assert cost.status == "unpriced"
    assert "claude-nope" in cost.breakdown["reason"]


# -- apply_cost ----------------------------------------------------------------------------


def test_apply_cost_fills_the_record(book: PriceBook) -> None:
    record = CallRecord(
        created_at=when("2026-01-15"), model="claude-opus-4-5", usage=Usage.manual(**U)
    )
    apply_cost(book, record)
    assert record.cost_nanousd == usd("0.16")
    assert record.cache_savings_nanousd == usd("0.215")
    assert record.pricing_status == "priced"
    assert record.price_book_version == book.version
    assert record.cost_breakdown is not None
    assert record.cost_breakdown["model_priced"] == "claude-opus-4-5-20251101"


def test_apply_cost_falls_back_to_the_requested_model(book: PriceBook) -> None:
    record = CallRecord(
        created_at=when("2026-01-15"), model_requested="claude-haiku-4-5", usage=Usage.manual(**U)
    )
    apply_cost(book, record)
    assert record.cost_nanousd == usd("0.032")


def test_apply_cost_sees_refusals_and_unbillable_calls(book: PriceBook) -> None:
    refused = CallRecord(
        created_at=when("2026-07-01"),
        model="claude-fable-5",
        stop_reason="refusal",
        usage=Usage.manual(input_tokens=5_000),
    )
    counted = CallRecord(
        created_at=when("2026-07-01"),
        model="claude-fable-5",
        endpoint="/v1/messages/count_tokens",
        billable=False,
        usage=Usage.manual(input_tokens=5_000),
    )
    apply_cost(book, refused)
    apply_cost(book, counted)
    assert (refused.pricing_status, refused.cost_nanousd) == ("priced", 0)
    assert (counted.pricing_status, counted.cost_nanousd) == ("not_billable", 0)


def test_apply_cost_keeps_unknown_models_unpriced(book: PriceBook) -> None:
    record = CallRecord(created_at=when("2026-07-01"), model="gpt-9", usage=Usage.manual(**U))
    apply_cost(book, record)
    assert (record.pricing_status, record.cost_nanousd) == ("unpriced", None)


def test_usage_reads_any_mapping_and_counts_odd_values_as_zero() -> None:
    from types import MappingProxyType

    raw = {
        "input_tokens": 7,
        "output_tokens": True,  # a bool is not a count
        "cache_read_input_tokens": -3,
        "cache_creation_input_tokens": 10,
        "cache_creation": MappingProxyType({"ephemeral_1h_input_tokens": 4}),
        "server_tool_use": MappingProxyType({"web_search_requests": 2}),
    }
    for given in (raw, MappingProxyType(raw)):
        usage = Usage.from_raw(given)
        assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (7, 0, 0)
        assert usage.cache_creation_1h_input_tokens == 4
        assert usage.cache_creation_5m_input_tokens == 6  # the rest of the total
        assert usage.web_search_requests == 2

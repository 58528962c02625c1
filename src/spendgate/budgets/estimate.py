"""The worst-case cost of a call, reserved against budgets before it is forwarded.

Input: the request body's length in bytes / 3 tokens (English text runs about
4 bytes per token; the estimate must not come in low for code or non-Latin
scripts), priced at the model's most expensive input-class rate (a 1-hour
cache write, 2x the input rate). That is a bound for ordinary prompts; images
and documents (base64, many bytes per token) come in far above their real cost.
Output: ``max_tokens`` at the output rate. Of every row in effect (standard and
fast speed, long-context tier) the highest rate is used; x1.1 when the body
asks for ``inference_geo``. Discounts are ignored (they only lower the cost).

A model the price book does not know is reserved at the most expensive rates in
the book, so an unknown model cannot slip past a budget; settled, such a call
(unpriced) is charged its reservation.

Not estimated: server-tool fees (web search), which settle at their real cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import NamedTuple

from spendgate.money import NANOS_PER_USD
from spendgate.pricing import PriceBook, PriceRow, Rates

BYTES_PER_TOKEN = 3
# Anthropic requires max_tokens; without it the call fails upstream, but be safe.
MISSING_MAX_TOKENS = 64_000
GEO_FACTOR = Decimal("1.1")
_MTOK = Decimal(1_000_000)
# Dollars per million tokens to nano-dollars per token.
_NANOS_PER_TOKEN = Decimal(NANOS_PER_USD) / _MTOK
_GEO_TENTHS = 11  # GEO_FACTOR in tenths


class Estimate(NamedTuple):
    """A reservation amount and how it was reached (one per budgeted call: a named
    tuple costs a third of a frozen dataclass to build)."""

    input_tokens: int
    output_tokens: int
    nanousd: int


def _rates_of(row: PriceRow) -> list[Rates]:
    return [row.rates] if row.tier is None else [row.rates, row.tier.rates]


def _most_expensive(book: PriceBook, at: datetime) -> list[Rates]:
    """For a model the book does not know: the most expensive rates it has at ``at``."""
    every: list[Rates] = []
    for summary in book.models(at):
        for row in (summary.standard, summary.fast):
            if row is not None:
                every.extend(_rates_of(row))
    return every


@dataclass(frozen=True)
class _Rated:
    """The highest input-class and output rates of a model's rows in effect (None: no
    rates at all), and the same as whole nano-dollars per token when they are whole."""

    rows: tuple[PriceRow | None, PriceRow | None]
    input_rate: Decimal | None
    output_rate: Decimal | None
    whole: tuple[int, int] | None


def _rated(rows: tuple[PriceRow | None, PriceRow | None], rates: list[Rates]) -> _Rated:
    if not rates:
        return _Rated(rows, None, None, None)
    input_rate = max(max(r.input, r.cache_write_5m, r.cache_write_1h) for r in rates)
    output_rate = max(r.output for r in rates)
    per_input, per_output = input_rate * _NANOS_PER_TOKEN, output_rate * _NANOS_PER_TOKEN
    whole = None
    if per_input == int(per_input) and per_output == int(per_output):
        whole = (int(per_input), int(per_output))
    return _Rated(rows, input_rate, output_rate, whole)


def worst_case(
    book: PriceBook,
    *,
    model: str | None,
    body: bytes | None,
    max_tokens: int | None,
    at: datetime,
) -> Estimate:
    """The most a call can cost, in nano-dollars (rounded up)."""
    size = len(body or b"")
    input_tokens = -(-size // BYTES_PER_TOKEN)
    output_tokens = max_tokens if max_tokens is not None and max_tokens >= 0 else MISSING_MAX_TOKENS
    geo = body is not None and b'"inference_geo"' in body
    # The rates depend only on the price rows in effect: kept with the book per model
    # and rows (it runs on the event loop for every budgeted call).
    rows = (book.row_at(model, at, "standard"), book.row_at(model, at, "fast"))
    if (
        rows[0] is None and rows[1] is None
    ):  # unknown model: depends on every row in effect at ``at``
        rated = _rated(rows, _most_expensive(book, at))
    else:
        key = ("worst_case", model, id(rows[0]), id(rows[1]))
        kept: _Rated | None = book.plans.get(key)
        if kept is None or kept.rows[0] is not rows[0] or kept.rows[1] is not rows[1]:
            found = [rates for row in rows if row is not None for rates in _rates_of(row)]
            kept = book.plans[key] = _rated(rows, found)
        rated = kept
    if rated.input_rate is None:
        return Estimate(input_tokens, output_tokens, 0)
    # List prices per million tokens have at most three decimals: a token then costs
    # a whole number of nano-dollars and the estimate is integer arithmetic. Decimal
    # is the fallback.
    if rated.whole is not None:
        per_input, per_output = rated.whole
        whole = input_tokens * per_input + output_tokens * per_output
        if geo:
            whole = -(-whole * _GEO_TENTHS // 10)
        return Estimate(input_tokens, output_tokens, whole)
    input_rate, output_rate = rated.input_rate, rated.output_rate
    assert output_rate is not None
    usd = (input_tokens * input_rate + output_tokens * output_rate) / _MTOK
    if geo:
        usd *= GEO_FACTOR
    nanos = (usd * NANOS_PER_USD).to_integral_value(rounding=ROUND_CEILING)
    return Estimate(input_tokens, output_tokens, int(nanos))

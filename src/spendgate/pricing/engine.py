"""The cost rules: from a usage object, a model and a moment to an exact cost.

Arithmetic is :class:`~decimal.Decimal` throughout. Each component (input,
output, cache writes, cache read, web search, and the same per iteration) is
computed exactly, then rounded once, half to even, to whole nano-dollars; the
total is the sum of the rounded components, so a breakdown always adds up to
its total. The rules and their sources are in ``docs/pricing.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from functools import lru_cache
from typing import Any, Literal, NamedTuple, cast

from spendgate.money import NANOS_PER_USD, from_nanos, to_nanos
from spendgate.pricing.book import PriceBook
from spendgate.pricing.rows import MTOK, PriceRow, Rates
from spendgate.records import CallRecord
from spendgate.usage import Usage

CostStatus = Literal["priced", "unpriced", "not_billable", "not_list_priced"]
TOKEN_COMPONENTS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
COMPONENTS = (*TOKEN_COMPONENTS, "web_search")
BATCH_FACTOR = Decimal("0.5")
US_GEO_FACTOR = Decimal("1.1")
# Iteration types that are inferences of a model (compaction is not).
_MODEL_ITERATIONS = ("message", "fallback_message", "advisor_message")


class Cost(NamedTuple):
    """The priced outcome of one call; money in integer nano-dollars (one per priced
    call: a named tuple costs a third of a frozen dataclass to build)."""

    status: CostStatus
    total_nanousd: int | None
    cache_savings_nanousd: int | None
    breakdown: dict[str, Any]
    book_version: str

    @property
    def total_usd(self) -> Decimal | None:
        """The total in dollars (exact), or ``None`` when there is no list price."""
        return None if self.total_nanousd is None else from_nanos(self.total_nanousd)


@dataclass(frozen=True, slots=True)
class _Counts:
    """Token counts by billing class."""

    input: int = 0
    output: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0

    @classmethod
    def of(cls, usage: Usage) -> _Counts:
        return cls(
            input=usage.input_tokens,
            output=usage.output_tokens,
            cache_write_5m=usage.cache_creation_5m_input_tokens,
            cache_write_1h=usage.cache_creation_1h_input_tokens,
            cache_read=usage.cache_read_input_tokens,
        )

    @property
    def prompt(self) -> int:
        """Uncached input + cache reads + cache writes: what prompt-length tiers look at."""
        return self.input + self.cache_read + self.cache_write_5m + self.cache_write_1h

    def totals(self) -> tuple[int, int, int, int]:
        """The counts the API reports at top level (cache writes as one number)."""
        return (self.input, self.output, self.cache_read, self.cache_write_5m + self.cache_write_1h)

    def plus(self, other: _Counts) -> _Counts:
        return _Counts(*(a + b for a, b in zip(self._values(), other._values(), strict=True)))

    def minus(self, other: _Counts) -> _Counts:
        """Field by field, never below zero."""
        return _Counts(
            *(max(a - b, 0) for a, b in zip(self._values(), other._values(), strict=True))
        )

    def _values(self) -> tuple[int, int, int, int, int]:
        return (self.input, self.output, self.cache_write_5m, self.cache_write_1h, self.cache_read)


@dataclass(slots=True)
class _Scope:
    """What applies to every part of one call."""

    book: PriceBook
    at: datetime
    batch: bool
    inference_geo: str | None
    modifiers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unconfirmed: bool = False

    def modifier(self, name: str) -> None:
        if name not in self.modifiers:
            self.modifiers.append(name)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@dataclass(frozen=True, slots=True)
class _Priced:
    """One part of a call (the served model's share, or one iteration) priced."""

    model: str
    components: dict[str, int]
    savings: int
    factor: Decimal
    row: PriceRow
    rates: Rates
    tier: str


def _nanos(quantity: int, price: Decimal, factor: Decimal, per: Decimal = MTOK) -> int:
    """``quantity * price / per * factor``, exact, rounded once to whole nano-dollars."""
    unit = _whole_nanos_per_unit(price, factor, per)
    if unit is not None:
        return quantity * unit  # exact: nothing to round
    with localcontext() as ctx:
        ctx.prec = 80  # ample: every step is a product or a division by a power of ten
        return to_nanos(Decimal(quantity) * price / per * factor)


@lru_cache(maxsize=4096)
def _whole_nanos_per_unit(price: Decimal, factor: Decimal, per: Decimal) -> int | None:
    """``price * factor / per`` in nano-dollars when it is a whole number, else None.

    List prices per million tokens have at most three decimals, so a token costs a
    whole number of nano-dollars and the product needs no Decimal arithmetic per
    call (pricing runs for every recorded call). A pure function of its arguments.
    """
    with localcontext() as ctx:
        ctx.prec = 80
        exact = price * factor / per * NANOS_PER_USD
        return int(exact) if exact == exact.to_integral_value() else None


def _row(scope: _Scope, model: str, speed: str | None) -> PriceRow | None:
    if speed == "fast":
        row = scope.book.row_at(model, scope.at, "fast")
        if row is not None:
            scope.modifier("fast")
            return row
        # Opus 4.6 now answers `speed: "fast"` at standard speed and standard rates;
        # elsewhere Anthropic rejects the combination, so standard rates are the best guess.
        scope.note(f"fast_priced_as_standard:{model}")
    return scope.book.row_at(model, scope.at)


def _factor(scope: _Scope, model: str) -> Decimal:
    """Batch, data residency and negotiated discount, multiplied together."""
    factor = Decimal(1)
    if scope.batch:
        factor *= BATCH_FACTOR
        scope.modifier("batch")
    geo = scope.inference_geo
    if geo == "us":
        entry = scope.book.model(model)
        if entry is not None and entry.inference_geo:
            factor *= US_GEO_FACTOR
            scope.modifier("inference_geo_us")
        else:
            scope.note(f"inference_geo_us_not_supported:{model}")
    elif geo not in (None, "global"):
        scope.note(f"inference_geo_{geo}_priced_as_global")
    discount = scope.book.discount_at(model, scope.at)
    if discount is not None:
        factor *= discount.factor
        scope.modifier(discount.label)
    return factor


def _price_part(scope: _Scope, model: str, counts: _Counts, speed: str | None) -> _Priced | None:
    row = _row(scope, model, speed)
    if row is None:
        return None
    rates, tier = row.rates_for(counts.prompt)
    if tier != "standard":
        scope.modifier(f"tier:{tier}")
    scope.unconfirmed = scope.unconfirmed or row.unconfirmed
    factor = _factor(scope, model)
    components = {
        "input": _nanos(counts.input, rates.input, factor),
        "output": _nanos(counts.output, rates.output, factor),
        "cache_write_5m": _nanos(counts.cache_write_5m, rates.cache_write_5m, factor),
        "cache_write_1h": _nanos(counts.cache_write_1h, rates.cache_write_1h, factor),
        "cache_read": _nanos(counts.cache_read, rates.cache_read, factor),
    }
    cached_tokens = counts.cache_read + counts.cache_write_5m + counts.cache_write_1h
    cache_cost = sum(components[k] for k in ("cache_write_5m", "cache_write_1h", "cache_read"))
    savings = _nanos(cached_tokens, rates.input, factor) - cache_cost
    return _Priced(model, components, savings, factor, row, rates, tier)


@dataclass(frozen=True, slots=True)
class _Iteration:
    """An ``iterations`` entry served by a model other than the top-level one."""

    kind: str
    model: str
    counts: _Counts
    speed: str | None
    billed: bool


def _foreign_iterations(
    book: PriceBook, served: str, usage: Usage
) -> tuple[list[_Iteration], bool]:
    """Iterations served by another model, and whether top-level counts include them.

    Top-level counts are taken to include the iterations when the iterations add
    up to them exactly; otherwise the other models' iterations are extra. In a
    fallback, the other model's ``message`` with no output is the refused attempt,
    which Anthropic does not bill (refusals before output are free).
    """
    raw = usage.raw.get("iterations") if isinstance(usage.raw, Mapping) else None
    if not isinstance(raw, list):
        return [], False
    items = [item for item in raw if isinstance(item, Mapping)]
    fallback = any(item.get("type") == "fallback_message" for item in items)
    foreign: list[_Iteration] = []
    for item in items:
        name, kind, speed = item.get("model"), item.get("type"), item.get("speed")
        if kind not in _MODEL_ITERATIONS or not isinstance(name, str) or not name:
            continue
        if (book.resolve(name) or name) == served:
            continue
        counts = _Counts.of(Usage.from_raw(item))
        refused = fallback and kind == "message" and counts.output == 0
        speed = speed if isinstance(speed, str) else None
        foreign.append(_Iteration(str(kind), name, counts, speed, billed=not refused))
    if not foreign:
        return [], False
    summed = _Counts()
    for item in items:
        summed = summed.plus(_Counts.of(Usage.from_raw(item)))
    return foreign, summed.totals() == _Counts.of(usage).totals()


def _zero(book: PriceBook, status: CostStatus, model: str | None, modifiers: list[str]) -> Cost:
    breakdown: dict[str, Any] = dict.fromkeys(COMPONENTS, 0)
    breakdown.update(
        modifiers=modifiers,
        notes=[],
        model_priced=book.resolve(model) or model,
        tier=None,
        price_book_version=book.version,
    )
    return Cost(status, 0, 0, breakdown, book.version)


def _no_price(book: PriceBook, status: CostStatus, model: str | None, reason: str) -> Cost:
    breakdown: dict[str, Any] = {
        "reason": reason,
        "model": model,
        "model_priced": None,
        "modifiers": [],
        "notes": [],
        "price_book_version": book.version,
    }
    return Cost(status, None, None, breakdown, book.version)


def _unpriced_reason(model: str, at: datetime) -> str:
    return (
        f"no price for {model!r} at {at.date()}; add it in a price file "
        "(docs/pricing.md), then run `spendgate reprice`"
    )


def price_usage(
    book: PriceBook,
    *,
    model: str | None,
    usage: Usage,
    at: datetime,
    billable: bool = True,
    refusal: bool = False,
) -> Cost:
    """Price one call's usage with the rows in effect at ``at``. Never raises for unknown data.

    ``model`` is the model that served the call (the response's ``model``).
    ``billable=False`` is for endpoints Anthropic does not charge (token counting,
    model listing); ``refusal=True`` for a refusal before any output, which is not
    billed. Priority-tier and other non-list service tiers come back
    ``not_list_priced``; unknown models come back ``unpriced``.
    """
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if not billable:
        return _zero(book, "not_billable", model, [])
    if refusal:
        return _zero(book, "priced", model, ["refusal_not_billed"])
    tier = usage.service_tier
    if tier not in (None, "standard", "batch"):
        reason = f"service tier {tier!r} is not billed at list prices (Priority Tier is contracted)"
        return _no_price(book, "not_list_priced", model, reason)
    served = book.resolve(model)
    if served is None:
        return _no_price(book, "unpriced", model, _unpriced_reason(model or "(no model)", at))
    if _plain(usage):
        cost = _price_plain(book, served, usage, at, batch=tier == "batch")
        if cost is not None:
            return cost
    scope = _Scope(book, at, batch=tier == "batch", inference_geo=usage.inference_geo)
    foreign, included = _foreign_iterations(book, served, usage)
    top_counts = _Counts.of(usage)
    parts: list[tuple[str, str, _Priced]] = []
    for item in foreign:
        if included:
            top_counts = top_counts.minus(item.counts)
        if not item.billed:
            scope.note(f"refused_iteration_not_billed:{item.model}")
            continue
        priced = _price_part(scope, book.resolve(item.model) or item.model, item.counts, item.speed)
        if priced is None:
            return _no_price(book, "unpriced", model, _unpriced_reason(item.model, at))
        parts.append((item.kind, item.model, priced))
    top = _price_part(scope, served, top_counts, usage.speed)
    if top is None:
        return _no_price(book, "unpriced", model, _unpriced_reason(served, at))
    if foreign:
        scope.modifier("iterations_included" if included else "iterations_added")
    return _assemble(scope, usage, top, parts)


def _assemble(
    scope: _Scope, usage: Usage, top: _Priced, parts: list[tuple[str, str, _Priced]]
) -> Cost:
    book = scope.book
    web_search = 0
    if usage.web_search_requests:
        # $10 per 1,000 searches, not a token price: batch and data residency do not apply.
        discount = book.discount_at(top.model, scope.at)
        factor = Decimal(1) if discount is None else discount.factor
        web_search = _nanos(
            usage.web_search_requests, book.web_search_per_request, factor, per=Decimal(1)
        )
    if usage.code_execution_requests:
        scope.note("code_execution_not_priced")
    if _fallback_credit_redeemed(usage):
        scope.note("fallback_credit_redeemed_not_applied")
    breakdown: dict[str, Any] = {**top.components, "web_search": web_search}
    total = sum(top.components.values()) + web_search
    savings = top.savings
    iterations = []
    for kind, name, part in parts:
        subtotal = sum(part.components.values())
        total += subtotal
        savings += part.savings
        iterations.append(
            {
                "type": kind,
                "model": name,
                "model_priced": part.model,
                "tier": part.tier,
                **part.components,
                "subtotal": subtotal,
                "rates": part.rates.to_dict(),
            }
        )
    if iterations:
        breakdown["iterations"] = iterations
    breakdown.update(
        modifiers=list(scope.modifiers),
        notes=list(scope.notes),
        model_priced=top.model,
        tier=top.tier,
        speed=top.row.speed,
        service_tier=usage.service_tier,
        inference_geo=usage.inference_geo,
        factor=str(top.factor),
        rates=top.rates.to_dict(),
        unconfirmed=scope.unconfirmed,
        price_book_version=book.version,
    )
    return Cost("priced", total, savings, breakdown, book.version)


@dataclass(frozen=True, slots=True)
class _Variant:
    """One tier of a plan: its rates, as whole nano-dollars per token, and its modifiers."""

    tier: str
    units: tuple[int, int, int, int, int] | None  # input, output, 5m, 1h, read; None: not whole
    modifiers: tuple[str, ...]
    rates: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything about pricing one model that does not depend on the token counts."""

    speed: str
    factor: str
    notes: tuple[str, ...]
    unconfirmed: bool
    standard: _Variant
    tiered: _Variant | None
    threshold: int


def _plain(usage: Usage) -> bool:
    """A usage the plan covers: no iterations, server tools or fallback credit."""
    raw = usage.raw
    return (
        not usage.web_search_requests
        and not usage.code_execution_requests
        and "iterations" not in raw
        and "fallback_credit" not in raw
    )


def _variant(scope: _Scope, rates: Rates, tier: str, factor: Decimal) -> _Variant:
    modifiers = list(scope.modifiers)
    units = tuple(
        _whole_nanos_per_unit(price, factor, MTOK)
        for price in (
            rates.input,
            rates.output,
            rates.cache_write_5m,
            rates.cache_write_1h,
            rates.cache_read,
        )
    )
    whole = None if any(u is None for u in units) else cast(tuple[int, int, int, int, int], units)
    return _Variant(tier, whole, tuple(modifiers), rates.to_dict())


def _plan(scope: _Scope, served: str, speed: str | None) -> _Plan | None:
    """The plan of ``served``, built the way :func:`_price_part` prices (same modifiers,
    in the same order: speed, tier, then batch, data residency and discount)."""
    row = _row(scope, served, speed)
    if row is None:
        return None
    base = list(scope.modifiers)
    scope.unconfirmed = scope.unconfirmed or row.unconfirmed
    factor = _factor(scope, served)
    after = scope.modifiers[len(base) :]
    standard = _variant(scope, row.rates, "standard", factor)
    tiered = None
    if row.tier is not None:
        scope.modifiers = [*base, f"tier:{row.tier.name}"]
        for name in after:
            scope.modifier(name)
        tiered = _variant(scope, row.tier.rates, row.tier.name, factor)
    threshold = row.tier.prompt_tokens_over if row.tier is not None else 0
    return _Plan(
        row.speed, str(factor), tuple(scope.notes), scope.unconfirmed, standard, tiered, threshold
    )


def _price_plain(
    book: PriceBook, served: str, usage: Usage, at: datetime, *, batch: bool
) -> Cost | None:
    """Price a plain usage from its model's plan (None: use the general path).

    A plan is reused while the same price row and discount are in effect; it gives
    exactly what :func:`_price_part` and :func:`_assemble` give, without building
    the scope, the factor and the rate strings for every call.
    """
    speed = usage.speed
    geo = usage.inference_geo
    row = book.row_at(served, at, "fast") if speed == "fast" else None
    row = row or book.row_at(served, at)
    if row is None:
        return None
    key = (served, speed == "fast", batch, geo, id(row), id(book.discount_at(served, at)))
    plan: _Plan | None = book.plans.get(key)
    if plan is None:
        plan = _plan(_Scope(book, at, batch=batch, inference_geo=geo), served, speed)
        if plan is None:
            return None
        book.plans[key] = plan
    uncached = usage.input_tokens
    read = usage.cache_read_input_tokens
    five = usage.cache_creation_5m_input_tokens
    hour = usage.cache_creation_1h_input_tokens
    variant = plan.standard
    if plan.tiered is not None and uncached + read + five + hour > plan.threshold:
        variant = plan.tiered
    units = variant.units
    if units is None:
        return None
    cache_cost = five * units[2] + hour * units[3] + read * units[4]
    total = uncached * units[0] + usage.output_tokens * units[1] + cache_cost
    breakdown: dict[str, Any] = {
        "input": uncached * units[0],
        "output": usage.output_tokens * units[1],
        "cache_write_5m": five * units[2],
        "cache_write_1h": hour * units[3],
        "cache_read": read * units[4],
        "web_search": 0,
        "modifiers": list(variant.modifiers),
        "notes": list(plan.notes),
        "model_priced": served,
        "tier": variant.tier,
        "speed": plan.speed,
        "service_tier": usage.service_tier,
        "inference_geo": geo,
        "factor": plan.factor,
        "rates": dict(variant.rates),
        "unconfirmed": plan.unconfirmed,
        "price_book_version": book.version,
    }
    savings = (read + five + hour) * units[0] - cache_cost
    return Cost("priced", total, savings, breakdown, book.version)


def _fallback_credit_redeemed(usage: Usage) -> bool:
    credit = usage.raw.get("fallback_credit") if isinstance(usage.raw, Mapping) else None
    status = credit.get("status") if isinstance(credit, Mapping) else None
    return isinstance(status, Mapping) and status.get("type") == "redeemed"


def apply_cost(book: PriceBook, record: CallRecord) -> None:
    """Price a call record in place: cost, cache savings, breakdown, status and book version."""
    unknown = record.usage_unknown
    if unknown is not None:  # billed upstream, but its usage was never seen
        cost = _no_price(book, "unpriced", record.model or record.model_requested, unknown)
    else:
        cost = price_usage(
            book,
            model=record.model or record.model_requested,
            usage=record.usage,
            at=record.created_at,
            billable=record.billable,
            refusal=record.refusal_without_output,
        )
    record.cost_nanousd = cost.total_nanousd
    record.cache_savings_nanousd = cost.cache_savings_nanousd
    record.cost_breakdown = cost.breakdown
    record.price_book_version = cost.book_version
    # Last: the writer skips records whose status is no longer "pending", and the
    # budget ledger may price a record on another thread.
    record.pricing_status = cost.status

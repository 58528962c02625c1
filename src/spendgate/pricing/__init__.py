"""Pricing: the effective-dated price book and the rules that turn usage into cost.

A pure library (no web framework, no database)::

    book = PriceBook.load([Path("prices.toml")])
    cost = price_usage(book, model="claude-opus-4-8", usage=usage, at=when)

See ``docs/pricing.md`` for the rules, worked examples and the price-file format.
"""

from spendgate.pricing.book import PriceBook
from spendgate.pricing.engine import Cost, CostStatus, apply_cost, price_usage
from spendgate.pricing.parse import PriceBookError
from spendgate.pricing.rows import (
    Discount,
    ModelEntry,
    ModelSummary,
    PriceRow,
    Problem,
    Rates,
    Tier,
)
from spendgate.pricing.whatif import KEEP, ModelComparison, WhatIfSummary, whatif

__all__ = [
    "KEEP",
    "Cost",
    "CostStatus",
    "Discount",
    "ModelComparison",
    "ModelEntry",
    "ModelSummary",
    "PriceBook",
    "PriceBookError",
    "PriceRow",
    "Problem",
    "Rates",
    "Tier",
    "WhatIfSummary",
    "apply_cost",
    "price_usage",
    "whatif",
]

"""The value types of the price book: rates, price rows, models, discounts, problems."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

Speed = Literal["standard", "fast"]
MTOK = Decimal(1_000_000)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Rates:
    """Dollars per million tokens for each token class of one price row."""

    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal

    def to_dict(self) -> dict[str, str]:
        """The rates as decimal strings (JSON-safe, exact)."""
        return {
            "input": str(self.input),
            "output": str(self.output),
            "cache_write_5m": str(self.cache_write_5m),
            "cache_write_1h": str(self.cache_write_1h),
            "cache_read": str(self.cache_read),
        }


@dataclass(frozen=True, slots=True)
class Tier:
    """Rates that replace a row's rates for a whole request whose prompt is long.

    The prompt is uncached input + cache reads + cache writes; output does not
    count toward the threshold but is billed at the tier's output rate.
    """

    name: str
    prompt_tokens_over: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One effective-dated price row: ``effective_from <= t < effective_until``."""

    model: str
    effective_from: datetime
    effective_until: datetime | None
    rates: Rates
    speed: Speed = "standard"
    tier: Tier | None = None
    source: str = ""
    unconfirmed: bool = False
    note: str = ""
    origin: str = "builtin"
    layer: int = 0

    def covers(self, at: datetime) -> bool:
        """Whether ``at`` falls inside this row's date range."""
        if at < self.effective_from:
            return False
        return self.effective_until is None or at < self.effective_until

    def rates_for(self, prompt_tokens: int) -> tuple[Rates, str]:
        """The rates a request of ``prompt_tokens`` pays, and the tier's name."""
        if self.tier is not None and prompt_tokens > self.tier.prompt_tokens_over:
            return self.tier.rates, self.tier.name
        return self.rates, "standard"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view for ``prices show`` and the API."""
        data: dict[str, Any] = {
            "model": self.model,
            "speed": self.speed,
            "effective_from": _iso(self.effective_from),
            "effective_until": _iso(self.effective_until),
            **self.rates.to_dict(),
            "source": self.source,
            "unconfirmed": self.unconfirmed,
            "note": self.note,
            "origin": self.origin,
        }
        if self.tier is not None:
            data["tier"] = {
                "name": self.tier.name,
                "prompt_tokens_over": self.tier.prompt_tokens_over,
                **self.tier.rates.to_dict(),
            }
        return data


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model the book knows: its canonical ID, aliases and capabilities."""

    id: str
    aliases: tuple[str, ...] = ()
    display_name: str = ""
    family: str = ""
    status: str = ""
    inference_geo: bool = False
    retired: str | None = None
    private: bool = False
    note: str = ""
    origin: str = "builtin"


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """One line of ``prices list``: a model and the rows in effect at a moment."""

    model: ModelEntry
    standard: PriceRow | None
    fast: PriceRow | None

    @property
    def unconfirmed(self) -> bool:
        """Whether any row in effect is flagged as not confirmed by Anthropic."""
        return any(row is not None and row.unconfirmed for row in (self.standard, self.fast))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        entry = self.model
        return {
            "id": entry.id,
            "aliases": list(entry.aliases),
            "display_name": entry.display_name,
            "family": entry.family,
            "status": entry.status,
            "retired": entry.retired,
            "inference_geo": entry.inference_geo,
            "private": entry.private,
            "note": entry.note,
            "unconfirmed": self.unconfirmed,
            "standard": None if self.standard is None else self.standard.to_dict(),
            "fast": None if self.fast is None else self.fast.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Discount:
    """A negotiated percentage off every price of one model, or of all (``model == "*"``)."""

    model: str
    percent: Decimal
    effective_from: datetime | None = None
    effective_until: datetime | None = None
    note: str = ""
    origin: str = ""
    layer: int = 1

    def covers(self, at: datetime) -> bool:
        """Whether the discount is in effect at ``at``."""
        if self.effective_from is not None and at < self.effective_from:
            return False
        return self.effective_until is None or at < self.effective_until

    @property
    def factor(self) -> Decimal:
        """What is left to pay: 15 % off is a factor of 0.85."""
        return (Decimal(100) - self.percent) / Decimal(100)

    @property
    def label(self) -> str:
        """The modifier name recorded in a cost breakdown, e.g. ``discount:15%``."""
        return f"discount:{self.percent.normalize():f}%"


@dataclass(frozen=True, slots=True)
class Problem:
    """A finding of :meth:`PriceBook.check`."""

    severity: Literal["error", "warning"]
    model: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.model}: " if self.model else ""
        return f"{self.severity}: {where}{self.message}"

"""Money as integer nano-dollars (1e-9 USD), never as a float.

Costs are computed with :class:`~decimal.Decimal` and stored as integer
nano-dollars ("nanousd"). One nanousd is a billionth of a dollar, fine enough
that a single cache-read token of the cheapest model (a hundredth of a micro-
dollar) is still a whole number of units.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000
NANO = Decimal("0.000000001")


def to_nanos(usd: Decimal | int | str) -> int:
    """Dollars to integer nano-dollars, rounding half to even at the ninth decimal."""
    try:
        value = Decimal(usd)
    except InvalidOperation as exc:
        raise ValueError(f"not a dollar amount: {usd!r}; write it like 0.0125") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite dollar amount: {usd!r}")
    return int(value.quantize(NANO, rounding=ROUND_HALF_EVEN).scaleb(9))


def from_nanos(nanos: int) -> Decimal:
    """Integer nano-dollars to an exact Decimal number of dollars (nine decimals)."""
    return Decimal(nanos).scaleb(-9).quantize(NANO)


def format_usd(nanos: int, places: int = 9) -> str:
    """A decimal string of dollars, e.g. ``format_usd(1_234_500) == "0.001234500"``.

    ``places`` below 9 rounds half to even (for display); the default keeps every
    nano-dollar, so the string converts back to the same integer.
    """
    if not 0 <= places <= 9:
        raise ValueError("places must be between 0 and 9")
    if places == 9:
        sign = "-" if nanos < 0 else ""
        whole, frac = divmod(abs(nanos), NANOS_PER_USD)
        return f"{sign}{whole}.{frac:09d}"
    exponent = Decimal(1).scaleb(-places)
    return str(from_nanos(nanos).quantize(exponent, rounding=ROUND_HALF_EVEN))


def parse_usd(text: str) -> int:
    """A dollar string (``"0.0125"``, ``"$3"``) to integer nano-dollars."""
    return to_nanos(text.strip().removeprefix("$").replace(",", ""))

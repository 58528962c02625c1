"""Reading price files (TOML) into rows, with errors that say where and how to fix.

The built-in book and user override files share one format (see
``docs/pricing.md``); a user file may also hold ``[[discount]]`` tables and may
leave out cache prices, which then follow Anthropic's standard multipliers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from spendgate.pricing.rows import Discount, ModelEntry, PriceRow, Rates, Speed, Tier

FIX_HINT = "see docs/pricing.md, 'Writing a price file'"

_TOP_KEYS = {"schema", "version", "server_tools", "model", "discount"}
_MODEL_KEYS = {
    "id",
    "aliases",
    "display_name",
    "family",
    "status",
    "inference_geo",
    "retired",
    "note",
    "price",
}
_RATE_KEYS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
_ROW_KEYS = {
    "effective_from",
    "effective_until",
    "speed",
    "source",
    "unconfirmed",
    "note",
    "tier",
    *_RATE_KEYS,
}
_TIER_KEYS = {"name", "prompt_tokens_over", *_RATE_KEYS}
_DISCOUNT_KEYS = {"model", "percent", "effective_from", "effective_until", "note"}
_SERVER_TOOL_KEYS = {"web_search_per_request", "source"}
# Anthropic's cache multipliers on the input price, used only when a file omits a cache price.
_DEFAULT_MULTIPLIERS = {
    "cache_write_5m": Decimal("1.25"),
    "cache_write_1h": Decimal(2),
    "cache_read": Decimal("0.1"),
}


class PriceBookError(ValueError):
    """A price file is missing, unreadable or invalid; the message says how to fix it."""


@dataclass(slots=True)
class ModelDecl:
    """A ``[[model]]`` table as written in one file (fields left out are ``None``)."""

    id: str
    aliases: tuple[str, ...] = ()
    display_name: str | None = None
    family: str | None = None
    status: str | None = None
    inference_geo: bool | None = None
    retired: str | None = None
    note: str | None = None
    rows: list[PriceRow] = field(default_factory=list)

    def entry(self, origin: str, *, private: bool) -> ModelEntry:
        """A new model entry from this declaration."""
        return ModelEntry(
            id=self.id,
            aliases=self.aliases,
            display_name=self.display_name or self.id,
            family=self.family or "",
            status=self.status or "",
            inference_geo=bool(self.inference_geo),
            retired=self.retired,
            private=private,
            note=self.note or "",
            origin=origin,
        )


@dataclass(slots=True)
class ParsedFile:
    """Everything one price file declares."""

    origin: str
    layer: int
    version: str | None = None
    models: list[ModelDecl] = field(default_factory=list)
    discounts: list[Discount] = field(default_factory=list)
    web_search_per_request: Decimal | None = None


def _fail(where: str, what: str, fix: str = FIX_HINT) -> PriceBookError:
    return PriceBookError(f"{where}: {what}. Fix: {fix}")


def _unknown_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise _fail(
            where,
            f"unknown key {extra[0]!r}",
            f"use only {', '.join(sorted(allowed))} (check the spelling)",
        )


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, "expected a table")
    return value


def _tables(data: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise _fail(where, f"{key!r} must be an array of tables", f"write [[{key}]] headers")
    return [_table(item, f"{where} {key} #{n}") for n, item in enumerate(value, start=1)]


def _text(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(where, f"{key} must be a string", f'write {key} = "..."')
    return value


def _price(value: Any, key: str, where: str) -> Decimal:
    """A price from TOML: a string or integer (exact); a float is read as typed."""
    if isinstance(value, bool):
        raise _fail(where, f"{key} must be a price, got {value!r}", f'write {key} = "3.75"')
    try:
        if isinstance(value, int | str):
            price = Decimal(value)
        elif isinstance(value, float):
            price = Decimal(repr(value))
        else:
            raise InvalidOperation
    except InvalidOperation:
        raise _fail(
            where, f"{key} is not a number: {value!r}", f'write {key} = "3.75" (USD per MTok)'
        ) from None
    if not price.is_finite() or price < 0:
        raise _fail(where, f"{key} must be zero or more, got {value!r}")
    return price


def parse_when(value: Any, key: str, where: str) -> datetime:
    """A TOML date, datetime or ISO string as an aware UTC datetime (dates at midnight UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _fail(
                where, f"{key} is not a date: {value!r}", f"write {key} = 2026-10-07"
            ) from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise _fail(where, f"{key} is not a date: {value!r}", f"write {key} = 2026-10-07")


def _rates(table: Mapping[str, Any], where: str, *, derive: bool) -> Rates:
    for key in ("input", "output"):
        if key not in table:
            raise _fail(where, f"missing {key}", f'add {key} = "..." in USD per million tokens')
    base = _price(table["input"], "input", where)
    values: dict[str, Decimal] = {"input": base, "output": _price(table["output"], "output", where)}
    for key, multiplier in _DEFAULT_MULTIPLIERS.items():
        if key in table:
            values[key] = _price(table[key], key, where)
        elif derive:
            values[key] = base * multiplier
        else:
            raise _fail(where, f"missing {key}", f"the built-in book states every price; add {key}")
    return Rates(**values)


def _tier(value: Any, where: str, *, derive: bool) -> Tier:
    table = _table(value, where)
    _unknown_keys(table, _TIER_KEYS, where)
    name = _text(table, "name", where) or "long_prompt"
    over = table.get("prompt_tokens_over")
    if isinstance(over, bool) or not isinstance(over, int) or over < 0:
        raise _fail(where, "prompt_tokens_over must be a whole number", "e.g. 100000")
    return Tier(name=name, prompt_tokens_over=over, rates=_rates(table, where, derive=derive))


def _row(table: Mapping[str, Any], model: str, where: str, parsed: ParsedFile) -> PriceRow:
    _unknown_keys(table, _ROW_KEYS, where)
    derive = parsed.layer > 0
    if "effective_from" not in table:
        raise _fail(where, "missing effective_from", "add effective_from = 2026-01-01 (UTC)")
    start = parse_when(table["effective_from"], "effective_from", where)
    until = table.get("effective_until")
    end = None if until is None else parse_when(until, "effective_until", where)
    if end is not None and end <= start:
        raise _fail(where, "effective_until is not after effective_from", "swap or fix the dates")
    speed = table.get("speed", "standard")
    if speed not in ("standard", "fast"):
        raise _fail(where, f"speed must be 'standard' or 'fast', got {speed!r}")
    unconfirmed = table.get("unconfirmed", False)
    if not isinstance(unconfirmed, bool):
        raise _fail(where, "unconfirmed must be true or false")
    source = _text(table, "source", where)
    if source is None and not derive:
        raise _fail(where, "missing source", "every built-in row names its source")
    tier = table.get("tier")
    row_speed: Speed = "fast" if speed == "fast" else "standard"
    return PriceRow(
        model=model,
        effective_from=start,
        effective_until=end,
        rates=_rates(table, where, derive=derive),
        speed=row_speed,
        tier=None if tier is None else _tier(tier, f"{where} tier", derive=derive),
        source=source or parsed.origin,
        unconfirmed=unconfirmed,
        note=_text(table, "note", where) or "",
        origin=parsed.origin,
        layer=parsed.layer,
    )


def _model(table: Mapping[str, Any], where: str, parsed: ParsedFile) -> ModelDecl:
    _unknown_keys(table, _MODEL_KEYS, where)
    model_id = _text(table, "id", where)
    if not model_id or not model_id.strip():
        raise _fail(where, "missing id", 'add id = "claude-..." (the model ID the API reports)')
    where = f"{parsed.origin}: model {model_id!r}"
    aliases = table.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise _fail(where, "aliases must be a list of strings", 'write aliases = ["..."]')
    geo = table.get("inference_geo")
    if geo is not None and not isinstance(geo, bool):
        raise _fail(where, "inference_geo must be true or false")
    retired = table.get("retired")
    decl = ModelDecl(
        id=model_id.strip(),
        aliases=tuple(aliases),
        display_name=_text(table, "display_name", where),
        family=_text(table, "family", where),
        status=_text(table, "status", where),
        inference_geo=geo,
        retired=None
        if retired is None
        else parse_when(retired, "retired", where).date().isoformat(),
        note=_text(table, "note", where),
    )
    for n, row in enumerate(_tables(table, "price", where), start=1):
        decl.rows.append(_row(row, decl.id, f"{where} price row {n}", parsed))
    return decl


def _discount(table: Mapping[str, Any], where: str, parsed: ParsedFile) -> Discount:
    _unknown_keys(table, _DISCOUNT_KEYS, where)
    model = _text(table, "model", where) or "*"
    if "percent" not in table:
        raise _fail(where, "missing percent", "add percent = 15 for 15 % off")
    percent = _price(table["percent"], "percent", where)
    if not 0 < percent <= 100:
        raise _fail(where, f"percent must be above 0 and at most 100, got {percent}")
    start, until = table.get("effective_from"), table.get("effective_until")
    begin = None if start is None else parse_when(start, "effective_from", where)
    end = None if until is None else parse_when(until, "effective_until", where)
    if begin is not None and end is not None and end <= begin:
        raise _fail(where, "effective_until is not after effective_from", "swap or fix the dates")
    return Discount(
        model=model,
        percent=percent,
        effective_from=begin,
        effective_until=end,
        note=_text(table, "note", where) or "",
        origin=parsed.origin,
        layer=parsed.layer,
    )


def parse_file(data: Mapping[str, Any], origin: str, layer: int) -> ParsedFile:
    """Validate one parsed TOML document; layer 0 is the built-in book."""
    parsed = ParsedFile(origin=origin, layer=layer)
    _unknown_keys(data, _TOP_KEYS, origin)
    schema = data.get("schema", 1)
    if schema != 1:
        raise _fail(origin, f"unknown schema {schema!r}", "this spendgate reads schema = 1")
    parsed.version = _text(data, "version", origin)
    if "server_tools" in data:
        tools = _table(data["server_tools"], f"{origin} [server_tools]")
        _unknown_keys(tools, _SERVER_TOOL_KEYS, f"{origin} [server_tools]")
        if "web_search_per_request" in tools:
            parsed.web_search_per_request = _price(
                tools["web_search_per_request"], "web_search_per_request", origin
            )
    for n, table in enumerate(_tables(data, "model", origin), start=1):
        parsed.models.append(_model(table, f"{origin}: model #{n}", parsed))
    if layer == 0 and data.get("discount"):
        raise _fail(origin, "the built-in book holds list prices only", "move discounts to a file")
    for n, table in enumerate(_tables(data, "discount", origin), start=1):
        parsed.discounts.append(_discount(table, f"{origin}: discount #{n}", parsed))
    return parsed

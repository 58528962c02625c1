"""Exports: raw calls as CSV / JSON / NDJSON, team chargeback statements, FOCUS CSV.

Call exports stream: rows are read in keyset-paginated chunks and written one
at a time, so memory stays flat however many calls match. Chargeback and FOCUS
read the rollups.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from spendgate.money import NANOS_PER_USD, format_usd
from spendgate.storage.analytics import Analytics, Measures, add_measures
from spendgate.storage.calls import rfc3339, row_to_api
from spendgate.storage.rollups_schema import DAY_US
from spendgate.storage.schema import from_micros
from spendgate.storage.store import CallFilter, Store

FORMATS = ("csv", "json", "ndjson")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
}
# Flat columns of a call in CSV exports (nested JSON fields are left to JSON exports).
CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "created_at",
    "source",
    "method",
    "endpoint",
    "stream",
    "status_code",
    "request_id",
    "message_id",
    "model",
    "stop_reason",
    "error_type",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "web_search_requests",
    "service_tier",
    "inference_geo",
    "speed",
    "cost_usd",
    "cache_savings_usd",
    "pricing_status",
    "price_book_version",
    "latency_ms",
    "ttft_ms",
    "key_id",
    "key_label",
    "team",
    "user",
    "project",
    "tags",
    "session_id",
)


class ExportError(ValueError):
    """An export cannot be produced as asked; the message says what to change."""


def _csv_line(values: Iterable[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(values)
    return buf.getvalue().encode()


# Rows are written into one buffer and handed out ~64 KiB at a time: a chunk per
# row would cost a generator step (and an ASGI message) per call.
CHUNK_BYTES = 64 * 1024


def _chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    buf = bytearray()
    for piece in pieces:
        buf += piece
        if len(buf) >= CHUNK_BYTES:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


def _csv_rows(calls: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for call in calls:
        row = list(_CSV_VALUES(call))  # csv writes None as an empty field
        row[_TAGS_AT] = ";".join(str(t) for t in row[_TAGS_AT] or ())
        writer.writerow(row)
        if text.tell() >= CHUNK_BYTES:
            yield text.getvalue().encode()
            text.seek(0)
            text.truncate()
    yield text.getvalue().encode()


_CSV_VALUES = itemgetter(*CSV_COLUMNS)
_TAGS_AT = CSV_COLUMNS.index("tags")


def _json_rows(calls: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    yield b"["
    for i, call in enumerate(calls):
        yield (b"\n" if i == 0 else b",\n") + orjson.dumps(call)
    yield b"\n]\n"


def export_calls(store: Store, flt: CallFilter, fmt: str) -> Iterator[bytes]:
    """Matching calls, oldest first, as chunks of ``fmt`` (csv, json or ndjson).

    Memory stays flat: rows are read in keyset pages and written as they come.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use csv, json or ndjson")
    calls = (row_to_api(row) for row in store.iter_call_rows(flt))
    if fmt == "csv":
        return _csv_rows(calls)
    if fmt == "ndjson":
        return _chunked(orjson.dumps(call, option=orjson.OPT_APPEND_NEWLINE) for call in calls)
    return _chunked(_json_rows(calls))


# -- chargeback ------------------------------------------------------------------

CENT = 10_000_000  # nano-dollars per cent


def _cents(nanos: int) -> int:
    return int((Decimal(nanos) / CENT).quantize(Decimal(1), ROUND_HALF_EVEN))


def allocate_cents(parts: list[int]) -> list[int]:
    """Round each part (nano-dollars) to cents so they sum to the rounded total.

    Largest remainder: every part is floored to a cent, then the cents left over
    go to the parts that lost the most, so the statement totals to the cent.
    """
    target = _cents(sum(parts))
    floors = [p // CENT for p in parts]
    left = target - sum(floors)
    order = sorted(range(len(parts)), key=lambda i: (-(parts[i] % CENT), i))
    for i in order[: max(left, 0)]:
        floors[i] += 1
    return floors


def _usd_cents(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as [first instant, first instant of the next month) in ``zone``, in UTC."""
    try:
        year, mon = (int(x) for x in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=zone)
    except ValueError as exc:
        raise ExportError(f"month must look like 2026-11, not {month!r}") from exc
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


_CHARGEBACK_MEASURES = (
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cost_nanousd",
)


def chargeback(analytics: Analytics, month: str, zone: ZoneInfo) -> dict[str, Any]:
    """Per-team statement for one month: exact cost, and a charge in cents that totals exactly."""
    since, until = month_bounds(month, zone)
    grouped = analytics.grouped(
        CallFilter(since=since, until=until), ("team", "model"), measures=_CHARGEBACK_MEASURES
    )
    teams: dict[str, Measures] = {}
    models: dict[str, dict[str, Measures]] = {}
    for (team, model), measures in grouped.items():
        add_measures(teams.setdefault(team, {}), measures)
        add_measures(models.setdefault(team, {}).setdefault(model, {}), measures)
    names = sorted(teams, key=lambda t: (-teams[t]["cost_nanousd"], t))
    charges = allocate_cents([teams[t]["cost_nanousd"] for t in names])
    lines = []
    for name, cents in zip(names, charges, strict=True):
        m = teams[name]
        lines.append(
            {
                "team": name or None,
                "calls": m["calls"],
                "input_tokens": m["input_tokens"],
                "output_tokens": m["output_tokens"],
                "cache_read_input_tokens": m["cache_read_input_tokens"],
                "cache_creation_input_tokens": m["cache_creation_5m_input_tokens"]
                + m["cache_creation_1h_input_tokens"],
                "cost_usd": format_usd(m["cost_nanousd"]),
                "charge_usd": _usd_cents(cents),
                "models": [
                    {
                        "model": k or None,
                        "calls": v["calls"],
                        "cost_usd": format_usd(v["cost_nanousd"]),
                    }
                    for k, v in sorted(models[name].items(), key=lambda kv: -kv[1]["cost_nanousd"])
                ],
            }
        )
    total = sum(teams[t]["cost_nanousd"] for t in names)
    return {
        "month": month,
        "tz": zone.key,
        "since": rfc3339(since),
        "until": rfc3339(until),
        "currency": "USD",
        "teams": lines,
        "total_cost_usd": format_usd(total),
        "total_charge_usd": _usd_cents(sum(charges)),
    }


def chargeback_csv(statement: dict[str, Any]) -> Iterator[bytes]:
    """A chargeback statement as CSV, one line per team and a total line."""
    yield _csv_line(
        ("month", "team", "calls", "input_tokens", "output_tokens", "cost_usd", "charge_usd")
    )
    for line in statement["teams"]:
        yield _csv_line(
            (
                statement["month"],
                line["team"] or "(unassigned)",
                line["calls"],
                line["input_tokens"],
                line["output_tokens"],
                line["cost_usd"],
                line["charge_usd"],
            )
        )
    yield _csv_line(
        (
            statement["month"],
            "TOTAL",
            "",
            "",
            "",
            statement["total_cost_usd"],
            statement["total_charge_usd"],
        )
    )


# -- FOCUS ---------------------------------------------------------------------------

FOCUS_COLUMNS: tuple[str, ...] = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
)
# (cost column in the rollups, token column, description suffix)
_FOCUS_COMPONENTS = (
    ("cost_input_nanousd", "input_tokens", "Input Tokens"),
    ("cost_output_nanousd", "output_tokens", "Output Tokens"),
    ("cost_cache_read_nanousd", "cache_read_input_tokens", "Cache Read Tokens"),
    ("cost_cache_write_5m_nanousd", "cache_creation_5m_input_tokens", "Cache Write 5m Tokens"),
    ("cost_cache_write_1h_nanousd", "cache_creation_1h_input_tokens", "Cache Write 1h Tokens"),
    ("cost_web_search_nanousd", "web_search_requests", "Web Search Requests"),
    ("cost_other_nanousd", None, "Other Charges"),
)


def _focus_time(value: datetime) -> str:
    """FOCUS date-times: ISO 8601 in UTC to the second, ``2026-11-01T00:00:00Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month_of(day_us: int) -> tuple[str, str]:
    start = from_micros(day_us).replace(day=1)
    end = datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)
    return _focus_time(start), _focus_time(end)


def _unit_price(cost_nanousd: int, quantity: int) -> str:
    """Average price of one unit (USD): what ``PricingQuantity`` x it gives ``ListCost``."""
    if quantity <= 0:
        return ""
    price = Decimal(cost_nanousd) / NANOS_PER_USD / quantity
    return format(price.quantize(Decimal("1e-15"), ROUND_HALF_EVEN).normalize(), "f")


_FOCUS_CONSTANTS = {
    "BillingAccountId": "spendgate",
    "BillingAccountName": "spendgate",
    "BillingCurrency": "USD",
    "ChargeCategory": "Usage",
    "ChargeFrequency": "Usage-Based",
    "InvoiceIssuerName": "Anthropic",
    "PricingCategory": "Standard",
    "ProviderName": "Anthropic",
    "PublisherName": "Anthropic",
    "ResourceType": "Model",
    "ServiceCategory": "AI and Machine Learning",
    "ServiceName": "Claude API",
}


def _focus_charges(day: int, dims: tuple[str, ...], m: Measures) -> Iterator[dict[str, Any]]:
    """The FOCUS rows of one day and (model, key, team, user, project): one per charge."""
    model, key_id, team, user, project = dims
    period_start, period_end = _month_of(day)
    labels = {"team": team, "user": user, "project": project}
    common = {
        **_FOCUS_CONSTANTS,
        "BillingPeriodStart": period_start,
        "BillingPeriodEnd": period_end,
        "ChargePeriodStart": _focus_time(from_micros(day)),
        "ChargePeriodEnd": _focus_time(from_micros(day + DAY_US)),
        "ResourceId": model,
        "ResourceName": model,
        "SubAccountId": key_id,
        "SubAccountName": team,
        "Tags": orjson.dumps({k: v for k, v in labels.items() if v}).decode(),
    }
    for cost_col, qty_col, label in _FOCUS_COMPONENTS:
        cost = m.get(cost_col, 0)
        qty = m.get(qty_col, 0) if qty_col else 0
        if cost == 0 and qty == 0:
            continue
        usd = format_usd(cost)
        price = _unit_price(cost, qty)
        unit = "" if qty_col is None else "Requests" if "requests" in qty_col else "Tokens"
        sku = f"{model}:{cost_col.removeprefix('cost_').removesuffix('_nanousd')}"
        yield {
            **common,
            "BilledCost": usd,
            "EffectiveCost": usd,
            "ListCost": usd,
            "ContractedCost": usd,
            "ListUnitPrice": price,
            "ContractedUnitPrice": price,
            "ConsumedQuantity": qty if qty_col else "",
            "PricingQuantity": qty if qty_col else "",
            "ConsumedUnit": unit,
            "PricingUnit": unit,
            "ChargeDescription": f"{model} {label}",
            "SkuId": sku,
            "SkuPriceId": sku,
        }


def focus_csv(analytics: Analytics, since: datetime, until: datetime) -> Iterator[bytes]:
    """FOCUS 1.0 CSV: one row per UTC day, model, key, team, user, project and charge.

    Costs are list prices as recorded (``BilledCost`` = ``EffectiveCost`` = ``ListCost`` =
    ``ContractedCost``); the billing period is the UTC calendar month of the charge;
    unit prices are the average per token (or request) of the row.
    """
    group = ("model", "key_id", "team", "user_name", "project")
    days: dict[tuple[Any, ...], Measures] = {}
    flt = CallFilter(since=since, until=until)
    wanted = tuple(
        dict.fromkeys(c for comp in _FOCUS_COMPONENTS for c in comp[:2] if c is not None)
    )
    for key, measures in analytics.grouped(flt, group, grain=DAY_US, measures=wanted).items():
        add_measures(days.setdefault(key, {}), measures)
    yield _csv_line(FOCUS_COLUMNS)
    for (day, *dims), m in sorted(days.items()):
        for row in _focus_charges(day, tuple(dims), m):
            yield _csv_line(row.get(column, "") for column in FOCUS_COLUMNS)

"""Our ledger next to Anthropic's own figures: ``spendgate reconcile``.

Per UTC day, model and key: tokens by class as spendgate recorded them and as
Anthropic's usage report (imported with ``spendgate import anthropic-admin``)
states them, and the difference. Per day and model: cost, likewise (Anthropic's
cost report has no key). Anthropic knows its own API key ids (``apikey_…``),
spendgate its proxy keys; a key map pairs them, unpaired keys get their own lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from spendgate.money import format_usd
from spendgate.storage.analytics import Analytics
from spendgate.storage.anthropic_reports import AnthropicReports
from spendgate.storage.rollups_schema import DAY_US
from spendgate.storage.schema import from_micros, to_micros
from spendgate.storage.store import CallFilter

# (our rollup measure, Anthropic's usage column, the name shown)
TOKEN_CLASSES: tuple[tuple[str, str, str], ...] = (
    ("input_tokens", "uncached_input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens", "output_tokens"),
    ("cache_read_input_tokens", "cache_read_input_tokens", "cache_read_input_tokens"),
    (
        "cache_creation_5m_input_tokens",
        "cache_creation_5m_input_tokens",
        "cache_creation_5m_input_tokens",
    ),
    (
        "cache_creation_1h_input_tokens",
        "cache_creation_1h_input_tokens",
        "cache_creation_1h_input_tokens",
    ),
)
NO_KEY = "(no key)"
ALL_KEYS = "*"


def _day(us: int) -> str:
    return from_micros(int(us)).strftime("%Y-%m-%d")


def their_key(api_key_id: str, key_map: Mapping[str, str]) -> str:
    """How an Anthropic key shows up: the paired spendgate key, or its own id."""
    if not api_key_id:
        return "(workbench)"
    return key_map.get(api_key_id, f"anthropic:{api_key_id}")


def _diff(ours: int, theirs: int) -> dict[str, int]:
    return {"spendgate": ours, "anthropic": theirs, "difference": ours - theirs}


def reconcile(
    analytics: Analytics,
    reports: AnthropicReports,
    since: datetime,
    until: datetime,
    *,
    key_map: Mapping[str, str] | None = None,
    by_key: bool = True,
    source: str | None = None,
) -> dict[str, Any]:
    """Token lines per (day, model, key) and cost lines per (day, model), with totals.

    ``since`` and ``until`` should be whole UTC days (Anthropic's buckets).
    """
    key_map = key_map or {}
    since_us, until_us = to_micros(since), to_micros(until)
    measures = (*(ours for ours, _, _ in TOKEN_CLASSES), "cost_nanousd")
    group = ("model", "key_id") if by_key else ("model",)
    flt = CallFilter(since=since, until=until, source=source)
    ours = analytics.grouped(flt, group, grain=DAY_US, measures=measures)
    theirs = reports.usage_by(since_us, until_us, ("model", "api_key_id") if by_key else ("model",))

    tokens: dict[tuple[int, str, str], dict[str, list[int]]] = {}

    def line(day: int, model: str, key: str) -> dict[str, list[int]]:
        return tokens.setdefault((day, model, key), {name: [0, 0] for _, _, name in TOKEN_CLASSES})

    cost_ours: dict[tuple[int, str], int] = {}
    for k, m in ours.items():
        day, model = int(k[0]), k[1] or ""
        key = (k[2] or NO_KEY) if by_key else ALL_KEYS
        entry = line(day, model, key)
        for ours_name, _, name in TOKEN_CLASSES:
            entry[name][0] += int(m.get(ours_name, 0))
        cost_ours[(day, model)] = cost_ours.get((day, model), 0) + int(m.get("cost_nanousd", 0))
    for k, m in theirs.items():
        day, model = int(k[0]), k[1] or ""
        key = their_key(k[2], key_map) if by_key else ALL_KEYS
        entry = line(day, model, key)
        for _, their_name, name in TOKEN_CLASSES:
            entry[name][1] += int(m.get(their_name, 0))
    cost_theirs = {
        (int(k[0]), k[1] or ""): v
        for k, v in reports.costs_by(since_us, until_us, ("model",)).items()
    }
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "tokens": [
            {
                "day": _day(day),
                "model": model or None,
                "key": key,
                **{name: _diff(v[0], v[1]) for name, v in values.items()},
            }
            for (day, model, key), values in sorted(tokens.items())
        ],
        "costs": _cost_lines(cost_ours, cost_theirs),
        "totals": _totals(tokens, cost_ours, cost_theirs),
    }


def _usd(ours: int, theirs: int) -> dict[str, str]:
    return {
        "spendgate_usd": format_usd(ours),
        "anthropic_usd": format_usd(theirs),
        "difference_usd": format_usd(ours - theirs),
    }


def _cost_lines(
    ours: dict[tuple[int, str], int], theirs: dict[tuple[int, str], int]
) -> list[dict[str, Any]]:
    lines = []
    for day, model in sorted(set(ours) | set(theirs)):
        a, b = ours.get((day, model), 0), theirs.get((day, model), 0)
        lines.append({"day": _day(day), "model": model or None, **_usd(a, b)})
    return lines


def _totals(
    tokens: dict[tuple[int, str, str], dict[str, list[int]]],
    cost_ours: dict[tuple[int, str], int],
    cost_theirs: dict[tuple[int, str], int],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _, _, name in TOKEN_CLASSES:
        a = sum(v[name][0] for v in tokens.values())
        b = sum(v[name][1] for v in tokens.values())
        out[name] = _diff(a, b)
    out["cost"] = _usd(sum(cost_ours.values()), sum(cost_theirs.values()))
    return out

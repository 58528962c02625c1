"""Anthropic Admin API compatible usage and cost reports, from spendgate's own rollups.

``usage_report`` answers like ``GET /v1/organizations/usage_report/messages`` and
``cost_report`` like ``GET /v1/organizations/cost_report``: same parameters,
shapes and ``page`` / ``next_page`` pagination. Proxy keys map to
``api_key_id``, teams to ``workspace_id``; dimensions not grouped by are null.
Cost ``amount`` follows Anthropic's documentation: a decimal string in cents.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from spendgate.storage.analytics import Analytics, Measures, add_measures
from spendgate.storage.calls import rfc3339
from spendgate.storage.rollups_schema import DAY_US, HOUR_US
from spendgate.storage.schema import from_micros, to_micros
from spendgate.storage.store import CallFilter
from spendgate.timeparse import TimeError, parse_when

WIDTHS = {"1d": (DAY_US, 7, 31), "1h": (HOUR_US, 24, 168)}
# Admin API group_by / filter names → rollup column (None: not tracked, always null).
USAGE_DIMS: dict[str, str | None] = {
    "api_key_id": "key_id",
    "workspace_id": "team",
    "model": "model",
    "service_tier": "service_tier",
    "context_window": "context_window",
    "inference_geo": "inference_geo",
    "speed": "speed",
    "account_id": None,
    "service_account_id": None,
}
USAGE_FILTERS = {
    "api_key_ids": "key_id",
    "workspace_ids": "team",
    "models": "model",
    "service_tiers": "service_tier",
    "context_window": "context_window",
    "inference_geos": "inference_geo",
    "speeds": "speed",
}
_TOKEN_TYPES = (
    ("uncached_input_tokens", "cost_input_nanousd", "Input Tokens"),
    ("output_tokens", "cost_output_nanousd", "Output Tokens"),
    ("cache_read_input_tokens", "cost_cache_read_nanousd", "Cache Read Tokens"),
    ("cache_creation.ephemeral_5m_input_tokens", "cost_cache_write_5m_nanousd", "Cache Write 5m"),
    ("cache_creation.ephemeral_1h_input_tokens", "cost_cache_write_1h_nanousd", "Cache Write 1h"),
)


class AdminApiError(ValueError):
    """An invalid Admin API request (answered as ``invalid_request_error``)."""


@dataclass(frozen=True)
class Window:
    """The buckets of one page."""

    width_us: int
    start_us: int  # first bucket of this page
    end_us: int  # end of the requested range
    limit: int

    def bucket_starts(self) -> list[int]:
        """Bucket starts on this page."""
        stop = min(self.end_us, self.start_us + self.limit * self.width_us)
        return list(range(self.start_us, stop, self.width_us))

    def next_page(self) -> str | None:
        """The ``next_page`` token, or None on the last page."""
        nxt = self.start_us + self.limit * self.width_us
        if nxt >= self.end_us:
            return None
        stamp = rfc3339(from_micros(nxt)) or ""
        return "page_" + base64.b64encode(stamp.replace(".000Z", "Z").encode()).decode()


def _time(value: str, name: str) -> datetime:
    try:
        return parse_when(value)
    except TimeError as exc:
        raise AdminApiError(f"{name}: {exc}") from exc


def window(params: Mapping[str, str | None], *, widths: Sequence[str], now: datetime) -> Window:
    """Read ``starting_at``, ``ending_at``, ``bucket_width``, ``limit`` and ``page``."""
    width_name = params.get("bucket_width") or "1d"
    if width_name not in widths:
        raise AdminApiError(
            f"bucket_width must be one of {', '.join(widths)} (spendgate keeps hourly rollups, "
            "so 1m is not available)"
        )
    width, default_limit, max_limit = WIDTHS[width_name]
    if not params.get("starting_at"):
        raise AdminApiError("starting_at is required (RFC 3339, e.g. 2026-11-01T00:00:00Z)")
    start = to_micros(_time(params["starting_at"] or "", "starting_at"))
    start -= start % width
    ending = params.get("ending_at")
    end = to_micros(_time(ending, "ending_at") if ending else now)
    try:
        limit = int(params.get("limit") or default_limit)
    except ValueError:
        raise AdminApiError(f"limit must be an integer, not {params.get('limit')!r}") from None
    if not 1 <= limit <= max_limit:
        raise AdminApiError(
            f"limit must be between 1 and {max_limit} for bucket_width {width_name}"
        )
    page = params.get("page")
    if page:
        try:
            stamp = base64.b64decode(page.removeprefix("page_")).decode()
            start = to_micros(parse_when(stamp))
        except (ValueError, UnicodeDecodeError) as exc:
            raise AdminApiError("page must be a next_page value from a previous answer") from exc
    if end <= start and not page:
        raise AdminApiError("ending_at must be after starting_at")
    return Window(width, start, end, limit)


# The measures each report reads (summing all 72 rollup columns would cost ten times more).
USAGE_MEASURES = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "web_search_requests",
)
COST_MEASURES = (
    "cost_nanousd",
    *(col for _, col, _ in _TOKEN_TYPES),
    "cost_web_search_nanousd",
    "cost_other_nanousd",
)


def _grouped(
    analytics: Analytics,
    win: Window,
    cols: tuple[str, ...],
    filters: dict[str, list[str]],
    measures: tuple[str, ...],
) -> dict[int, dict[tuple[Any, ...], Measures]]:
    starts = win.bucket_starts()
    out: dict[int, dict[tuple[Any, ...], Measures]] = {s: {} for s in starts}
    if not starts:
        return out
    flt = CallFilter(since=from_micros(starts[0]), until=from_micros(starts[-1] + win.width_us))
    filter_cols = tuple(c for c in filters if c not in cols)
    grain = DAY_US if win.width_us == DAY_US else HOUR_US
    grouped = analytics.grouped(flt, cols + filter_cols, grain=grain, measures=measures)
    for key, m in grouped.items():
        dims = dict(zip(cols + filter_cols, key[1:], strict=True))
        if any(dims[c] not in allowed for c, allowed in filters.items()):
            continue
        bucket = starts[0] + (int(key[0]) - starts[0]) // win.width_us * win.width_us
        add_measures(out[bucket].setdefault(tuple(dims[c] for c in cols), {}), m)
    return out


def _null(value: Any) -> Any:
    return None if value in ("", None) else value


def _envelope(win: Window, data: list[dict[str, Any]]) -> dict[str, Any]:
    nxt = win.next_page()
    return {"data": data, "has_more": nxt is not None, "next_page": nxt}


def _bucket(start: int, width: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {
        "starting_at": from_micros(start).strftime(fmt),
        "ending_at": from_micros(start + width).strftime(fmt),
        "results": results,
    }


def usage_report(
    analytics: Analytics,
    params: Mapping[str, str | None],
    lists: Mapping[str, list[str]],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``GET /v1/organizations/usage_report/messages`` from the rollups."""
    win = window(params, widths=("1d", "1h"), now=now or datetime.now(UTC))
    group_by = lists.get("group_by", [])
    unknown = [g for g in group_by if g not in USAGE_DIMS]
    if unknown:
        raise AdminApiError(f"group_by: unknown value(s) {unknown}; use {', '.join(USAGE_DIMS)}")
    cols = tuple(c for g in group_by if (c := USAGE_DIMS[g]) is not None)
    filters = {USAGE_FILTERS[n]: v for n, v in lists.items() if n in USAGE_FILTERS and v}
    # spendgate's calls have no account or service account: filtering by one matches nothing.
    nothing = any(lists.get(n) for n in ("account_ids", "service_account_ids"))
    data = []
    for start, found in _grouped(analytics, win, cols, filters, USAGE_MEASURES).items():
        groups = {} if nothing else found
        results = []
        for key, m in sorted(groups.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
            dims = dict(zip(cols, key, strict=True))
            item: dict[str, Any] = {
                "uncached_input_tokens": m["input_tokens"],
                "cache_creation": {
                    "ephemeral_1h_input_tokens": m["cache_creation_1h_input_tokens"],
                    "ephemeral_5m_input_tokens": m["cache_creation_5m_input_tokens"],
                },
                "cache_read_input_tokens": m["cache_read_input_tokens"],
                "output_tokens": m["output_tokens"],
                "server_tool_use": {"web_search_requests": m["web_search_requests"]},
            }
            for name, col in USAGE_DIMS.items():
                item[name] = _null(dims.get(col)) if col in cols else None
            results.append(item)
        data.append(_bucket(start, win.width_us, results))
    return _envelope(win, data)


def display_name(model: str) -> str:
    """``claude-sonnet-4-5-20250929`` → ``Claude Sonnet 4.5`` (as Anthropic's descriptions)."""
    parts = [p for p in model.split("-") if not re.fullmatch(r"\d{8}", p)]
    words: list[str] = []
    for part in parts:
        if part.isdigit() and words and words[-1][-1].isdigit():
            words[-1] += f".{part}"
        else:
            words.append(part.capitalize() if not part.isdigit() else part)
    return " ".join(words) or model


def _cents(nanos: int) -> str:
    return format(Decimal(nanos).scaleb(-7).quantize(Decimal("0.0000001")), "f")


def cost_report(
    analytics: Analytics,
    params: Mapping[str, str | None],
    lists: Mapping[str, list[str]],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``GET /v1/organizations/cost_report`` from the rollups (amounts in cents)."""
    win = window(params, widths=("1d",), now=now or datetime.now(UTC))
    group_by = lists.get("group_by", [])
    unknown = [g for g in group_by if g not in ("workspace_id", "description")]
    if unknown:
        raise AdminApiError(f"group_by: unknown value(s) {unknown}; use workspace_id, description")
    by_desc = "description" in group_by
    # A description names a model and a token type; Anthropic also fills the
    # service tier, context window and inference geo it applies to.
    described = ("model", "service_tier", "context_window", "inference_geo")
    cols = (("team",) if "workspace_id" in group_by else ()) + (described if by_desc else ())
    data = []
    for start, groups in _grouped(analytics, win, cols, {}, COST_MEASURES).items():
        results: list[dict[str, Any]] = []
        for key, m in sorted(groups.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
            dims = dict(zip(cols, key, strict=True))
            base = {
                "currency": "USD",
                "workspace_id": _null(dims.get("team")),
                "context_window": _null(dims.get("context_window")),
                "service_tier": _null(dims.get("service_tier")),
                "inference_geo": _null(dims.get("inference_geo")),
            }
            if not by_desc:
                amount = _cents(m["cost_nanousd"])
                results.append(
                    {"amount": amount, **base, "cost_type": None, "description": None,
                     "model": None, "token_type": None}
                )  # fmt: skip
                continue
            results.extend(_described(dims.get("model") or "", m, base))
        data.append(_bucket(start, win.width_us, results))
    return _envelope(win, data)


def _described(model: str, m: Measures, base: dict[str, Any]) -> list[dict[str, Any]]:
    name = display_name(model) if model else "Unknown model"
    out = []
    for token_type, col, label in _TOKEN_TYPES:
        if m[col]:
            out.append(
                {"amount": _cents(m[col]), **base, "cost_type": "tokens",
                 "description": f"{name} Usage - {label}", "model": model or None,
                 "token_type": token_type}
            )  # fmt: skip
    for col, cost_type, desc in (
        ("cost_web_search_nanousd", "web_search", "Web Search Usage"),
        ("cost_other_nanousd", "session_usage", f"{name} Usage - Other"),
    ):
        if m[col]:
            out.append(
                {"amount": _cents(m[col]), **base, "cost_type": cost_type, "description": desc,
                 "model": model or None if cost_type != "web_search" else None, "token_type": None}
            )  # fmt: skip
    return out

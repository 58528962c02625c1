"""Pulling Anthropic's own usage and cost reports (Admin API) into spendgate.

``GET /v1/organizations/usage_report/messages`` and ``GET
/v1/organizations/cost_report`` are read with an Admin key (``sk-ant-admin…``),
one UTC day per bucket, following ``next_page`` until ``has_more`` is false, and
stored per day (:mod:`spendgate.storage.anthropic_reports`) for ``spendgate
reconcile``. The HTTP transport is a plain function, so tests and callers can
inject their own.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from spendgate.storage.anthropic_reports import AnthropicReports
from spendgate.storage.schema import to_micros

ANTHROPIC_VERSION = "2023-06-01"
USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
USAGE_GROUP_BY = ("model", "api_key_id", "workspace_id", "service_tier", "context_window")
COST_GROUP_BY = ("workspace_id", "description")
# Nano-dollars per unit of ``amount``: Anthropic documents cents; one third party
# reports dollars from the live API, so the unit can be chosen.
COST_UNITS = {"cents": 10_000_000, "dollars": 1_000_000_000}

# (url, headers, timeout) -> (HTTP status, body)
Transport = Callable[[str, Mapping[str, str], float], tuple[int, bytes]]


class AdminImportError(Exception):
    """The reports could not be fetched or read; the message says what to do."""


def urllib_transport(url: str, headers: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    """GET ``url`` with the standard library."""
    request = urllib.request.Request(url, headers=dict(headers), method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AdminImportError(
            f"cannot reach {url.split('?', maxsplit=1)[0]}: {reason}; check --base-url "
            "(SPENDGATE_UPSTREAM_URL) and the network"
        ) from exc


@dataclass
class AdminClient:
    """A minimal Admin API client: GET with the Admin key, pages followed."""

    base_url: str
    api_key: str
    transport: Transport = field(default=urllib_transport)
    timeout: float = 60.0
    max_pages: int = 10_000

    def pages(self, path: str, params: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
        """Every page of one report, following ``next_page``."""
        headers = {
            "x-api-key": self.api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "accept": "application/json",
            "user-agent": "spendgate-import",
        }
        page: str | None = None
        for _ in range(self.max_pages):
            query = params + ([("page", page)] if page else [])
            url = f"{self.base_url.rstrip('/')}{path}?{urlencode(query)}"
            status, body = self.transport(url, headers, self.timeout)
            data = _json(body)
            if status != 200:
                raise AdminImportError(_failure(status, data))
            if not isinstance(data, dict) or not isinstance(data.get("data"), list):
                raise AdminImportError(f"{path} answered something that is not a report page")
            yield data
            page = data.get("next_page")
            if not data.get("has_more") or not page:
                return
        raise AdminImportError(f"{path} kept answering has_more after {self.max_pages} pages")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _failure(status: int, data: Any) -> str:
    message = ""
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        message = str(data["error"].get("message") or "")
    hint = ""
    if status in (401, 403):
        hint = (
            "; use an Admin API key (sk-ant-admin…) from the Anthropic console in "
            "ANTHROPIC_ADMIN_KEY or --admin-key (an organisation admin creates it)"
        )
    return f"Anthropic's Admin API answered HTTP {status}: {message or 'no message'}{hint}"


def _day(text: Any) -> int:
    try:
        at = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as exc:
        raise AdminImportError(f"a report bucket has no valid starting_at: {text!r}") from exc
    return to_micros(at.astimezone(UTC))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def usage_rows(pages: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Usage report results as rows of ``anthropic_usage_daily``."""
    for page in pages:
        for bucket in page["data"]:
            day = _day(bucket.get("starting_at"))
            for result in bucket.get("results") or []:
                creation = _dict(result.get("cache_creation"))
                tools = _dict(result.get("server_tool_use"))
                yield {
                    "day": day,
                    **{d: result.get(d) or "" for d in USAGE_GROUP_BY},
                    "uncached_input_tokens": _int(result.get("uncached_input_tokens")),
                    "output_tokens": _int(result.get("output_tokens")),
                    "cache_read_input_tokens": _int(result.get("cache_read_input_tokens")),
                    "cache_creation_5m_input_tokens": _int(
                        creation.get("ephemeral_5m_input_tokens")
                    ),
                    "cache_creation_1h_input_tokens": _int(
                        creation.get("ephemeral_1h_input_tokens")
                    ),
                    "web_search_requests": _int(tools.get("web_search_requests")),
                }


def cost_rows(pages: Iterator[dict[str, Any]], unit: str) -> Iterator[dict[str, Any]]:
    """Cost report results as rows of ``anthropic_cost_daily`` (amounts in nano-dollars)."""
    factor = COST_UNITS[unit]
    for page in pages:
        for bucket in page["data"]:
            day = _day(bucket.get("starting_at"))
            for result in bucket.get("results") or []:
                try:
                    amount = Decimal(str(result.get("amount") or "0"))
                except InvalidOperation as exc:
                    raise AdminImportError(f"a cost has no valid amount: {result!r}") from exc
                yield {
                    "day": day,
                    "workspace_id": result.get("workspace_id") or "",
                    "description": result.get("description") or "",
                    "model": result.get("model") or "",
                    "cost_type": result.get("cost_type") or "",
                    "token_type": result.get("token_type") or "",
                    "service_tier": result.get("service_tier") or "",
                    "context_window": result.get("context_window") or "",
                    "amount_nanousd": int((amount * factor).to_integral_value()),
                }


@dataclass(frozen=True)
class ImportSummary:
    """What one import stored."""

    since: datetime
    until: datetime
    usage_rows: int
    cost_rows: int


def day_span(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """[since, until) widened to whole UTC days (Anthropic's daily buckets)."""
    start = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = until.astimezone(UTC)
    floor = end.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, floor if floor == end else floor + timedelta(days=1)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def import_reports(
    client: AdminClient,
    reports: AnthropicReports,
    since: datetime,
    until: datetime,
    *,
    unit: str = "cents",
    now: datetime | None = None,
) -> ImportSummary:
    """Fetch both reports for the UTC days covering [since, until) and store them.

    The days fetched replace what an earlier import stored for them.
    """
    if unit not in COST_UNITS:
        raise AdminImportError(f"cost unit must be cents or dollars, not {unit!r}")
    start, end = day_span(since, until)
    if start >= end:
        raise AdminImportError("since must be before until")
    span = [("starting_at", _stamp(start)), ("ending_at", _stamp(end)), ("bucket_width", "1d")]
    usage_query = span + [("limit", "31")] + [("group_by[]", g) for g in USAGE_GROUP_BY]
    cost_query = span + [("limit", "31")] + [("group_by[]", g) for g in COST_GROUP_BY]
    start_us, end_us = to_micros(start), to_micros(end)
    usage = [
        row
        for row in usage_rows(client.pages(USAGE_PATH, usage_query))
        if start_us <= row["day"] < end_us
    ]
    costs = [
        row
        for row in cost_rows(client.pages(COST_PATH, cost_query), unit)
        if start_us <= row["day"] < end_us
    ]
    at = now or datetime.now(UTC)
    kept_usage = reports.replace_usage(start_us, end_us, usage, at)
    kept_costs = reports.replace_costs(start_us, end_us, costs, at)
    return ImportSummary(start, end, kept_usage, kept_costs)

"""The fake's Admin API reports: ``usage_report/messages`` and ``cost_report``.

Tests load buckets shaped exactly like Anthropic's answers (``{"starting_at",
"ending_at", "results": [...]}``, see ``docs`` and the research notes) with
:meth:`FakeUpstream.set_admin_reports`; the fake serves the buckets that start
inside ``[starting_at, ending_at)``, ``limit`` per page, with Anthropic's
``has_more`` / ``next_page`` pagination (``page_`` + base64 of the next bucket's
start). Only Admin keys (``sk-ant-admin…``) are accepted, as upstream.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from aiohttp import web

from spendgate.testing.wire import STATE, error_response, invalid_request, json_response

USAGE = "usage"
COST = "cost"
_DEFAULT_LIMIT = {USAGE: 7, COST: 7}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _page_token(stamp: str) -> str:
    return "page_" + base64.b64encode(stamp.encode()).decode()


async def _report(request: web.Request, kind: str) -> web.StreamResponse:
    if not request.headers.get("x-api-key", "").startswith("sk-ant-admin"):
        message = "This endpoint requires an Admin API key (sk-ant-admin...)."
        return error_response(request, 401, "authentication_error", message)
    query = request.query
    if "starting_at" not in query:
        return invalid_request(request, "starting_at: Field required")
    try:
        start = _when(query["starting_at"])
        end = _when(query["ending_at"]) if "ending_at" in query else datetime.now(UTC)
        limit = int(query.get("limit", _DEFAULT_LIMIT[kind]))
        page = query.get("page")
        if page:
            start = _when(base64.b64decode(page.removeprefix("page_")).decode())
    except ValueError as exc:
        return invalid_request(request, str(exc))
    buckets = [
        b
        for b in request.app[STATE].admin_reports.get(kind, [])
        if start <= _when(b["starting_at"]) < end
    ]
    buckets.sort(key=lambda b: _when(b["starting_at"]))
    shown, rest = buckets[:limit], buckets[limit:]
    return json_response(
        {
            "data": shown,
            "has_more": bool(rest),
            "next_page": _page_token(rest[0]["starting_at"]) if rest else None,
        }
    )


async def usage_report(request: web.Request) -> web.StreamResponse:
    """``GET /v1/organizations/usage_report/messages``."""
    return await _report(request, USAGE)


async def cost_report(request: web.Request) -> web.StreamResponse:
    """``GET /v1/organizations/cost_report``."""
    return await _report(request, COST)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the Admin API report endpoints."""
    router.add_get("/v1/organizations/usage_report/messages", usage_report)
    router.add_get("/v1/organizations/cost_report", cost_report)

"""Anthropic Admin API compatible reports under ``/v1/organizations`` (served, not forwarded).

Errors answer in Anthropic's own shape so Admin API clients understand them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from spendgate.adminapi import AdminApiError, cost_report, usage_report
from spendgate.api.analytics import _store
from spendgate.storage.analytics import Analytics

router = APIRouter(prefix="/v1/organizations", tags=["anthropic admin api"])

_SCALARS = ("starting_at", "ending_at", "bucket_width", "limit", "page")


def _answer(request: Request, report: Callable[..., dict[str, Any]]) -> JSONResponse:
    query = request.query_params
    params = {name: query.get(name) for name in _SCALARS}
    lists: dict[str, list[str]] = {}
    for name in {k.removesuffix("[]") for k in query}:
        if name not in _SCALARS:
            lists[name] = query.getlist(f"{name}[]") + query.getlist(name)
    try:
        body = report(Analytics(_store(request)), params, lists)
    except AdminApiError as exc:
        error = {"type": "error", "error": {"type": "invalid_request_error", "message": str(exc)}}
        return JSONResponse(error, status_code=400)
    return JSONResponse(body)


@router.get("/usage_report/messages")
def messages_usage_report(request: Request) -> JSONResponse:
    """Token usage per bucket like Anthropic's Admin API: ``starting_at`` (required),
    ``ending_at``, ``bucket_width`` (1d, 1h), ``limit``, ``page``, ``group_by[]``
    (api_key_id, workspace_id, model, service_tier, context_window, inference_geo, speed) and
    filters ``api_key_ids[]``, ``workspace_ids[]``, ``models[]``, ``service_tiers[]``,
    ``context_window[]``, ``inference_geos[]``, ``speeds[]``. Keys are spendgate proxy keys,
    workspaces are teams."""
    return _answer(request, usage_report)


@router.get("/cost_report")
def organization_cost_report(request: Request) -> JSONResponse:
    """Cost per day like Anthropic's Admin API: ``starting_at`` (required), ``ending_at``,
    ``bucket_width`` (1d), ``limit``, ``page``, ``group_by[]`` (workspace_id, description).
    ``amount`` is a decimal string in cents (USD), as Anthropic documents it."""
    return _answer(request, cost_report)

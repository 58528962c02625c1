"""``/api/requests``: the request log, manual entry and deletion."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from spendgate.api.errors import ApiError
from spendgate.manual import ManualCall, manual_record
from spendgate.storage import CallFilter, Store
from spendgate.timeparse import TimeError, parse_when

if TYPE_CHECKING:
    from spendgate.app import Gateway

router = APIRouter(prefix="/api/requests", tags=["requests"])


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _store(request: Request) -> Store:
    store = _gateway(request).store
    if store is None:
        raise ApiError(503, "not_ready", "the gateway is still starting; retry in a moment")
    return store


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except TimeError as exc:
        raise ApiError(400, "invalid_time", f"{name}: {exc}") from exc


def build_filter(
    *,
    since: str | None = None,
    until: str | None = None,
    model: str | None = None,
    source: str | None = None,
    status: str | None = None,
    key_id: str | None = None,
    credential: str | None = None,
    team: str | None = None,
    user: str | None = None,
    project: str | None = None,
    session_id: str | None = None,
    pricing_status: str | None = None,
    endpoint: str | None = None,
    tag: str | None = None,
) -> CallFilter:
    """Query parameters shared by the request log, deletion and exports."""
    if status is not None and status not in ("ok", "error") and not status.isdigit():
        raise ApiError(400, "invalid_status", "status must be ok, error or an HTTP status code")
    return CallFilter(
        since=_time(since, "since"),
        until=_time(until, "until"),
        model=model,
        source=source,
        status=status,
        key_id=key_id,
        credential=credential,
        team=team,
        user=user,
        project=project,
        session_id=session_id,
        pricing_status=pricing_status,
        endpoint=endpoint,
        tag=tag,
    )


# The filters as query parameters of a route (the request log, exports, chargeback...).
Filters = Annotated[CallFilter, Depends(build_filter)]


@router.get("")
def list_requests(
    request: Request,
    flt: Filters,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Recorded calls, newest first, ``limit`` per page; pass ``next_cursor`` back as ``cursor``.

    Times are RFC 3339 UTC, tokens integers, money decimal strings in USD
    (``cost_usd`` is null while a call is unpriced).
    """
    try:
        page = _store(request).list_calls(flt, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from exc
    return {"data": page.data, "next_cursor": page.next_cursor}


@router.get("/{call_id}")
def get_request(request: Request, call_id: str) -> dict[str, Any]:
    """One recorded call, with its cost breakdown and raw usage."""
    found = _store(request).get_call(call_id)
    if found is None:
        raise ApiError(404, "not_found", f"no call with id {call_id}")
    return found


class ManualCallIn(BaseModel):
    """A call logged by hand."""

    model: str = Field(min_length=1, examples=["claude-sonnet-4-5"])
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cache_read_input_tokens: int = Field(default=0, ge=0)
    cache_creation_5m_input_tokens: int = Field(default=0, ge=0)
    cache_creation_1h_input_tokens: int = Field(default=0, ge=0)
    web_search_requests: int = Field(default=0, ge=0)
    service_tier: str | None = None
    inference_geo: str | None = None
    speed: str | None = None
    at: datetime | None = Field(default=None, description="When the call happened (RFC 3339)")
    note: str | None = Field(default=None, max_length=2000)
    user: str | None = None
    project: str | None = None
    team: str | None = None
    tags: list[str] = Field(default_factory=list)


@router.post("", status_code=201)
def log_request(request: Request, body: ManualCallIn) -> dict[str, Any]:
    """Log a call by hand; it is priced like a proxied call and returned as stored."""
    if body.at is not None and body.at.tzinfo is None:
        raise ApiError(400, "invalid_time", "at: give a time zone, e.g. 2026-11-01T09:00:00Z")
    store = _store(request)
    record = manual_record(ManualCall(**body.model_dump()), _gateway(request).book)
    store.insert_calls([record])
    stored = store.get_call(record.id)
    assert stored is not None
    return stored


@router.delete("")
def delete_requests(
    request: Request,
    confirm: Annotated[
        str | None, Query(description="Must be 'yes': deletion cannot be undone")
    ] = None,
    since: str | None = None,
    until: str | None = None,
    model: str | None = None,
    source: str | None = None,
    status: str | None = None,
    key_id: str | None = None,
    project: str | None = None,
    user: str | None = None,
) -> dict[str, Any]:
    """Delete recorded calls matching the filters (all of them without filters).

    Requires ``confirm=yes``. Answers how many rows were removed.
    """
    if confirm != "yes":
        raise ApiError(
            400,
            "confirmation_required",
            "deleting calls cannot be undone; repeat the request with ?confirm=yes",
        )
    flt = build_filter(
        since=since,
        until=until,
        model=model,
        source=source,
        status=status,
        key_id=key_id,
        user=user,
        project=project,
    )
    deleted = _store(request).delete_calls(flt)
    return {"deleted": deleted}

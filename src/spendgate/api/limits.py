"""``/api/limits``: rate limits (requests and tokens per minute) and their busiest buckets."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from spendgate.api.errors import ApiError
from spendgate.api.governance import governance, translated
from spendgate.limits.admin import create_limit
from spendgate.limits.guard import wall_us
from spendgate.limits.model import MAX_PER_MINUTE
from spendgate.limits.report import limit_report
from spendgate.storage.limits import LimitStore

router = APIRouter(prefix="/api/limits", tags=["rate limits"])


class RateLimitIn(BaseModel):
    """A new rate limit on one scope, with at least one rate."""

    scope: Literal["global", "key", "team", "user", "project"]
    value: str | None = Field(
        default=None,
        description="Key id, team name or id, user or project; `*` for each one separately; "
        "null if global",
        examples=["*"],
    )
    requests_per_minute: int | None = Field(default=None, ge=1, le=MAX_PER_MINUTE, examples=[60])
    input_tokens_per_minute: int | None = Field(default=None, ge=1, le=MAX_PER_MINUTE)
    output_tokens_per_minute: int | None = Field(default=None, ge=1, le=MAX_PER_MINUTE)
    name: str | None = Field(default=None, max_length=200)


def _limits(request: Request) -> LimitStore:
    found = governance(request).gov.limits
    if found is None:
        raise ApiError(503, "not_ready", "the gateway is still starting; retry in a moment")
    return found


@router.get("")
def list_limits(request: Request) -> list[dict[str, Any]]:
    """Every rate limit with its fullest buckets: units in use per rate, and refusals."""
    store, now = _limits(request), wall_us()
    return [limit_report(store, limit, now) for limit in store.list_limits()]


@router.post("", status_code=201)
def create(request: Request, body: RateLimitIn) -> dict[str, Any]:
    """Create a rate limit; it applies to new calls at once on this gateway (on other
    replicas within ``SPENDGATE_KEY_CACHE_TTL`` seconds)."""
    h = governance(request)
    store = _limits(request)
    with translated():
        limit = create_limit(
            h.keys,
            store,
            scope=body.scope,
            value=body.value,
            requests_per_minute=body.requests_per_minute,
            input_tokens_per_minute=body.input_tokens_per_minute,
            output_tokens_per_minute=body.output_tokens_per_minute,
            name=body.name,
        )
    h.gov.changed()
    return limit_report(store, limit, wall_us())


@router.get("/{limit_id}")
def get_limit(request: Request, limit_id: str) -> dict[str, Any]:
    """One rate limit and its fullest buckets."""
    store = _limits(request)
    with translated():
        limit = store.get_limit(limit_id)
    return limit_report(store, limit, wall_us())


@router.delete("/{limit_id}")
def delete(request: Request, limit_id: str) -> dict[str, Any]:
    """Delete a rate limit and its buckets."""
    h = governance(request)
    store = _limits(request)
    with translated():
        store.delete_limit(limit_id)
    h.gov.changed()
    return {"deleted": limit_id}

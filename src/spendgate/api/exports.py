"""``/api/export``: calls as CSV / JSON / NDJSON (streamed), chargeback, FOCUS CSV."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from spendgate.api.analytics import _store
from spendgate.api.errors import ApiError
from spendgate.api.requests import Filters
from spendgate.exports import (
    CONTENT_TYPES,
    ExportError,
    chargeback,
    chargeback_csv,
    export_calls,
    focus_csv,
)
from spendgate.ranges import resolve
from spendgate.storage.analytics import Analytics
from spendgate.timeparse import TimeError, parse_zone

router = APIRouter(prefix="/api/export", tags=["exports"])


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("")
def export(
    request: Request,
    flt: Filters,
    format: Annotated[str, Query(pattern="^(csv|json|ndjson)$")] = "csv",
) -> StreamingResponse:
    """Recorded calls matching the filters (the same as ``/api/requests``), oldest first,
    streamed in constant memory. CSV has flat columns; JSON and NDJSON carry the full call
    objects."""
    body = export_calls(_store(request), flt, format)
    return StreamingResponse(
        body, media_type=CONTENT_TYPES[format], headers=_attachment(f"spendgate-calls.{format}")
    )


@router.get("/chargeback", response_model=None)
def chargeback_statement(
    request: Request,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="e.g. 2026-11")],
    tz: str | None = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> dict[str, Any] | StreamingResponse:
    """Per-team statement for one calendar month: exact cost and a charge rounded to cents
    (largest remainder) so the team lines add up to the total to the cent."""
    try:
        statement = chargeback(Analytics(_store(request)), month, parse_zone(tz))
    except (ExportError, TimeError) as exc:
        raise ApiError(400, "invalid_query", str(exc)) from exc
    if format == "csv":
        return StreamingResponse(
            chargeback_csv(statement),
            media_type=CONTENT_TYPES["csv"],
            headers=_attachment(f"chargeback-{month}.csv"),
        )
    return statement


@router.get("/focus")
def focus(
    request: Request,
    period: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> StreamingResponse:
    """FOCUS-format CSV (FinOps Open Cost and Usage Specification) for finance tools: one row
    per UTC day, model, key, team, user, project and charge type."""
    try:
        rng = resolve(period, since, until, None)
    except TimeError as exc:
        raise ApiError(400, "invalid_time", str(exc)) from exc
    body = focus_csv(Analytics(_store(request)), rng.since, rng.until)
    return StreamingResponse(
        body, media_type=CONTENT_TYPES["csv"], headers=_attachment("spendgate-focus.csv")
    )

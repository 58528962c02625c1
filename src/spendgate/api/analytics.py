"""``/api/analytics``: summary, timeseries, breakdown, sessions and forecast (from rollups)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from spendgate.api.errors import ApiError
from spendgate.api.requests import build_filter
from spendgate.forecast import budget_forecasts, month_end
from spendgate.ranges import PRESET_NAMES, Range, resolve
from spendgate.storage import CallFilter, Store
from spendgate.storage.analytics import Analytics, AnalyticsError
from spendgate.storage.budgets import BudgetStore
from spendgate.storage.keys import KeyStore, NotFound
from spendgate.timeparse import TimeError
from spendgate.timeseries import timeseries

if TYPE_CHECKING:
    from spendgate.app import Gateway
    from spendgate.budgets.model import Budget

router = APIRouter(prefix="/api/analytics", tags=["analytics"])

PERIOD_HELP = f"Preset: {', '.join(PRESET_NAMES)} (default 30d); since/until override it."


def _store(request: Request) -> Store:
    gateway: Gateway = request.app.state.gateway
    if gateway.store is None:
        raise ApiError(503, "not_ready", "the gateway is still starting; retry in a moment")
    return gateway.store


def scope(
    period: Annotated[str | None, Query(description=PERIOD_HELP)] = None,
    since: Annotated[str | None, Query(description="RFC 3339, a date, or 30d")] = None,
    until: Annotated[str | None, Query(description="RFC 3339, a date, or now")] = None,
    tz: Annotated[str | None, Query(description="IANA time zone (default UTC)")] = None,
    model: str | None = None,
    source: str | None = None,
    status: Annotated[str | None, Query(description="ok, error or an HTTP status")] = None,
    key_id: str | None = None,
    team: str | None = None,
    user: str | None = None,
    project: str | None = None,
    endpoint: str | None = None,
    tag: str | None = None,
) -> tuple[Range, CallFilter]:
    """The time range and filters every analytics endpoint accepts."""
    try:
        rng = resolve(period, since, until, tz)
    except TimeError as exc:
        raise ApiError(400, "invalid_time", str(exc)) from exc
    flt = build_filter(
        model=model,
        source=source,
        status=status,
        key_id=key_id,
        team=team,
        user=user,
        project=project,
        endpoint=endpoint,
        tag=tag,
    )
    return rng, replace(flt, since=rng.since, until=rng.until)


Scoped = Annotated[tuple[Range, CallFilter], Depends(scope)]


def _answer(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = fn(*args, **kwargs)
    except AnalyticsError as exc:
        raise ApiError(400, "invalid_query", str(exc)) from exc
    return result


@router.get("/summary")
def summary(request: Request, scoped: Scoped) -> dict[str, Any]:
    """Spend, calls, tokens by class, average cost per call, latency and time-to-first-token
    percentiles (p50/p95/p99, from log-spaced histograms: ±19 %), error rate and cache savings,
    with the same figures for the previous period of equal length and the change in percent.

    Money is a decimal string in USD.
    """
    _, flt = scoped
    return _answer(Analytics(_store(request)).summary, flt)


@router.get("/timeseries")
def timeseries_(
    request: Request,
    scoped: Scoped,
    granularity: Annotated[str, Query(pattern="^(hour|day|week|month)$")] = "day",
    stack: Annotated[
        str | None, Query(description="Split each point by model, team, key, user, project, ...")
    ] = None,
) -> dict[str, Any]:
    """Spend and calls per hour, day, week or month in the requested time zone (``tz``),
    optionally stacked by one dimension; empty buckets are included. Local days are sums of UTC
    hours, exact for whole-hour offsets and approximated for half-hour zones."""
    rng, flt = scoped
    store = _store(request)
    return _answer(
        timeseries, Analytics(store), flt, granularity=granularity, zone=rng.zone, stack=stack
    )


@router.get("/breakdown")
def breakdown(
    request: Request,
    scoped: Scoped,
    by: Annotated[
        str,
        Query(
            description="model, key, team, user, project, tag, endpoint, status, source, "
            "service_tier, error_type, context_window or session"
        ),
    ] = "model",
    then: Annotated[str | None, Query(description="Optional second dimension")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Spend, calls and tokens per value of one dimension (costliest first), with each value's
    share of the total (``by=key``: and the key's display ``color``). ``by=session`` lists
    Claude Code sessions, newest first (UTC-day precision); with ``then=model`` each session
    also lists its spend per model."""
    _, flt = scoped
    analytics = Analytics(_store(request))
    if by == "session":
        if then not in (None, "model"):
            raise ApiError(400, "invalid_query", "sessions can be split by model only (then=model)")
        try:
            rows = analytics.sessions(flt, limit=limit, by_model=then == "model")
        except AnalyticsError as exc:
            raise ApiError(400, "invalid_query", str(exc)) from exc
        return {"by": "session", "data": [{"key": r["session_id"], **r} for r in rows]}
    answer = _answer(analytics.breakdown, flt, by, then=then, limit=limit)
    if by == "key":  # the key's display colour, as GET /api/keys shows it (null: none)
        colors = {k.id: k.color for k in KeyStore(_store(request).engine).list_keys()}
        answer["data"] = [{**row, "color": colors.get(row["key"])} for row in answer["data"]]
    return answer


def _team_budgets(store: Store, budgets: list[Budget], team: str) -> list[Budget]:
    """The budgets that belong to one team: on the team itself or on one of its keys.
    Budgets on users, projects, tags or everything span teams and are left out."""
    keys = KeyStore(store.engine)
    try:
        team_keys = {k.id for k in keys.list_keys(team_id=keys.find_team(team).id)}
    except NotFound:
        team_keys = set()
    return [
        b
        for b in budgets
        if (b.scope == "team" and b.scope_value == team)
        or (b.scope == "key" and b.scope_value in team_keys)
    ]


@router.get("/forecast")
def forecast(request: Request, scoped: Scoped) -> dict[str, Any]:
    """Month-end projection of the filtered spend, and per budget the spend in its current
    period, its projection and the date it would be exhausted at the current run rate.
    The method and its 90 % uncertainty band are stated in each answer. With ``team``, only
    that team's budgets (on the team or its keys) are listed, which is what a viewer scoped
    to teams may ask for."""
    rng, flt = scoped
    store = _store(request)
    analytics = Analytics(store)
    flt = replace(flt, since=None, until=None)
    budgets = BudgetStore(store.engine).list_budgets()
    if flt.team is not None:
        budgets = _team_budgets(store, budgets, flt.team)
    return {
        "month_end": _answer(month_end, analytics, flt, zone=rng.zone),
        "budgets": budget_forecasts(analytics, budgets, zone=rng.zone),
    }

"""``/api/budgets``: hard budgets and their current standing."""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from spendgate.api.errors import reject_nulls
from spendgate.api.governance import governance, translated
from spendgate.budgets.admin import create_budget, update_budget
from spendgate.budgets.model import DEFAULT_THRESHOLDS
from spendgate.budgets.report import budget_report
from spendgate.money import parse_usd
from spendgate.records import utcnow

router = APIRouter(prefix="/api/budgets", tags=["budgets"])


class BudgetIn(BaseModel):
    """A new budget on one scope."""

    scope: Literal["global", "team", "key", "user", "project", "tag"]
    value: str | None = Field(
        default=None, description="Team name or id, key id, user, project or tag; null if global"
    )
    limit_usd: str = Field(examples=["250.00"], description="Hard limit, decimal USD")
    period: Literal["daily", "weekly", "monthly", "none"] = "monthly"
    name: str | None = Field(default=None, max_length=200)
    thresholds: list[int] = Field(default_factory=lambda: list(DEFAULT_THRESHOLDS))


class LimitIn(BaseModel):
    """A new hard limit."""

    limit_usd: str = Field(examples=["500"])


class BudgetPatch(BaseModel):
    """Changes to a budget; fields left out stay as they are. Scope and period are fixed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    limit_usd: str | None = Field(
        default=None, examples=["750.00"], description="Hard limit, decimal USD"
    )
    thresholds: list[int] | None = Field(
        default=None, max_length=20, description="Soft thresholds in percent, 1 to 1000"
    )


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.gateway.settings.budget_timezone)


@router.get("")
def list_budgets(request: Request) -> list[dict[str, Any]]:
    """Every budget with this period's spend, open reservations, room left and reset time."""
    store = governance(request).budgets
    zone, now = _zone(request), utcnow()
    return [budget_report(store, b, zone, now) for b in store.list_budgets()]


@router.post("", status_code=201)
def create(request: Request, body: BudgetIn) -> dict[str, Any]:
    """Create a budget; it applies to new calls at once on this gateway."""
    h = governance(request)
    with translated():
        budget = create_budget(
            h.keys,
            h.budgets,
            scope=body.scope,
            value=body.value,
            period=body.period,
            limit_nanousd=parse_usd(body.limit_usd),
            name=body.name,
            thresholds=body.thresholds,
        )
    h.gov.changed()
    return budget_report(h.budgets, budget, _zone(request), utcnow())


@router.get("/{budget_id}")
def get_budget(request: Request, budget_id: str) -> dict[str, Any]:
    """One budget and its current standing."""
    store = governance(request).budgets
    with translated():
        budget = store.get_budget(budget_id)
    return budget_report(store, budget, _zone(request), utcnow())


@router.put("/{budget_id}/limit")
def set_limit(request: Request, budget_id: str, body: LimitIn) -> dict[str, Any]:
    """Change a budget's hard limit."""
    h = governance(request)
    with translated():
        budget = h.budgets.set_limit(budget_id, parse_usd(body.limit_usd))
    h.gov.changed()
    return budget_report(h.budgets, budget, _zone(request), utcnow())


@router.patch("/{budget_id}")
def update(request: Request, budget_id: str, body: BudgetPatch) -> dict[str, Any]:
    """Rename a budget, change its hard limit or its alert thresholds.

    A lower limit applies to new calls at once on this gateway; a lease another
    gateway took under the old limit goes back when it next reloads budgets.
    """
    h = governance(request)
    reject_nulls(body)
    with translated():
        budget = update_budget(
            h.budgets,
            budget_id,
            name=body.name,
            limit_nanousd=None if body.limit_usd is None else parse_usd(body.limit_usd),
            thresholds=body.thresholds,
        )
    h.gov.changed()
    return budget_report(h.budgets, budget, _zone(request), utcnow())


@router.delete("/{budget_id}")
def delete(request: Request, budget_id: str) -> dict[str, Any]:
    """Delete a budget and its counters."""
    h = governance(request)
    with translated():
        h.budgets.delete_budget(budget_id)
    h.gov.changed()
    return {"deleted": budget_id}

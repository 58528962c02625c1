"""Creating budgets with their scope checked (shared by the CLI and the API)."""

from __future__ import annotations

from collections.abc import Sequence

from spendgate.budgets.model import DEFAULT_THRESHOLDS, PERIODS, SCOPES, Budget, Period, Scope
from spendgate.storage.budgets import BudgetStore
from spendgate.storage.keys import KeyStore


def check_scope(keys: KeyStore, scope: str, value: str | None) -> tuple[Scope, str]:
    """A valid (scope, scope value): a team by name or id becomes its name, a key must exist."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
    if scope == "global":
        return "global", ""
    if not value:
        raise ValueError(f"a {scope} budget needs a value (which {scope}?)")
    if scope == "team":
        return "team", keys.find_team(value).name
    if scope == "key":
        return "key", keys.get_key(value).id
    return scope, value  # type: ignore[return-value]  # checked against SCOPES above


def create_budget(
    keys: KeyStore,
    budgets: BudgetStore,
    *,
    scope: str,
    value: str | None,
    period: str,
    limit_nanousd: int,
    name: str | None = None,
    thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
) -> Budget:
    """Validate and store a budget; :class:`ValueError` or ``NotFound`` says what is wrong."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; use one of {', '.join(PERIODS)}")
    if any(not 0 < t <= 1000 for t in thresholds):
        raise ValueError("thresholds are percentages between 1 and 1000")
    checked_scope, checked_value = check_scope(keys, scope, value)
    period_value: Period = period  # type: ignore[assignment]  # checked against PERIODS above
    return budgets.create_budget(
        scope=checked_scope,
        scope_value=checked_value,
        period=period_value,
        limit_nanousd=limit_nanousd,
        name=name,
        thresholds=thresholds,
    )

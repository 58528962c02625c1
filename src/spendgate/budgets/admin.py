"""Creating and changing budgets, checked (shared by the CLI and the API)."""

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


def check_thresholds(thresholds: Sequence[int]) -> None:
    """:class:`ValueError` unless every threshold is a percentage from 1 to 1000."""
    if any(not 0 < t <= 1000 for t in thresholds):
        raise ValueError("thresholds are percentages between 1 and 1000, e.g. 50, 80, 100")


def update_budget(
    budgets: BudgetStore,
    budget_id: str,
    *,
    name: str | None = None,
    limit_nanousd: int | None = None,
    thresholds: Sequence[int] | None = None,
) -> Budget:
    """Validate and store a change of name, limit or thresholds (None: leave as is).

    A gateway that holds a lease on the budget gives it back once it sees a new
    limit (:meth:`~spendgate.budgets.guard.BudgetGuard.budgets`).
    """
    if thresholds is not None:
        check_thresholds(thresholds)
    return budgets.update_budget(
        budget_id, name=name, limit_nanousd=limit_nanousd, thresholds=thresholds
    )


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
    check_thresholds(thresholds)
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

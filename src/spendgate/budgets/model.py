"""What a budget is: a hard limit on the spend of one scope over a calendar period."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from spendgate.money import format_usd
from spendgate.records import Attribution

Scope = Literal["global", "team", "key", "user", "project", "tag"]
Period = Literal["daily", "weekly", "monthly", "none"]
SCOPES: tuple[str, ...] = get_args(Scope)
PERIODS: tuple[str, ...] = get_args(Period)
DEFAULT_THRESHOLDS = (50, 80, 100)


@dataclass(frozen=True)
class Budget:
    """One budget. ``scope_value`` is the team name, key id, user, project or tag ("" if global)."""

    id: str
    name: str
    scope: Scope
    scope_value: str
    period: Period
    limit_nanousd: int
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def applies_to(self, who: Attribution) -> bool:
        """Whether a call attributed to ``who`` counts against this budget."""
        value = self.scope_value
        match self.scope:
            case "global":
                return True
            case "team":
                return who.team == value
            case "key":
                return who.key_id == value
            case "user":
                return who.user == value
            case "project":
                return who.project == value
            case "tag":
                return value in who.tags
        return False

    def describe(self) -> str:
        """``team Engineering, monthly`` — for messages."""
        where = "all calls" if self.scope == "global" else f"{self.scope} {self.scope_value}"
        return f"{where}, {self.period if self.period != 'none' else 'no reset'}"

    def to_api(self) -> dict[str, Any]:
        """The public JSON shape (money as decimal strings in USD)."""
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "scope_value": self.scope_value or None,
            "period": self.period,
            "limit_usd": format_usd(self.limit_nanousd),
            "thresholds": list(self.thresholds),
            "created_at": (
                self.created_at.isoformat().replace("+00:00", "Z") if self.created_at else None
            ),
        }


# Attributions remembered by a BudgetIndex before it starts over (a call's tags are
# part of it, so a client sending ever-new tags must not grow it without bound), and
# the most tags an attribution may have to be remembered (each tag is up to 200
# characters: at most ~2 MB kept).
_MATCHES_KEPT = 1024
_TAGS_KEPT = 4


class BudgetIndex:
    """Budgets found by the values a call is attributed to, not by trying each one.

    Built from a list in id order (the lock order); :meth:`matching` answers what
    :meth:`Budget.applies_to` would, in that order, in time that does not grow with
    the number of budgets (a company with a budget per user or key has thousands),
    and remembers its answer per attribution.
    """

    def __init__(self, budgets: list[Budget]) -> None:
        self.budgets = budgets
        self._everyone: list[tuple[int, Budget]] = []
        self._by_value: dict[tuple[str, str], list[tuple[int, Budget]]] = {}
        for position, budget in enumerate(budgets):
            if budget.scope == "global":
                self._everyone.append((position, budget))
            else:
                key = (budget.scope, budget.scope_value)
                self._by_value.setdefault(key, []).append((position, budget))
        self._matches: dict[tuple[str | None, ...], list[Budget]] = {}

    def matching(self, who: Attribution) -> list[Budget]:
        """The budgets a call attributed to ``who`` counts against, in id order."""
        memo = (who.key_id, who.team, who.user, who.project, *who.tags)
        found = self._matches.get(memo)
        if found is not None:
            return found
        hits = dict(self._everyone)
        by_value = self._by_value
        wanted = [("key", who.key_id), ("team", who.team), ("user", who.user)]
        wanted += [("project", who.project), *(("tag", tag) for tag in who.tags)]
        for scope, value in wanted:
            if value is not None:
                hits.update(by_value.get((scope, value), ()))
        found = [hits[position] for position in sorted(hits)]
        if len(who.tags) <= _TAGS_KEPT:
            if len(self._matches) >= _MATCHES_KEPT:
                self._matches.clear()
            self._matches[memo] = found
        return found

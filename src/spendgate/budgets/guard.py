"""Reserve-then-settle on the proxy's hot path.

Before a billable call is forwarded, :meth:`BudgetGuard.reserve` finds the
budgets that apply to it (from an in-memory copy of the definitions, refreshed
every ``ttl`` seconds) and, only if there are any, reserves the call's
worst-case cost against all of them in one database transaction (on a worker
thread). After the call, :meth:`BudgetGuard.settle` releases the reservation
and adds the actual cost; a failed call settles at $0.

If the budget database cannot be reached the call is refused with a 503
(budgets are hard: an outage must not turn them off).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from spendgate.budgets.estimate import worst_case
from spendgate.budgets.model import Budget
from spendgate.budgets.periods import period_window
from spendgate.money import format_usd
from spendgate.pricing import PriceBook, price_usage
from spendgate.proxy.auth import Resolved
from spendgate.proxy.errors import Refused
from spendgate.proxy.forward import RequestInfo
from spendgate.records import CallRecord, utcnow
from spendgate.storage.budgets import BudgetStore, Claim, Exhausted

log = logging.getLogger("spendgate.budgets")


@dataclass
class Reservation:
    """What one in-flight call holds against its budgets."""

    claims: list[Claim]
    amount: int
    settled: bool = field(default=False)


def _usd(nanos: int) -> str:
    return "$" + format_usd(nanos, 6)


class BudgetGuard:
    """The proxy's ``reserve`` and ``settle`` hooks for hard budgets."""

    def __init__(
        self,
        store: BudgetStore,
        book: PriceBook,
        *,
        zone: ZoneInfo,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.book = book
        self.zone = zone
        self.ttl = ttl
        self._clock = clock
        self._budgets: list[Budget] = []
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the cached definitions (after a change made in this process)."""
        self._loaded_at = None

    async def budgets(self) -> list[Budget]:
        """The budget definitions, at most ``ttl`` seconds old."""
        now = self._clock()
        if self._loaded_at is not None and now - self._loaded_at < self.ttl:
            return self._budgets
        async with self._lock:
            if self._loaded_at is None or self._clock() - self._loaded_at >= self.ttl:
                self._budgets = await asyncio.to_thread(self.store.list_budgets)
                self._loaded_at = self._clock()
        return self._budgets

    def claims_for(self, budgets: list[Budget], resolved: Resolved, at: datetime) -> list[Claim]:
        """The budgets a call counts against, each in its current period."""
        out = []
        for budget in budgets:
            if budget.applies_to(resolved.attribution):
                window = period_window(budget.period, at, self.zone)
                out.append(Claim(budget, window.key, window.start))
        return out

    async def reserve(self, resolved: Resolved, info: RequestInfo, path: str) -> Reservation | None:
        """Reserve the worst case on every applicable budget; :class:`Refused` if one is full."""
        try:
            budgets = await self.budgets()
            at = utcnow()
            claims = self.claims_for(budgets, resolved, at)
            if not claims:
                return None
            estimate = worst_case(
                self.book, model=info.model, body=info.body, max_tokens=info.max_tokens, at=at
            )
            await asyncio.to_thread(self.store.reserve, claims, estimate.nanousd)
        except Exhausted as full:
            raise self._refusal(full, at) from None
        except SQLAlchemyError as exc:
            log.error("budget check failed, refusing the call: %s", type(exc).__name__)
            raise Refused(
                503,
                "api_error",
                "spendgate: cannot check budgets because the database is unavailable; "
                "retry shortly, or check SPENDGATE_DATABASE_URL and GET /health",
                reason="budget_unavailable",
            ) from exc
        return Reservation(claims, estimate.nanousd)

    def _refusal(self, full: Exhausted, at: datetime) -> Refused:
        budget = full.claim.budget
        usage = full.usage
        window = period_window(budget.period, at, self.zone)
        resets = (
            f"resets {window.end.astimezone(self.zone).isoformat()}"
            if window.end is not None
            else "does not reset; raise its limit with `spendgate budgets set-limit`"
        )
        in_flight = (
            f" (+{_usd(usage.reserved_nanousd)} in flight)" if usage.reserved_nanousd else ""
        )
        message = (
            f"spendgate: budget {budget.name!r} ({budget.describe()}) is exhausted: spent "
            f"{_usd(usage.spent_nanousd)}{in_flight} of {_usd(budget.limit_nanousd)}; {resets}"
        )
        return Refused(
            429,
            "rate_limit_error",
            message,
            reason="budget_exceeded",
            headers=[(b"x-should-retry", b"false")],
        )

    def actual_cost(self, reservation: Reservation, record: CallRecord) -> int:
        """What the finished call costs; an unpriced call is charged its reservation."""
        cost = price_usage(
            self.book,
            model=record.model or record.model_requested,
            usage=record.usage,
            at=record.created_at,
            billable=record.billable,
            refusal=record.refusal_without_output,
        )
        if cost.total_nanousd is None:
            return reservation.amount
        return cost.total_nanousd

    async def settle(self, reservation: Reservation | None, record: CallRecord) -> None:
        """Release the reservation and charge the actual cost (never raises)."""
        if reservation is None or reservation.settled:
            return
        reservation.settled = True
        try:
            actual = self.actual_cost(reservation, record)
            await asyncio.to_thread(
                self.store.settle, reservation.claims, reservation.amount, actual
            )
        except Exception:  # settlement must never break the proxied call
            log.exception("could not settle budgets for call %s", record.id)

"""Budgets and their counters: definitions, atomic reservation, settlement.

Reservation is one transaction over every budget that applies to a call. For
each budget a conditional ``UPDATE`` adds the reservation only if settled
spend + open reservations + this reservation stay within the limit; if any
budget refuses, the whole transaction rolls back. The ``UPDATE`` takes the
row's write lock, so the check and the increment are one atomic step on
PostgreSQL (row lock; READ COMMITTED re-checks the condition on the newest row
version) and on SQLite (the database write lock), across any number of
processes. Budgets are visited in id order so two calls never lock in opposite
orders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypeVar, cast

import orjson
from sqlalchemy import Connection, Engine, delete, exists, func, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from spendgate.budgets.model import DEFAULT_THRESHOLDS, Budget, Period, Scope
from spendgate.records import new_id, utcnow
from spendgate.storage.keys import NotFound
from spendgate.storage.keys_schema import budget_usage, budgets
from spendgate.storage.schema import calls
from spendgate.storage.store import CallFilter


class Claim(NamedTuple):
    """One budget a call is charged against, in the period the call started in (one per
    budget per call: a named tuple costs a third of a frozen dataclass to build)."""

    budget: Budget
    period_key: str
    period_start: datetime | None


@dataclass(frozen=True)
class Usage:
    """A budget's counters for one period."""

    spent_nanousd: int
    reserved_nanousd: int
    calls: int
    refused: int


class _NoRoom(Exception):
    def __init__(self, claim: Claim) -> None:
        super().__init__(claim.budget.id)
        self.claim = claim


class Exhausted(Exception):
    """A budget has no room for a reservation."""

    def __init__(self, claim: Claim, usage: Usage) -> None:
        super().__init__(claim.budget.name)
        self.claim = claim
        self.usage = usage


def _budget(row: Any) -> Budget:
    m = row._mapping
    return Budget(
        id=m["id"],
        name=m["name"],
        scope=cast(Scope, m["scope"]),
        scope_value=m["scope_value"],
        period=cast(Period, m["period"]),
        limit_nanousd=int(m["limit_nanousd"]),
        thresholds=tuple(orjson.loads(m["thresholds"])) if m["thresholds"] else (),
        created_at=m["created_at"],
    )


def scope_filter(budget: Budget, since: datetime | None) -> CallFilter:
    """The recorded calls that count against ``budget`` since ``since``."""
    value = budget.scope_value
    return CallFilter(
        since=since,
        team=value if budget.scope == "team" else None,
        key_id=value if budget.scope == "key" else None,
        user=value if budget.scope == "user" else None,
        project=value if budget.scope == "project" else None,
        tag=value if budget.scope == "tag" else None,
    )


T = TypeVar("T")
Outcome = Literal["reserved", "full", "gone"]

# Plain SQL for the per-call statements: building SQLAlchemy expressions per call
# cost more than running them. The limit is read in the same statement, so the
# check and the increment stay one atomic step (see the module docstring).
_TRY_RESERVE = text(
    "UPDATE budget_usage SET reserved_nanousd = reserved_nanousd + :amount "
    "WHERE budget_id = :budget AND period_key = :period "
    "AND spent_nanousd + reserved_nanousd + :amount + :headroom <= "
    "(SELECT limit_nanousd FROM budgets WHERE budgets.id = budget_usage.budget_id)"
)
_EXISTS = text("SELECT 1 FROM budget_usage WHERE budget_id = :budget AND period_key = :period")
_SETTLE = text(
    "UPDATE budget_usage SET reserved_nanousd = reserved_nanousd - :release, "
    "spent_nanousd = spent_nanousd + :spent, calls = calls + :calls "
    "WHERE budget_id = :budget AND period_key = :period"
)
_REFUSED = text(
    "UPDATE budget_usage SET refused = refused + 1 "
    "WHERE budget_id = :budget AND period_key = :period"
)


class BudgetTx:
    """Counter operations inside one transaction (the guard batches many calls in one)."""

    def __init__(self, store: BudgetStore, conn: Connection) -> None:
        self.store = store
        self.conn = conn
        self.opened: list[tuple[str, str]] = []

    def ensure_open(self, claim: Claim) -> None:
        """Create the claim's period counter if this process has not seen it yet."""
        key = (claim.budget.id, claim.period_key)
        if key not in self.store._opened and key not in self.opened:
            self.store._open_period(self.conn, claim)
            self.opened.append(key)

    def try_reserve(self, claim: Claim, amount: int, headroom: int = 0) -> Outcome:
        """Add ``amount`` to the reservations if ``amount + headroom`` still fits the limit.

        ``gone``: the budget was deleted after it was cached (nothing to hold).
        """
        params = {
            "amount": amount,
            "headroom": headroom,
            "budget": claim.budget.id,
            "period": claim.period_key,
        }
        if self.conn.execute(_TRY_RESERVE, params).rowcount == 1:
            return "reserved"
        found = self.conn.execute(
            _EXISTS, {"budget": claim.budget.id, "period": claim.period_key}
        ).first()
        return "full" if found is not None else "gone"

    def settle(self, claim: Claim, *, release: int, spent: int, calls: int) -> None:
        """Release ``release`` of the reservations, add ``spent`` and ``calls``."""
        self.conn.execute(
            _SETTLE,
            {
                "release": release,
                "spent": spent,
                "calls": calls,
                "budget": claim.budget.id,
                "period": claim.period_key,
            },
        )

    def refuse(self, claim: Claim) -> Usage:
        """Count a refusal on ``claim`` and return its counters (for the message)."""
        self.conn.execute(_REFUSED, {"budget": claim.budget.id, "period": claim.period_key})
        return BudgetStore._usage(self.conn, claim.budget.id, claim.period_key)


class BudgetStore:
    """Budget definitions and counters. Thread-safe: each method takes its own connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # (budget, period) counters known to exist; opened once per process.
        self._opened: set[tuple[str, str]] = set()

    # -- definitions -------------------------------------------------------

    def create_budget(
        self,
        *,
        scope: Scope,
        scope_value: str,
        period: Period,
        limit_nanousd: int,
        name: str | None = None,
        thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
    ) -> Budget:
        """Store a new budget and return it."""
        if limit_nanousd < 0:
            raise ValueError("a budget limit cannot be negative")
        budget_id = new_id()
        label = name or (scope if scope == "global" else f"{scope}:{scope_value}")
        with self.engine.begin() as conn:
            conn.execute(
                budgets.insert().values(
                    id=budget_id,
                    name=label,
                    scope=scope,
                    scope_value=scope_value,
                    period=period,
                    limit_nanousd=limit_nanousd,
                    thresholds=orjson.dumps(sorted(thresholds)).decode(),
                    created_at=utcnow(),
                )
            )
        return self.get_budget(budget_id)

    def get_budget(self, budget_id: str) -> Budget:
        """The budget with this id; :class:`NotFound` otherwise."""
        with self.engine.connect() as conn:
            row = conn.execute(select(budgets).where(budgets.c.id == budget_id)).first()
        if row is None:
            raise NotFound(f"no budget {budget_id!r}; see `spendgate budgets list`")
        return _budget(row)

    def list_budgets(self) -> list[Budget]:
        """Every budget, ordered by id (the lock order)."""
        with self.engine.connect() as conn:
            return [_budget(r) for r in conn.execute(select(budgets).order_by(budgets.c.id))]

    def set_limit(self, budget_id: str, limit_nanousd: int) -> Budget:
        """Change a budget's hard limit."""
        return self.update_budget(budget_id, limit_nanousd=limit_nanousd)

    def update_budget(
        self,
        budget_id: str,
        *,
        name: str | None = None,
        limit_nanousd: int | None = None,
        thresholds: Sequence[int] | None = None,
    ) -> Budget:
        """Change a budget's name, hard limit or thresholds (None: leave as is).

        Its scope and period stay: they decide which counters the spend is in.
        """
        self.get_budget(budget_id)
        values: dict[str, Any] = {}
        if name is not None:
            if not name.strip():
                raise ValueError("a budget name cannot be empty")
            values["name"] = name
        if limit_nanousd is not None:
            if limit_nanousd < 0:
                raise ValueError("a budget limit cannot be negative")
            values["limit_nanousd"] = limit_nanousd
        if thresholds is not None:
            values["thresholds"] = orjson.dumps(sorted(set(thresholds))).decode()
        if values:
            with self.engine.begin() as conn:
                conn.execute(update(budgets).where(budgets.c.id == budget_id).values(**values))
        return self.get_budget(budget_id)

    def delete_budget(self, budget_id: str) -> None:
        """Delete a budget and its counters."""
        self.get_budget(budget_id)
        with self.engine.begin() as conn:
            conn.execute(delete(budget_usage).where(budget_usage.c.budget_id == budget_id))
            conn.execute(delete(budgets).where(budgets.c.id == budget_id))

    def usage(self, budget_id: str, period_key: str) -> Usage:
        """A budget's counters for one period (zeros when nothing was charged yet)."""
        with self.engine.connect() as conn:
            return self._usage(conn, budget_id, period_key)

    @staticmethod
    def _usage(conn: Connection, budget_id: str, period_key: str) -> Usage:
        u = budget_usage.c
        row = conn.execute(
            select(u.spent_nanousd, u.reserved_nanousd, u.calls, u.refused).where(
                u.budget_id == budget_id, u.period_key == period_key
            )
        ).first()
        if row is None:
            return Usage(0, 0, 0, 0)
        return Usage(int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    # -- reserve and settle ------------------------------------------------

    def reserve(self, claims: Sequence[Claim], amount: int) -> None:
        """Reserve ``amount`` nano-dollars on every claim, or on none.

        Raises :class:`Exhausted` for the first budget without room (nothing is
        reserved then). A budget deleted meanwhile is skipped.
        """
        ordered = sorted(claims, key=lambda c: c.budget.id)
        for claim in ordered:
            if (claim.budget.id, claim.period_key) not in self._opened:
                with self.engine.begin() as conn:
                    self._open_period(conn, claim)
                self._opened.add((claim.budget.id, claim.period_key))
        try:
            with self.engine.begin() as conn:
                for claim in ordered:
                    if not self._try_reserve(conn, claim, amount):
                        raise _NoRoom(claim)  # rolls the whole transaction back
        except _NoRoom as no_room:
            refused = no_room.claim
            with self.engine.begin() as conn:
                conn.execute(
                    update(budget_usage)
                    .where(*self._key(refused))
                    .values(refused=budget_usage.c.refused + 1)
                )
                usage = self._usage(conn, refused.budget.id, refused.period_key)
            raise Exhausted(refused, usage) from None

    @staticmethod
    def _key(claim: Claim) -> tuple[Any, Any]:
        return (
            budget_usage.c.budget_id == claim.budget.id,
            budget_usage.c.period_key == claim.period_key,
        )

    def _try_reserve(self, conn: Connection, claim: Claim, amount: int) -> bool:
        u = budget_usage.c
        limit = select(budgets.c.limit_nanousd).where(budgets.c.id == u.budget_id)
        stmt = (
            update(budget_usage)
            .where(
                *self._key(claim),
                u.spent_nanousd + u.reserved_nanousd + amount <= limit.scalar_subquery(),
            )
            .values(reserved_nanousd=u.reserved_nanousd + amount)
        )
        if conn.execute(stmt).rowcount == 1:
            return True
        # No row means the budget was deleted after it was cached: nothing to hold.
        return not conn.execute(select(exists().where(*self._key(claim)))).scalar()

    def _open_period(self, conn: Connection, claim: Claim) -> None:
        """Create a period's counter (if absent) in its own transaction, seeded with the
        spend already recorded in the period, so a budget created mid-month starts where
        the month is."""
        flt = scope_filter(claim.budget, claim.period_start)
        seed = (
            select(func.coalesce(func.sum(calls.c.cost_nanousd), 0))
            .where(*flt.clauses())
            .scalar_subquery()
        )
        source = select(
            budgets.c.id,
            literal(claim.period_key),
            seed,
            literal(0),
            literal(0),
            literal(0),
        ).where(budgets.c.id == claim.budget.id)
        columns = ["budget_id", "period_key", "spent_nanousd", "reserved_nanousd"]
        columns += ["calls", "refused"]
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = insert(budget_usage).from_select(columns, source).on_conflict_do_nothing()
        conn.execute(stmt)

    def transact(self, work: Callable[[BudgetTx], T]) -> T:
        """Run ``work`` in one transaction: the guard's batched reservations and settlements."""
        with self.engine.begin() as conn:
            tx = BudgetTx(self, conn)
            result = work(tx)
        self._opened.update(tx.opened)
        return result

    def settle(self, claims: Sequence[Claim], reserved: int, actual: int) -> None:
        """Release ``reserved`` and add the call's ``actual`` cost on every claim."""
        ordered = sorted(claims, key=lambda c: c.budget.id)
        u = budget_usage.c
        with self.engine.begin() as conn:
            for claim in ordered:
                conn.execute(
                    update(budget_usage)
                    .where(*self._key(claim))
                    .values(
                        reserved_nanousd=u.reserved_nanousd - reserved,
                        spent_nanousd=u.spent_nanousd + actual,
                        calls=u.calls + 1,
                    )
                )

"""Reserve-then-settle on the proxy's hot path, without a database trip per call.

Before a billable call is forwarded, :meth:`BudgetGuard.reserve` finds the
budgets that apply to it (from an in-memory copy of the definitions, refreshed
every ``ttl`` seconds) and reserves the call's worst-case cost against all of
them; after the call, :meth:`BudgetGuard.settle` releases the reservation and
adds the actual cost (a failed call settles at $0).

The database stays the only authority across processes: a reservation is a
conditional ``UPDATE`` that never lets settled spend + reservations pass the
limit. To keep that round trip off most calls, a process that reserves in the
database while a budget has plenty of room (more than ``LEASE_HEADROOM``
leases left) reserves a *lease* of ``LEASE_CALLS`` worst cases at once and
hands it out to its next calls from memory. Settlements are folded into one
transaction per batch (at most every ``SETTLE_DELAY`` seconds for leased calls)
by a single ledger task, which also takes the database
reservations of calls that found no lease (all waiting calls in one
transaction) and gives back leases idle for ``LEASE_IDLE`` seconds. Close to
the limit no lease is taken: every call is reserved in the database exactly,
as before, and a process gives its own leftover lease back before it reserves,
so its own lease can never refuse its own call. The cost of leases: another
process's unused lease (at most ``LEASE_CALLS`` worst cases, and only while
the budget had ``LEASE_HEADROOM`` times that left) counts as reserved until it
is used or given back; a process killed without shutdown leaves its lease
counted as reserved, as it leaves the reservations of its in-flight calls.

If the budget database cannot be reached the call is refused with a 503
(budgets are hard: an outage must not turn them off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from spendgate.budgets.estimate import worst_case
from spendgate.budgets.model import Budget, Period
from spendgate.budgets.periods import PeriodWindow, period_window
from spendgate.money import format_usd
from spendgate.pricing import PriceBook, apply_cost
from spendgate.proxy.auth import Resolved
from spendgate.proxy.errors import Refused
from spendgate.proxy.forward import RequestInfo
from spendgate.records import CallRecord, utcnow
from spendgate.storage.budgets import BudgetStore, BudgetTx, Claim, Exhausted
from spendgate.storage.budgets import Usage as Counters

log = logging.getLogger("spendgate.budgets")

# A lease is this many worst cases of the call that takes it ...
LEASE_CALLS = 32
# ... taken only while the budget has room for this many leases more.
LEASE_HEADROOM = 64
# A lease unused for this long (seconds) goes back to the database.
LEASE_IDLE = 1.0
# Settlements of leased calls wait up to this long to share one transaction (at
# concurrency 1 a transaction per call kept the GIL busy between calls).
SETTLE_DELAY = 0.05
_RETRY_SECONDS = 1.0

_Key = tuple[str, str]


@dataclass
class Reservation:
    """What one in-flight call holds against its budgets."""

    claims: list[Claim]
    amount: int
    settled: bool = field(default=False)
    # Per claim: whether the amount came out of this process's lease (what the
    # call does not spend goes back to the lease) or was reserved exactly.
    leased: tuple[bool, ...] = ()
    # What the finished call costs, set when it settles.
    actual: int | None = None


@dataclass
class _Slot:
    """This process's lease on one (budget, period) counter."""

    claim: Claim
    held: int = 0
    used_at: float = 0.0
    # The budget changed or went away: the lease goes back, nothing more is taken.
    stale: bool = False


@dataclass
class _Request:
    claims: list[Claim]
    amount: int
    future: asyncio.Future[Reservation]


@dataclass
class _Refusal:
    claim: Claim
    usage: Counters


def budgets_unavailable(exc: SQLAlchemyError, what: str) -> Refused:
    """The 503 for a call (or batch) refused because budgets cannot be checked: fail closed."""
    log.error("budget check failed, refusing the %s: %s", what, type(exc).__name__)
    return Refused(
        503,
        "api_error",
        "spendgate: cannot check budgets because the database is unavailable; "
        "retry shortly, or check SPENDGATE_DATABASE_URL and GET /health",
        reason="budget_unavailable",
    )


def _usd(nanos: int) -> str:
    return "$" + format_usd(nanos, 6)


def _key(claim: Claim) -> _Key:
    return (claim.budget.id, claim.period_key)


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
        self._windows: dict[Period, PeriodWindow] = {}
        self._slots: dict[_Key, _Slot] = {}
        self._requests: list[_Request] = []
        self._settling: list[tuple[Reservation, CallRecord]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._last_round = float("-inf")

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
                self._retire_changed_leases()
        return self._budgets

    def _retire_changed_leases(self) -> None:
        """A lease taken under an old limit (or for a deleted budget) goes back at once."""
        limits = {b.id: b.limit_nanousd for b in self._budgets}
        retired = False
        for slot in self._slots.values():
            budget = slot.claim.budget
            if limits.get(budget.id) != budget.limit_nanousd:
                slot.stale = True
                retired = retired or slot.held > 0
        if retired:
            self._kick()

    def _window(self, period: Period, at: datetime) -> PeriodWindow:
        window = self._windows.get(period)
        if (
            window is None
            or (window.start is not None and at < window.start)
            or (window.end is not None and at >= window.end)
        ):
            window = self._windows[period] = period_window(period, at, self.zone)
        return window

    def claims_for(self, budgets: list[Budget], resolved: Resolved, at: datetime) -> list[Claim]:
        """The budgets a call counts against, each in its current period (in id order)."""
        out = []
        for budget in budgets:
            if budget.applies_to(resolved.attribution):
                window = self._window(budget.period, at)
                out.append(Claim(budget, window.key, window.start))
        return out

    async def reserve(self, resolved: Resolved, info: RequestInfo, path: str) -> Reservation | None:
        """Reserve the worst case on every applicable budget; :class:`Refused` if one is full."""
        at = utcnow()
        try:
            budgets = await self.budgets()
            if not budgets:
                return None
            claims = self.claims_for(budgets, resolved, at)
            if not claims:
                return None
            estimate = worst_case(
                self.book, model=info.model, body=info.body, max_tokens=info.max_tokens, at=at
            )
            amount = estimate.nanousd
            if self._take(claims, amount):
                return Reservation(claims, amount, leased=(True,) * len(claims))
            return await self._reserve_in_database(claims, amount)
        except Exhausted as full:
            raise self.refusal(full, at) from None
        except SQLAlchemyError as exc:
            raise budgets_unavailable(exc, "call") from exc

    def _take(self, claims: list[Claim], amount: int) -> bool:
        """Take ``amount`` from this process's leases on every claim, or from none."""
        slots = []
        for claim in claims:
            slot = self._slots.get(_key(claim))
            if slot is None or slot.stale or slot.held < amount:
                return False
            slots.append(slot)
        now = self._clock()
        for slot in slots:
            slot.held -= amount
            slot.used_at = now
        return True

    async def _reserve_in_database(self, claims: list[Claim], amount: int) -> Reservation:
        future: asyncio.Future[Reservation] = asyncio.get_running_loop().create_future()
        self._requests.append(_Request(claims, amount, future))
        self._kick()
        return await future

    def refusal(self, full: Exhausted, at: datetime) -> Refused:
        """The 429 for a full budget: names it, its spend and limit, and when it resets."""
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
        """What the finished call costs; an unpriced call is charged its reservation.

        Prices the record in place (once: the writer then keeps that price).
        """
        if reservation.actual is not None:
            return reservation.actual
        if record.pricing_status == "pending":
            apply_cost(self.book, record)
        if record.cost_nanousd is None:
            return reservation.amount
        return record.cost_nanousd

    async def settle(self, reservation: Reservation | None, record: CallRecord) -> None:
        """Release the reservation and charge the actual cost (never raises, never waits).

        The call is priced here, so what a leased call did not spend goes back to
        this process's lease at once: the next calls take it from memory instead of
        waiting for the ledger's round (at 32 calls in flight a lease of 32 worst
        cases refilled only by the round sent most calls to the database). The
        ledger task writes the settlement, batched with whatever else is waiting.
        """
        if reservation is None or reservation.settled:
            return
        reservation.settled = True
        try:
            reservation.actual = self.actual_cost(reservation, record)
        except Exception:  # a pricing bug must not break the call; the ledger retries it
            log.exception("pricing failed for call %s while settling its budgets", record.id)
        if reservation.actual is not None and reservation.actual < reservation.amount:
            self._refill(reservation, reservation.amount - reservation.actual)
        self._settling.append((reservation, record))
        self._kick()

    def _refill(self, reservation: Reservation, spare: int) -> None:
        """Give what a leased call did not spend back to the lease it came from."""
        now = self._clock()
        for claim, leased in zip(reservation.claims, reservation.leased, strict=True):
            if leased:
                slot = self._slot(claim)
                slot.held += spare
                slot.used_at = now

    async def flush(self) -> None:
        """Wait until every settlement handed over so far is written (reports, tests)."""
        while self._settling or self._requests or self._busy:
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        """Write pending settlements and give every lease back (gateway shutdown)."""
        while self._busy:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for slot in self._slots.values():
            slot.used_at = float("-inf")
        try:
            await self._round()
        except Exception:  # shutdown goes on; the leftovers stay counted as reserved
            log.exception("could not give budget leases back at shutdown")

    # -- the ledger task ---------------------------------------------------

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="spendgate-budget-ledger"
            )
        self._wake.set()

    def _idle_deadline(self) -> float | None:
        held = [slot.used_at for slot in self._slots.values() if slot.held]
        return min(held) + LEASE_IDLE if held else None

    def _urgent(self) -> bool:
        """Work that must not wait: a call waiting for its reservation, or the settlement
        of an exact (unleased) reservation or a lease under a changed budget, which hold
        room other calls may need."""
        return (
            bool(self._requests)
            or any(not all(r.leased) for r, _ in self._settling)
            or any(slot.stale and slot.held for slot in self._slots.values())
        )

    def _next_round_in(self) -> float | None:
        """Seconds until a round is due without anything urgent (None: only when woken)."""
        deadlines = []
        if self._settling:
            deadlines.append(self._last_round + SETTLE_DELAY)
        idle = self._idle_deadline()
        if idle is not None:
            deadlines.append(idle)
        return max(0.0, min(deadlines) - self._clock()) if deadlines else None

    async def _run(self) -> None:
        while True:
            if not self._urgent():
                timeout = self._next_round_in()
                if timeout is None or timeout > 0:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout)
                    except TimeoutError:
                        pass  # due: run the round
                    else:
                        continue  # woken: look again (urgent, or not due yet)
            self._busy = True
            try:
                ok = await self._round()
            except Exception:  # the ledger must survive anything
                log.exception("budget ledger error")
                ok = False
            finally:
                self._busy = False
                self._last_round = self._clock()
            if not ok:
                await asyncio.sleep(_RETRY_SECONDS)

    async def _round(self) -> bool:
        """One transaction: settlements, leases given back, waiting reservations."""
        # Reservations that the settlements since they queued have made room for.
        requests = [r for r in self._requests if not self._grant_from_lease(r)]
        self._requests = []
        settling, self._settling = self._settling, []
        now = self._clock()
        returns: list[tuple[Claim, int]] = []
        waiting = {_key(c) for r in requests for c in r.claims}
        for key, slot in list(self._slots.items()):
            # A lease goes back when idle, and before this process reserves on the
            # same counter (its own leftover must never refuse its own call).
            idle = now - slot.used_at >= LEASE_IDLE
            if slot.held and (key in waiting or idle or slot.stale):
                returns.append((slot.claim, slot.held))
                slot.held = 0
            if not slot.held and (idle or slot.stale):
                del self._slots[key]
        if not (requests or settling or returns):
            return True

        def work(tx: BudgetTx) -> tuple[list[tuple[bool, ...] | _Refusal], dict[_Key, int]]:
            return self._transact(tx, requests, settling, returns)

        try:
            outcomes, spare = await asyncio.to_thread(self.store.transact, work)
        except Exception as exc:
            for claim, amount in returns:  # nothing was committed: still ours
                self._slot(claim).held += amount
            self._settling[:0] = settling
            for request in requests:
                if not request.future.done():
                    request.future.set_exception(exc)
            if not isinstance(exc, SQLAlchemyError):
                raise
            log.error("budget ledger could not write, retrying: %s", type(exc).__name__)
            return False
        now = self._clock()
        by_key = {_key(c): c for r in requests for c in r.claims}
        by_key.update({_key(c): c for r, _ in settling for c in r.claims})
        for key, amount in spare.items():
            if amount:
                slot = self._slot(by_key[key])
                slot.held += amount
                slot.used_at = now
        for request, outcome in zip(requests, outcomes, strict=True):
            if request.future.done():
                continue
            if isinstance(outcome, _Refusal):
                request.future.set_exception(Exhausted(outcome.claim, outcome.usage))
            else:
                request.future.set_result(
                    Reservation(request.claims, request.amount, leased=outcome)
                )
        return True

    def _slot(self, claim: Claim) -> _Slot:
        slot = self._slots.get(_key(claim))
        if slot is None:
            slot = self._slots[_key(claim)] = _Slot(claim, used_at=self._clock())
        return slot

    def _grant_from_lease(self, request: _Request) -> bool:
        if request.future.done():
            return True
        if not self._take(request.claims, request.amount):
            return False
        leased = (True,) * len(request.claims)
        request.future.set_result(Reservation(request.claims, request.amount, leased=leased))
        return True

    def _transact(
        self,
        tx: BudgetTx,
        requests: list[_Request],
        settling: list[tuple[Reservation, CallRecord]],
        returns: list[tuple[Claim, int]],
    ) -> tuple[list[tuple[bool, ...] | _Refusal], dict[_Key, int]]:
        """In a worker thread, inside one transaction. Returns the outcome of each request
        and the lease amounts left over per counter."""
        release: dict[_Key, list[int]] = {}  # key -> [release, spent, calls]
        claims: dict[_Key, Claim] = {}
        spare: dict[_Key, int] = {}
        for claim, amount in returns:
            release.setdefault(_key(claim), [0, 0, 0])[0] += amount
            claims[_key(claim)] = claim
        for reservation, record in settling:
            actual = self.actual_cost(reservation, record)
            flags = reservation.leased or (False,) * len(reservation.claims)
            for claim, leased in zip(reservation.claims, flags, strict=True):
                key = _key(claim)
                claims[key] = claim
                entry = release.setdefault(key, [0, 0, 0])
                freed = min(reservation.amount, actual) if leased else reservation.amount
                entry[0] += freed
                entry[1] += actual
                entry[2] += 1
                # What a leased call did not spend went back to the lease when it
                # settled (see settle); only one priced here goes back now.
                refilled = reservation.actual is not None
                if leased and reservation.amount > freed and not refilled:
                    spare[key] = spare.get(key, 0) + reservation.amount - freed
        for key in sorted(release):  # id order: no two writers lock in opposite orders
            freed, spent, calls = release[key]
            tx.settle(claims[key], release=freed, spent=spent, calls=calls)
        outcomes: list[tuple[bool, ...] | _Refusal] = []
        for request in requests:
            outcomes.append(self._reserve_one(tx, request, spare))
        return outcomes, spare

    @staticmethod
    def _reserve_one(
        tx: BudgetTx, request: _Request, spare: dict[_Key, int]
    ) -> tuple[bool, ...] | _Refusal:
        amount = request.amount
        undo: list[tuple[Claim, int, int]] = []  # claim, reserved in the database, lease taken
        leased: list[bool] = []
        for claim in request.claims:
            key = _key(claim)
            have = spare.get(key, 0)
            if have >= amount:
                spare[key] = have - amount
                undo.append((claim, 0, -amount))
                leased.append(True)
                continue
            tx.ensure_open(claim)
            lease = amount * LEASE_CALLS
            outcome = tx.try_reserve(claim, amount + lease, headroom=lease * LEASE_HEADROOM)
            if outcome == "reserved":
                spare[key] = have + lease
                undo.append((claim, amount + lease, lease))
                leased.append(True)
                continue
            if outcome == "full":
                outcome = tx.try_reserve(claim, amount)
            if outcome == "full":
                for done, reserved, taken in undo:
                    if reserved:
                        tx.settle(done, release=reserved, spent=0, calls=0)
                    spare[_key(done)] = spare.get(_key(done), 0) - taken
                return _Refusal(claim, tx.refuse(claim))
            undo.append((claim, amount if outcome == "reserved" else 0, 0))
            leased.append(False)
        return tuple(leased)

"""Reserve-then-settle on the proxy's hot path, without a database trip per call.

Before a billable call is forwarded, :meth:`BudgetGuard.reserve` finds the
budgets that apply to it (from an in-memory copy of the definitions, refreshed
every ``ttl`` seconds) and reserves the call's worst-case cost against all of
them; after the call, :meth:`BudgetGuard.settle` releases the reservation and
adds the actual cost (a failed call settles at $0).

The database stays the only authority across processes: a reservation is a
conditional ``UPDATE`` that never lets settled spend + reservations pass the
limit. To keep that round trip off most calls, a process that reserves in the
database while a budget has plenty of room reserves a *lease* at once and hands
it out to its next calls from memory. Settlements are folded into one
transaction per batch (at most every ``SETTLE_DELAY`` seconds for leased calls)
by a single ledger task, which also takes the database reservations of calls
that found no lease (all waiting calls in one transaction) and gives back
leases idle for ``LEASE_IDLE`` seconds.

Leases follow three rules:

- **Size by rate.** A lease is ``LEASE_CALLS`` worst cases of the call that
  takes it, or the worst cases this process took from that counter in about the
  last ``LEASE_RATE_WINDOW`` seconds if that is more, so a busy process takes
  about one lease a second instead of one every few dozen calls.
- **Headroom.** A lease is taken only if the budget keeps room for
  ``LEASE_HEADROOM`` more of the same size behind it (checked by the same
  conditional ``UPDATE``), so no lease is more than 1/``LEASE_HEADROOM`` of
  the room left (limit - spend - reservations). A lease sized by rate that does
  not fit is tried at a quarter of its size, and so on down to ``LEASE_CALLS``
  worst cases (the rule as it was before leases were sized by rate). When that
  does not fit either, every call is reserved exactly in the database, as
  before, and a process gives its own leftover lease back before it reserves,
  so its own lease can never refuse its own call.
- **Prefetch.** Once less than 1/``LEASE_REFILL`` of a lease is left, the ledger
  takes the next one in its next round, before calls run dry and have to wait
  for a database reservation. A top-up must keep room for ``LEASE_HEADROOM``
  times what the process then holds (leftover + the new lease); if it does not
  fit, nothing is topped up and the lease drains into exact reservations as above.

The cost of leases: another process's unused lease counts as reserved until it
is used or given back (after ``LEASE_IDLE`` seconds unused, at shutdown, or once
the process sees its budget changed); a process killed without shutdown leaves
its lease counted as reserved, as it leaves the reservations of its in-flight
calls. :attr:`BudgetGuard.stats` counts the ledger's transactions, the leases it
took and the calls that waited for the database.

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
from spendgate.budgets.model import Budget, BudgetIndex, Period
from spendgate.budgets.periods import PeriodWindow, period_window
from spendgate.fresh import Fresh
from spendgate.logs import Every, describe
from spendgate.money import format_usd
from spendgate.pricing import PriceBook, apply_cost
from spendgate.proxy.auth import Resolved
from spendgate.proxy.errors import Refused, database_unavailable
from spendgate.proxy.forward import RequestInfo
from spendgate.records import CallRecord, utcnow
from spendgate.storage.budgets import BudgetStore, BudgetTx, Claim, Exhausted
from spendgate.storage.budgets import Usage as Counters

log = logging.getLogger("spendgate.budgets")

# A lease is at least this many worst cases of the call that takes it ...
LEASE_CALLS = 32
# ... or the worst cases this process took from the counter in about this many
# seconds, if more (a busy process then takes about one lease per window) ...
LEASE_RATE_WINDOW = 1.0
# ... taken only while the budget has room for this many leases more.
LEASE_HEADROOM = 64
# The next lease is taken once less than 1/LEASE_REFILL of the last one is left.
LEASE_REFILL = 4
# A lease unused for this long (seconds) goes back to the database.
LEASE_IDLE = 1.0
# Settlements of leased calls wait this long to share one transaction (at concurrency
# 1 a transaction per call kept the GIL busy between calls); a timer started by the
# first of them wakes the ledger.
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
    # The last lease taken (0: none to top up, e.g. the budget is close to its limit),
    # the held amount below which the next one is taken, and the worst case of the
    # call that took it (a top-up is at least LEASE_CALLS of those).
    size: int = 0
    low: int = 0
    unit: int = 0
    topping: bool = False
    # Worst cases taken from this counter: in all, at the start of the current rate
    # window, and in the last full window (per LEASE_RATE_WINDOW).
    taken: int = 0
    window_at: float = 0.0
    window_taken: int = 0
    last_window: int = 0


@dataclass
class LedgerStats:
    """What the budget ledger did since the process started (metrics, tests)."""

    # Rounds that wrote to the database (settlements, leases, reservations).
    transactions: int = 0
    # Calls that found no lease and waited for a reservation in the database.
    waited: int = 0
    # Leases taken (for a waiting call, or topped up before the last ran dry).
    leases: int = 0
    topups: int = 0


@dataclass
class _Request:
    claims: list[Claim]
    amount: int
    future: asyncio.Future[Reservation]


@dataclass
class _TopUp:
    """A lease running low, to be topped up in the ledger's next round."""

    claim: Claim
    size: int  # sized by rate
    base: int  # LEASE_CALLS worst cases, the least tried (see _lease_sizes)
    held: int
    unit: int


@dataclass
class _Leases:
    """What one ledger round leaves this process, per counter."""

    # Lease amounts to add to the slot (new leases, what settled calls left over).
    spare: dict[_Key, int] = field(default_factory=dict)
    # The size of the lease taken (0: none, the counter is reserved exactly).
    taken: dict[_Key, int] = field(default_factory=dict)
    units: dict[_Key, int] = field(default_factory=dict)


@dataclass
class _Refusal:
    claim: Claim
    usage: Counters


def _usd(nanos: int) -> str:
    return "$" + format_usd(nanos, 6)


def _key(claim: Claim) -> _Key:
    return (claim.budget.id, claim.period_key)


def _lease_sizes(size: int, base: int) -> list[int]:
    """The lease sizes to try, largest first: the size by rate, a quarter of it, and so
    on, then ``base`` (``LEASE_CALLS`` worst cases); the first that fits is taken."""
    sizes = []
    while size > base:
        sizes.append(size)
        size //= 4
    sizes.append(base)
    return sizes


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
        self._clock = clock
        # Replaced whole on every reload, never changed in place: claims_for keeps an
        # index of the list it was given and builds a new one for a new list.
        self._budgets: list[Budget] = []
        self._index: BudgetIndex | None = None  # of the list claims_for was last given
        self._definitions = Fresh(
            store.list_budgets, ttl=ttl, what="budgets", clock=clock, on_load=self._loaded
        )
        self._windows: dict[Period, PeriodWindow] = {}
        self._slots: dict[_Key, _Slot] = {}
        self._requests: list[_Request] = []
        self._topups: list[_Slot] = []
        self.stats = LedgerStats()
        self._settling: list[tuple[Reservation, CallRecord]] = []
        # How many of those hold an exact (unleased) reservation: urgent to write.
        self._exact_settling = 0
        self._wake = asyncio.Event()
        self._settle_timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._last_round = float("-inf")
        self._unavailable = Every(clock=clock)

    def invalidate(self) -> None:
        """Forget the cached definitions (after a change made in this process)."""
        self._definitions.invalidate()

    async def budgets(self) -> list[Budget]:
        """The budget definitions, at most ``ttl`` seconds old (reloaded in the
        background before they are: see :mod:`spendgate.fresh`)."""
        return await self._definitions.get()

    def _loaded(self, budgets: list[Budget]) -> None:
        self._budgets = budgets
        self._retire_changed_leases()

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
        index = self._index
        if index is None or index.budgets is not budgets:
            index = self._index = BudgetIndex(budgets)
        out = []
        for budget in index.matching(resolved.attribution):
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
            raise self.unavailable(exc, "call") from exc

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
            slot.taken += amount
            if slot.held < slot.low and not slot.topping:
                self._top_up(slot)
        return True

    def _top_up(self, slot: _Slot) -> None:
        """Ask the ledger for the next lease before this one runs dry."""
        slot.topping = True
        self._topups.append(slot)
        self._kick()

    def leased(self) -> dict[_Key, int]:
        """What this process holds as leases, per (budget id, period key) counter."""
        return {key: slot.held for key, slot in self._slots.items() if slot.held}

    async def _reserve_in_database(self, claims: list[Claim], amount: int) -> Reservation:
        future: asyncio.Future[Reservation] = asyncio.get_running_loop().create_future()
        self.stats.waited += 1
        self._requests.append(_Request(claims, amount, future))
        self._kick()
        return await future

    def unavailable(self, exc: SQLAlchemyError, what: str) -> Refused:
        """The 503 for a call (or batch) refused because budgets cannot be checked: fail
        closed. Logged at most every :data:`~spendgate.logs.EVERY_SECONDS`: in an outage
        every call comes here."""
        self._unavailable.log(
            log, logging.ERROR, "budget check failed, refusing the %s: %s", what, describe(exc)
        )
        return database_unavailable("budgets", "budget_unavailable")

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
        # The ledger task is woken at once only when this settlement is urgent (a wake
        # per call cost more than the settlement itself). The first leased one since
        # the last round starts a timer instead: its round comes SETTLE_DELAY later,
        # not as the call ends, when the client's next request is likely on its way.
        exact = not all(reservation.leased)
        first = not self._settling
        self._settling.append((reservation, record))
        if exact:
            self._exact_settling += 1
        if exact:
            self._kick()
        elif first and self._settle_timer is None:
            self._settle_timer = asyncio.get_running_loop().call_later(
                SETTLE_DELAY, self._settle_due
            )

    def _settle_due(self) -> None:
        self._settle_timer = None
        if self._settling:
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
        await self._definitions.close()
        while self._busy:
            await asyncio.sleep(0.005)
        if self._settle_timer is not None:  # the round below writes what it waits for
            self._settle_timer.cancel()
            self._settle_timer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._topups = []
        for slot in self._slots.values():
            slot.used_at = float("-inf")
            slot.size = slot.low = 0
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
        """Work that must not wait: a call waiting for its reservation, a lease running
        low, or the settlement of an exact (unleased) reservation or a lease under a
        changed budget, which hold room other calls may need."""
        return (
            bool(self._requests)
            or bool(self._topups)
            or self._exact_settling > 0
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
                        # Not wait_for: on Python 3.11 it swallows a cancellation that
                        # comes as the event is set, and close() then waited forever.
                        async with asyncio.timeout(timeout):
                            await self._wake.wait()
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
        """One transaction: settlements, leases given back or topped up, waiting reservations."""
        # Reservations that the settlements since they queued have made room for.
        requests = [r for r in self._requests if not self._grant_from_lease(r)]
        self._requests = []
        settling, self._settling = self._settling, []
        self._exact_settling = 0
        if settling and self._settle_timer is not None:
            self._settle_timer.cancel()  # written by this round: nothing left to start
            self._settle_timer = None
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
        topups = self._due_topups(waiting, now)
        recent = {key: self._recent(self._slots[key], now) for key in waiting & self._slots.keys()}
        if not (requests or settling or returns or topups):
            return True

        def work(tx: BudgetTx) -> tuple[list[tuple[bool, ...] | _Refusal], _Leases]:
            return self._transact(tx, requests, settling, returns, topups, recent)

        try:
            outcomes, leases = await asyncio.to_thread(self.store.transact, work)
        except Exception as exc:
            for claim, amount in returns:  # nothing was committed: still ours
                self._slot(claim).held += amount
            self._settling[:0] = settling
            self._exact_settling += sum(1 for r, _ in settling if not all(r.leased))
            for request in requests:
                if not request.future.done():
                    request.future.set_exception(exc)
            if not isinstance(exc, SQLAlchemyError):
                raise
            log.error("budget ledger could not write, retrying: %s", type(exc).__name__)
            return False
        self.stats.transactions += 1
        self._apply(leases, requests, settling, topups)
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, _Refusal):
                if not request.future.done():
                    request.future.set_exception(Exhausted(outcome.claim, outcome.usage))
                continue
            for claim in request.claims:  # what this process takes, for sizing its leases
                self._slot(claim).taken += request.amount
            if not request.future.done():
                request.future.set_result(
                    Reservation(request.claims, request.amount, leased=outcome)
                )
        return True

    def _due_topups(self, waiting: set[_Key], now: float) -> list[_TopUp]:
        """The leases to top up this round: still low, still current, no call waiting on
        them (that call's round returns the leftover and takes a new lease instead)."""
        due: list[_TopUp] = []
        for slot in self._topups:
            slot.topping = False
            key = _key(slot.claim)
            if (
                self._slots.get(key) is slot
                and not slot.stale
                and key not in waiting
                and slot.held < slot.low
            ):
                base = slot.unit * LEASE_CALLS
                size = max(base, self._recent(slot, now))
                due.append(_TopUp(slot.claim, size, base, slot.held, slot.unit))
        self._topups = []
        return due

    @staticmethod
    def _recent(slot: _Slot, now: float) -> int:
        """The worst cases this process took from the counter in about the last
        ``LEASE_RATE_WINDOW`` seconds (the current window or the last full one)."""
        elapsed = now - slot.window_at
        if elapsed >= LEASE_RATE_WINDOW:
            took = slot.taken - slot.window_taken
            slot.last_window = int(took * LEASE_RATE_WINDOW / elapsed)
            slot.window_at, slot.window_taken = now, slot.taken
        return max(slot.last_window, slot.taken - slot.window_taken)

    def _apply(
        self,
        leases: _Leases,
        requests: list[_Request],
        settling: list[tuple[Reservation, CallRecord]],
        topups: list[_TopUp],
    ) -> None:
        """Hand the committed round's leases and leftovers to this process's slots."""
        now = self._clock()
        by_key = {_key(c): c for r in requests for c in r.claims}
        by_key.update({_key(c): c for r, _ in settling for c in r.claims})
        by_key.update({_key(t.claim): t.claim for t in topups})
        self.stats.topups += sum(1 for t in topups if leases.taken.get(_key(t.claim)))
        for key, amount in leases.spare.items():
            if amount:
                slot = self._slot(by_key[key])
                slot.held += amount
                slot.used_at = now
        for key, size in leases.taken.items():
            slot = self._slot(by_key[key])
            slot.size, slot.low, slot.unit = size, size // LEASE_REFILL, leases.units[key]
            if size:
                self.stats.leases += 1
                if slot.held < slot.low and not slot.topping and not slot.stale:
                    self._top_up(slot)  # the waiting calls took most of it already

    def _slot(self, claim: Claim) -> _Slot:
        slot = self._slots.get(_key(claim))
        if slot is None:
            now = self._clock()
            slot = self._slots[_key(claim)] = _Slot(claim, used_at=now, window_at=now)
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
        topups: list[_TopUp],
        recent: dict[_Key, int],
    ) -> tuple[list[tuple[bool, ...] | _Refusal], _Leases]:
        """In a worker thread, inside one transaction. Returns the outcome of each request
        and the leases taken and amounts left over per counter."""
        release: dict[_Key, list[int]] = {}  # key -> [release, spent, calls]
        claims: dict[_Key, Claim] = {}
        leases = _Leases()
        spare = leases.spare
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
            outcomes.append(self._reserve_one(tx, request, leases, recent))
        for topup in sorted(topups, key=lambda t: _key(t.claim)):
            self._top_up_one(tx, topup, leases)
        return outcomes, leases

    @staticmethod
    def _top_up_one(tx: BudgetTx, topup: _TopUp, leases: _Leases) -> None:
        """Take the next lease if the budget keeps ``LEASE_HEADROOM`` times what this
        process then holds (its leftover and the new lease) behind it."""
        key = _key(topup.claim)
        taken = 0
        for size in _lease_sizes(topup.size, topup.base):
            outcome = tx.try_reserve(
                topup.claim, size, headroom=(topup.held + size) * LEASE_HEADROOM
            )
            if outcome == "reserved":
                taken = size
                break
            if outcome == "gone":
                break
        leases.spare[key] = leases.spare.get(key, 0) + taken
        leases.taken[key] = taken
        leases.units[key] = topup.unit

    @staticmethod
    def _reserve_one(
        tx: BudgetTx, request: _Request, leases: _Leases, recent: dict[_Key, int]
    ) -> tuple[bool, ...] | _Refusal:
        amount = request.amount
        spare = leases.spare
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
            base = amount * LEASE_CALLS
            for lease in _lease_sizes(max(base, recent.get(key, 0)), base):
                outcome = tx.try_reserve(claim, amount + lease, headroom=lease * LEASE_HEADROOM)
                if outcome != "full":
                    break
            if outcome == "reserved":
                spare[key] = have + lease
                leases.taken[key], leases.units[key] = lease, amount
                undo.append((claim, amount + lease, lease))
                leased.append(True)
                continue
            if outcome == "full":
                outcome = tx.try_reserve(claim, amount)
            if outcome == "full":
                for done, reserved, taken in undo:
                    if reserved:
                        tx.settle(done, release=reserved, spent=0, calls=0)
                        leases.taken[_key(done)] = 0
                    spare[_key(done)] = spare.get(_key(done), 0) - taken
                return _Refusal(claim, tx.refuse(claim))
            # Reserved exactly (or the budget is gone): close to the limit, no top-ups.
            leases.taken[key], leases.units[key] = 0, amount
            undo.append((claim, amount if outcome == "reserved" else 0, 0))
            leased.append(False)
        return tuple(leased)

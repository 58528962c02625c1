"""Budget leases: prefetched before they run dry, sized by rate, capped by the room left."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from spendgate.budgets.guard import (
    LEASE_CALLS,
    LEASE_HEADROOM,
    SETTLE_DELAY,
    BudgetGuard,
    Reservation,
)
from spendgate.budgets.model import Budget
from spendgate.pricing import PriceBook
from spendgate.proxy.auth import Resolved
from spendgate.proxy.errors import Refused
from spendgate.proxy.forward import RequestInfo
from spendgate.records import CallRecord
from spendgate.storage import Store
from spendgate.storage.budgets import BudgetStore

MODEL = "claude-sonnet-4-6"
BODY = b'{"model":"claude-sonnet-4-6","max_tokens":1000,"messages":[]}'
CALL = RequestInfo(model=MODEL, max_tokens=1000, body=BODY)
# The reservation of one call: 21 input tokens at $6/M and 1,000 output tokens at $15/M.
WORST = 15_126_000
BOOK = PriceBook.load()


def _guard(budgets: BudgetStore) -> BudgetGuard:
    return BudgetGuard(budgets, BOOK, zone=ZoneInfo("UTC"))


def _budget(budgets: BudgetStore, limit: int) -> Budget:
    return budgets.create_budget(
        scope="global", scope_value="", period="monthly", limit_nanousd=limit
    )


async def _call(guard: BudgetGuard, spent: list[int], pause: float) -> bool:
    """One call that costs 90 % of its worst case (as in the bench); False if refused."""
    try:
        reservation = await guard.reserve(Resolved(upstream_auth=None), CALL, "/v1/messages")
    except Refused as refused:
        assert refused.status == 429
        return False
    assert isinstance(reservation, Reservation)
    assert reservation.amount == WORST
    await asyncio.sleep(pause)
    cost = reservation.amount * 9 // 10
    await guard.settle(reservation, CallRecord(cost_nanousd=cost, pricing_status="priced"))
    spent.append(cost)
    return True


async def _stream(guard: BudgetGuard, seconds: float, spent: list[int]) -> int:
    """Eight clients calling back to back for ``seconds``; returns the calls refused."""
    deadline = time.monotonic() + seconds
    refused = 0

    async def client() -> None:
        nonlocal refused
        while time.monotonic() < deadline:
            if not await _call(guard, spent, 0.002):
                refused += 1
                await asyncio.sleep(0.002)

    await asyncio.gather(*(client() for _ in range(8)))
    return refused


def _period() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


async def test_a_steady_stream_is_served_from_prefetched_leases_sized_by_rate(
    store: Store,
) -> None:
    budgets = BudgetStore(store.engine)
    budget = _budget(budgets, 10**15)  # $1M: plenty of room
    guard = _guard(budgets)
    spent: list[int] = []
    await _stream(guard, 0.5, spent)  # the first lease, then leases growing with the rate
    warm = len(spent)
    waited, leases = guard.stats.waited, guard.stats.leases
    largest = 0

    async def watch() -> None:
        nonlocal largest
        while True:
            largest = max(largest, sum(guard.leased().values()))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    assert await _stream(guard, 1.5, spent) == 0
    watcher.cancel()
    calls = len(spent) - warm
    assert calls > 300, calls
    # Before, a lease of 32 worst cases lasted ~35 of these calls: a call waited for a
    # database reservation about every 35 calls, and a lease was taken as often.
    assert guard.stats.waited == waited, (guard.stats, calls)
    assert guard.stats.leases - leases <= 4, (guard.stats, calls)
    assert guard.stats.topups >= 1
    # Sized by rate: far more than LEASE_CALLS worst cases at a time.
    assert largest > 4 * LEASE_CALLS * WORST, (largest, calls)
    await guard.close()
    usage = budgets.usage(budget.id, _period())
    assert (usage.spent_nanousd, usage.reserved_nanousd) == (sum(spent), 0)
    assert usage.calls == len(spent)


async def test_no_lease_exceeds_its_share_of_the_room_left_and_spend_settles_exactly(
    store: Store,
) -> None:
    """Close to the limit calls are reserved exactly; the budget is never overspent."""
    budgets = BudgetStore(store.engine)
    # Room for ~11,000 of these calls, a few seconds of the stream: a lease sized by
    # the rate (~1,000 worst cases a second) never fits, a quarter or a sixteenth of
    # it does for a while, then LEASE_CALLS worst cases, then none.
    limit = 10_000 * WORST
    budget = _budget(budgets, limit)
    guard = _guard(budgets)
    spent: list[int] = []
    checks = 0

    async def watch() -> None:
        nonlocal checks
        while True:
            usage = await asyncio.to_thread(budgets.usage, budget.id, _period())
            held = sum(guard.leased().values())
            room = limit - usage.spent_nanousd - usage.reserved_nanousd
            assert held * LEASE_HEADROOM <= room, (held, room)
            checks += 1
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    refused = 0
    # Until the budget is exhausted: ~11,000 calls, a few seconds on a quiet machine,
    # several times that on a busy one (a fixed number of rounds failed there).
    give_up = time.monotonic() + 120
    while not refused and not watcher.done() and time.monotonic() < give_up:
        refused += await _stream(guard, 0.5, spent)
    assert not watcher.done(), watcher.exception()
    watcher.cancel()
    assert refused and checks > 50
    assert guard.stats.leases > 1
    await guard.close()
    usage = budgets.usage(budget.id, _period())
    assert (usage.spent_nanousd, usage.reserved_nanousd) == (sum(spent), 0)
    assert usage.calls == len(spent)
    # The last calls were reserved exactly, down to the last worst case or so (calls in
    # flight when one was refused spent less than they reserved).
    assert 0 <= limit - usage.spent_nanousd < 2 * WORST


async def test_a_leased_settlement_is_written_by_a_timer_not_as_the_call_ends(
    store: Store,
) -> None:
    # The call's end starts a timer (SETTLE_DELAY) instead of waking the ledger task
    # then, when the client's next request is on its way; the round still comes.
    budgets = BudgetStore(store.engine)
    budget = _budget(budgets, 10**15)
    guard = _guard(budgets)
    spent: list[int] = []
    assert await _call(guard, spent, 0)  # the first call reserves in the database
    await guard.flush()
    await asyncio.sleep(2 * SETTLE_DELAY)  # the last round is long past
    rounds = guard.stats.transactions
    assert await _call(guard, spent, 0)  # served from the lease, settled from memory
    await asyncio.sleep(SETTLE_DELAY / 2)  # a ledger woken as the call ended wrote by now
    assert guard.stats.transactions == rounds
    deadline = time.monotonic() + 10  # the timer's round, on a worker thread
    while guard.stats.transactions == rounds and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert guard.stats.transactions == rounds + 1
    await guard.close()
    usage = budgets.usage(budget.id, _period())
    assert (usage.spent_nanousd, usage.reserved_nanousd) == (sum(spent), 0)

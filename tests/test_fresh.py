"""Definitions refreshed before they go stale: calls wait for the database only when no
current copy is held, and calls that wait together share one load."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet

from spendgate import keys
from spendgate.budgets.guard import BudgetGuard
from spendgate.fresh import REFRESH_AHEAD, Fresh
from spendgate.limits.guard import LimitGuard
from spendgate.pricing import PriceBook
from spendgate.proxy.auth import AuthError
from spendgate.storage import Store
from spendgate.storage.budgets import BudgetStore
from spendgate.storage.keys import KeyStore
from spendgate.storage.limits import LimitStore
from spendgate.vault import SecretBox

TTL = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts loads; each returns the next number, or raises while ``failing``; a load
    can be held in the database (its thread blocks) until ``release``."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing: Exception | None = None
        self.held = threading.Event()
        self.held.set()
        self.entered = threading.Event()

    def __call__(self) -> int:
        self.calls += 1
        number = self.calls
        self.entered.set()
        self.held.wait(10)
        if self.failing is not None:
            raise self.failing
        return number

    def hold(self) -> None:
        self.held.clear()
        self.entered.clear()

    def release(self) -> None:
        self.held.set()


async def _settled() -> None:
    """Let a background load that is not held finish."""
    for _ in range(200):
        await asyncio.sleep(0.005)
        if not any(t.get_name().startswith("spendgate-load-") for t in asyncio.all_tasks()):
            return


def _fresh(loader: Loader, clock: Clock, seen: list[int] | None = None) -> Fresh[int]:
    on_load: Callable[[int], None] | None = seen.append if seen is not None else None
    return Fresh(loader, ttl=TTL, what="test definitions", clock=clock, on_load=on_load)


async def test_calls_that_find_no_copy_wait_for_one_load_together() -> None:
    loader, clock, seen = Loader(), Clock(), []
    fresh = _fresh(loader, clock, seen)
    assert await asyncio.gather(*(fresh.get() for _ in range(32))) == [1] * 32
    assert loader.calls == 1 and fresh.loads == 1
    assert seen == [1]


async def test_a_copy_is_reloaded_in_the_background_before_it_is_stale() -> None:
    loader, clock, seen = Loader(), Clock(), []
    fresh = _fresh(loader, clock, seen)
    assert await fresh.get() == 1
    clock.now += TTL * REFRESH_AHEAD - 0.01
    assert await fresh.get() == 1
    await _settled()
    assert loader.calls == 1  # young enough: no load
    clock.now += 0.02
    loader.hold()
    # The load is held in the database; the calls do not wait for it.
    answers = await asyncio.wait_for(asyncio.gather(*(fresh.get() for _ in range(32))), 1)
    assert answers == [1] * 32
    assert await asyncio.to_thread(loader.entered.wait, 5)
    assert loader.calls == 2  # one background load for all of them
    loader.release()
    await _settled()
    assert await fresh.get() == 2
    assert seen == [1, 2]


async def test_a_stale_copy_is_never_returned() -> None:
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    assert await fresh.get() == 1
    clock.now += TTL  # no call came in the refresh window: the copy is too old now
    loader.hold()
    calls = [asyncio.create_task(fresh.get()) for _ in range(8)]
    assert await asyncio.to_thread(loader.entered.wait, 5)
    await asyncio.sleep(0.02)
    assert not any(call.done() for call in calls)  # they wait for the database
    loader.release()
    assert await asyncio.gather(*calls) == [2] * 8
    assert loader.calls == 2


async def test_a_copy_is_as_old_as_the_start_of_its_load() -> None:
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    loader.hold()
    first = asyncio.create_task(fresh.get())
    assert await asyncio.to_thread(loader.entered.wait, 5)
    clock.now += TTL / 2  # the database took a while to answer
    loader.release()
    assert await first == 1
    clock.now += TTL / 2  # TTL since the load started, not since it ended
    loader.hold()
    second = asyncio.create_task(fresh.get())
    assert await asyncio.to_thread(loader.entered.wait, 5)
    assert not second.done()
    loader.release()
    assert await second == 2


async def test_after_invalidate_a_load_started_before_it_does_not_answer() -> None:
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    loader.hold()
    before = asyncio.create_task(fresh.get())
    assert await asyncio.to_thread(loader.entered.wait, 5)
    fresh.invalidate()  # a change made in this process while the first load was out
    after = asyncio.create_task(fresh.get())
    await asyncio.sleep(0.02)
    loader.release()
    assert await before == 1
    assert await after == 2  # its own load, started after the change
    assert await fresh.get() == 2
    assert loader.calls == 2


async def test_a_cancelled_call_leaves_the_shared_load_to_the_others() -> None:
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    loader.hold()
    gone = asyncio.create_task(fresh.get())
    staying = asyncio.create_task(fresh.get())
    assert await asyncio.to_thread(loader.entered.wait, 5)
    gone.cancel()
    await asyncio.sleep(0)
    loader.release()
    assert await staying == 1
    assert gone.cancelled()
    assert loader.calls == 1


async def test_a_failed_background_load_keeps_the_copy_until_it_is_stale(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "spendgate.fresh")
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    assert await fresh.get() == 1
    loader.failing = OSError("database is down")
    clock.now += TTL * REFRESH_AHEAD
    assert await fresh.get() == 1
    await _settled()
    assert loader.calls == 2
    assert "could not reload the test definitions in the background (OSError)" in caplog.text
    for _ in range(20):  # not asked again on every call while it is down
        assert await fresh.get() == 1
    await _settled()
    assert loader.calls == 2
    clock.now += TTL * (1 - REFRESH_AHEAD)  # now too old: the call waits, and fails
    with pytest.raises(OSError, match="database is down"):
        await fresh.get()
    loader.failing = None
    assert await fresh.get() == 4


async def test_a_busy_key_is_checked_in_the_background_and_once_for_all_its_calls(
    store: Store,
) -> None:
    box = SecretBox(Fernet.generate_key())
    key_store = KeyStore(store.engine)
    issued = keys.create_key(key_store, label="busy")
    queries = Loader()  # counts the resolver's queries and can hold one

    class CountingStore:
        def key_by_hash(self, digest: str) -> object:
            queries()
            return key_store.key_by_hash(digest)

    clock = Clock()
    resolver = keys.KeyResolver(CountingStore(), lambda: box, ttl=TTL, clock=clock)  # type: ignore[arg-type]
    grants = await asyncio.gather(*(resolver(issued.secret) for _ in range(32)))
    assert {g.key_id for g in grants} == {issued.row.id}
    assert queries.calls == 1  # 32 calls with a key not seen yet: one query
    clock.now += TTL * REFRESH_AHEAD
    queries.hold()
    grants = await asyncio.wait_for(
        asyncio.gather(*(resolver(issued.secret) for _ in range(32))), 1
    )
    assert len(grants) == 32
    assert await asyncio.to_thread(queries.entered.wait, 5)
    assert queries.calls == 2
    # Revoked elsewhere while the background query was out: it reads the revocation.
    key_store.revoke_key(issued.row.id)
    queries.release()
    await _settled()
    with pytest.raises(AuthError, match="has been revoked"):
        await resolver(issued.secret)
    assert queries.calls == 2
    await resolver.close()


async def test_budget_and_limit_definitions_are_reloaded_without_holding_calls(
    store: Store,
) -> None:
    clock = Clock()
    budgets = BudgetStore(store.engine)
    guard = BudgetGuard(budgets, PriceBook.load(), zone=ZoneInfo("UTC"), ttl=TTL, clock=clock)
    limiter = LimitGuard(LimitStore(store.engine), ttl=TTL, clock=clock)
    assert await guard.budgets() == [] and await limiter.limits() == []
    created = budgets.create_budget(
        scope="global", scope_value="", period="monthly", limit_nanousd=10**12
    )
    clock.now += TTL * REFRESH_AHEAD
    assert await guard.budgets() == []  # the copy held, while the new one loads
    await _settled()
    assert [b.id for b in await guard.budgets()] == [created.id]
    clock.now += TTL * REFRESH_AHEAD
    assert await limiter.limits() == []
    await guard.close()
    await limiter.close()

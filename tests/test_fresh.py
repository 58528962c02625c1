"""Definitions refreshed before they go stale: calls wait for the database only when no
current copy is held, and calls that wait together share one load."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.exc import OperationalError

from spendgate import keys
from spendgate.budgets.guard import BudgetGuard
from spendgate.fresh import REFRESH_AHEAD, Fresh, Notices
from spendgate.limits.guard import LimitGuard
from spendgate.logs import EVERY_SECONDS, Every, describe
from spendgate.pricing import PriceBook
from spendgate.proxy.auth import AuthError, Resolved
from spendgate.proxy.errors import Refused
from spendgate.proxy.forward import RequestInfo
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
    """Counts loads; load N returns N, or raises while ``failing``. ``hold()`` keeps the
    next load in the database (its thread blocks) until ``release(N)``."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing: Exception | None = None
        self._held: set[int] = set()
        self._gates: dict[int, threading.Event] = {}
        self._entered: dict[int, threading.Event] = {}

    @staticmethod
    def _gate(gates: dict[int, threading.Event], number: int) -> threading.Event:
        return gates.setdefault(number, threading.Event())

    def __call__(self) -> int:
        self.calls += 1
        number = self.calls
        self._gate(self._entered, number).set()
        if number in self._held:
            assert self._gate(self._gates, number).wait(10), f"load {number} never released"
        if self.failing is not None:
            raise self.failing
        return number

    def hold(self) -> int:
        """Hold the next load in the database; returns its number."""
        number = self.calls + 1
        self._held.add(number)
        return number

    def release(self, number: int) -> None:
        self._gate(self._gates, number).set()

    async def entered(self, number: int) -> None:
        """Wait until load ``number`` is in the database."""
        assert await asyncio.to_thread(self._gate(self._entered, number).wait, 5)


async def _settled() -> None:
    """Wait until no load is in flight."""
    for _ in range(1000):
        await asyncio.sleep(0.005)
        if not any(t.get_name().startswith("spendgate-load-") for t in asyncio.all_tasks()):
            return
    raise AssertionError("a load is still in flight after 5 s")


def _fresh(loader: Loader, clock: Clock, seen: list[int] | None = None) -> Fresh[int]:
    on_load: Callable[[int], None] | None = seen.append if seen is not None else None
    return Fresh(loader, ttl=TTL, what="test definitions", clock=clock, on_load=on_load)


async def test_calls_that_find_no_copy_wait_for_one_load_together() -> None:
    loader, clock, seen = Loader(), Clock(), []
    fresh = _fresh(loader, clock, seen)
    assert await asyncio.gather(*(fresh.get() for _ in range(32))) == [1] * 32
    assert loader.calls == 1
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
    second = loader.hold()
    # The load is held in the database; the calls do not wait for it.
    answers = await asyncio.wait_for(asyncio.gather(*(fresh.get() for _ in range(32))), 1)
    assert answers == [1] * 32
    await loader.entered(second)
    assert loader.calls == 2  # one background load for all of them
    loader.release(second)
    await _settled()
    assert await fresh.get() == 2
    assert seen == [1, 2]


async def test_a_stale_copy_is_never_returned() -> None:
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    assert await fresh.get() == 1
    clock.now += TTL  # no call came in the refresh window: the copy is too old now
    second = loader.hold()
    calls = [asyncio.create_task(fresh.get()) for _ in range(8)]
    await loader.entered(second)
    await asyncio.sleep(0.02)
    assert not any(call.done() for call in calls)  # they wait for the database
    loader.release(second)
    assert await asyncio.gather(*calls) == [2] * 8
    assert loader.calls == 2


async def test_a_copy_is_as_old_as_the_start_of_its_load() -> None:
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    first = loader.hold()
    call = asyncio.create_task(fresh.get())
    await loader.entered(first)
    clock.now += TTL / 2  # the database took a while to answer
    loader.release(first)
    assert await call == 1
    clock.now += TTL / 2  # TTL since the load started, not since it ended
    second = loader.hold()
    call = asyncio.create_task(fresh.get())
    await loader.entered(second)
    assert not call.done()
    loader.release(second)
    assert await call == 2


async def test_a_load_too_old_to_join_is_not_joined_nor_kept_over_a_newer_one() -> None:
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    first = loader.hold()
    slow = asyncio.create_task(fresh.get())
    await loader.entered(first)
    clock.now += TTL  # whatever the first load reads is too old for a call now
    second = loader.hold()
    newer = asyncio.create_task(fresh.get())
    await loader.entered(second)
    assert loader.calls == 2  # a load of its own
    loader.release(first)  # the old load ends first ...
    assert await slow == 1
    joining = asyncio.create_task(fresh.get())  # ... and this call joins the newer one
    await asyncio.sleep(0.02)
    assert not joining.done() and loader.calls == 2
    loader.release(second)
    assert await newer == 2 and await joining == 2
    assert loader.calls == 2
    assert await fresh.get() == 2  # the newer copy, from memory
    assert loader.calls == 2

    # The other order: the newer load ends first, and the older one must not replace it.
    clock.now += TTL
    third = loader.hold()
    slow = asyncio.create_task(fresh.get())
    await loader.entered(third)
    clock.now += TTL
    newer = asyncio.create_task(fresh.get())
    assert await newer == 4
    loader.release(third)
    assert await slow == 3
    assert await fresh.get() == 4  # the newer copy kept, from memory
    assert loader.calls == 4


async def test_after_invalidate_a_load_started_before_it_does_not_answer() -> None:
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    first = loader.hold()
    before = asyncio.create_task(fresh.get())
    await loader.entered(first)
    fresh.invalidate()  # a change made in this process while the first load was out
    second = loader.hold()
    after = asyncio.create_task(fresh.get())
    await loader.entered(second)
    loader.release(first)  # the load from before the change ends first
    assert await before == 1
    later = asyncio.create_task(fresh.get())
    await asyncio.sleep(0.02)
    assert not later.done()  # it did not take the answer read before the change
    loader.release(second)
    assert await after == 2 and await later == 2
    assert loader.calls == 2


async def test_a_cancelled_call_leaves_the_shared_load_to_the_others() -> None:
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    first = loader.hold()
    gone = asyncio.create_task(fresh.get())
    staying = asyncio.create_task(fresh.get())
    await loader.entered(first)
    gone.cancel()
    await asyncio.sleep(0)
    loader.release(first)
    assert await staying == 1
    assert gone.cancelled()
    assert loader.calls == 1


async def test_a_failed_load_whose_calls_all_went_away_is_not_reported_unretrieved() -> None:
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    unretrieved: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: unretrieved.append(ctx))
    try:
        first = loader.hold()
        gone = asyncio.create_task(fresh.get())
        await loader.entered(first)
        gone.cancel()
        loader.failing = OSError("database is down")
        loader.release(first)
        await _settled()
        assert gone.cancelled()
        del gone  # its traceback holds the load's task
        gc.collect()  # asyncio reports a never-retrieved exception when the task is freed
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(handler)
    assert unretrieved == []
    await fresh.close()


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
    assert (
        "could not reload the test definitions in the background (OSError: database is down)"
        in caplog.text
    )
    for _ in range(20):  # not asked again on every call while it is down
        assert await fresh.get() == 1
    await _settled()
    assert loader.calls == 2
    clock.now += TTL * (1 - REFRESH_AHEAD)  # now too old: the call waits, and fails
    with pytest.raises(OSError, match="database is down"):
        await fresh.get()
    loader.failing = None
    assert await fresh.get() == 4


def _counting_resolver(
    key_store: KeyStore, queries: Loader, clock: Clock, *, read_first: bool = False
) -> keys.KeyResolver:
    """A resolver whose queries ``queries`` counts and can hold: before the key is read,
    or with ``read_first`` after (a query that read the key, then took long to answer)."""
    box = SecretBox(Fernet.generate_key())

    class CountingStore:
        def key_by_hash(self, digest: str) -> object:
            if read_first:
                row = key_store.key_by_hash(digest)
                queries()
                return row
            queries()
            return key_store.key_by_hash(digest)

    return keys.KeyResolver(CountingStore(), lambda: box, ttl=TTL, clock=clock)  # type: ignore[arg-type]


async def test_a_busy_key_is_checked_in_the_background_and_once_for_all_its_calls(
    store: Store,
) -> None:
    key_store = KeyStore(store.engine)
    issued = keys.create_key(key_store, label="busy")
    queries, clock = Loader(), Clock()  # counts the resolver's queries and can hold one
    resolver = _counting_resolver(key_store, queries, clock)
    grants = await asyncio.gather(*(resolver(issued.secret) for _ in range(32)))
    assert {g.key_id for g in grants} == {issued.row.id}
    assert queries.calls == 1  # 32 calls with a key not seen yet: one query
    clock.now += TTL * REFRESH_AHEAD
    second = queries.hold()
    grants = await asyncio.wait_for(
        asyncio.gather(*(resolver(issued.secret) for _ in range(32))), 1
    )
    assert len(grants) == 32
    await queries.entered(second)
    assert queries.calls == 2
    # Revoked elsewhere while the background query was out: it reads the revocation.
    key_store.revoke_key(issued.row.id)
    queries.release(second)
    await _settled()
    with pytest.raises(AuthError, match="has been revoked"):
        await resolver(issued.secret)
    assert queries.calls == 2
    await resolver.close()


async def test_a_key_revoked_here_is_refused_at_once_whatever_a_slow_query_read(
    store: Store,
) -> None:
    key_store = KeyStore(store.engine)
    issued = keys.create_key(key_store, label="revoked here")
    queries, clock = Loader(), Clock()
    resolver = _counting_resolver(key_store, queries, clock, read_first=True)
    first = queries.hold()
    slow = asyncio.create_task(resolver(issued.secret))  # reads the key while active ...
    await queries.entered(first)
    key_store.revoke_key(issued.row.id)  # ... and this process revokes it meanwhile
    resolver.invalidate()
    with pytest.raises(AuthError, match="has been revoked"):
        await resolver(issued.secret)
    queries.release(first)
    assert (await slow).key_id == issued.row.id  # it was let in before the revocation
    for _ in range(3):  # nothing it read answers a later call
        with pytest.raises(AuthError, match="has been revoked"):
            await resolver(issued.secret)
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


_DOWN = "OperationalError: database is down"  # the class, and what the driver said
_COULD_NOT_LOAD = (
    f"could not load the %s ({_DOWN}); the calls waiting for it failed, "
    "and the next call tries again"
)
_BUDGETS_REFUSED = f"budget check failed, refusing the call: {_DOWN}"
_LIMITS_REFUSED = f"rate limit check failed, refusing the call: {_DOWN}"


class _DatabaseDown:
    """A store whose every query fails as a database that is down does."""

    def __init__(self) -> None:
        self.queries = 0

    def _fail(self, *args: object) -> Any:
        self.queries += 1
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database is down"))

    list_budgets = list_limits = key_by_hash = _fail


async def test_an_outage_refuses_calls_with_503s_and_logs_once_per_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "spendgate")
    clock, down = Clock(), _DatabaseDown()
    guard = BudgetGuard(down, PriceBook.load(), zone=ZoneInfo("UTC"), ttl=TTL, clock=clock)  # type: ignore[arg-type]
    limiter = LimitGuard(down, ttl=TTL, clock=clock)  # type: ignore[arg-type]
    box = SecretBox(Fernet.generate_key())
    resolver = keys.KeyResolver(down, lambda: box, ttl=TTL, clock=clock)  # type: ignore[arg-type]
    resolved, info = Resolved(upstream_auth=None), RequestInfo(model="claude-sonnet-4-6")
    for n in range(5):
        with pytest.raises(Refused) as budget_refused:
            await guard.reserve(resolved, info, "/v1/messages")
        assert budget_refused.value.status == 503
        assert budget_refused.value.reason == "budget_unavailable"
        with pytest.raises(Refused) as limit_refused:
            await limiter.reserve(resolved, info, "/v1/messages")
        assert limit_refused.value.status == 503
        assert limit_refused.value.reason == "rate_limit_unavailable"
        with pytest.raises(AuthError) as key_refused:  # a key of its own each time
            await resolver(f"sg-a-key-of-its-own-{n}")
        assert key_refused.value.status == 503
    assert down.queries == 15  # every call asked: the database may be back
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [  # one per definitions and one per refusing guard, not one per call
        ("spendgate.fresh", "WARNING", _COULD_NOT_LOAD % "budgets"),
        ("spendgate.budgets", "ERROR", _BUDGETS_REFUSED),
        ("spendgate.fresh", "WARNING", _COULD_NOT_LOAD % "rate limits"),
        ("spendgate.limits", "ERROR", _LIMITS_REFUSED),
        ("spendgate.fresh", "WARNING", _COULD_NOT_LOAD % "proxy key"),
    ]
    caplog.clear()
    clock.now += EVERY_SECONDS  # the next line says how many were held back
    with pytest.raises(Refused):
        await guard.reserve(resolved, info, "/v1/messages")
    more = " (4 more like this in the 10 s before)"
    assert [r.getMessage() for r in caplog.records] == [
        _COULD_NOT_LOAD % "budgets" + more,
        _BUDGETS_REFUSED + more,
    ]
    await guard.close()
    await limiter.close()
    await resolver.close()


async def test_a_failed_load_is_logged_once_per_window_and_the_first_that_works_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "spendgate.fresh")
    loader, clock = Loader(), Clock()
    fresh = _fresh(loader, clock)
    assert await fresh.get() == 1
    loader.failing = OSError("database is down")
    for _ in range(3):  # background reloads, a retry interval apart, all failing
        clock.now += 1 if loader.calls > 1 else TTL * REFRESH_AHEAD
        assert await fresh.get() == 1
        await _settled()
    assert loader.calls == 4
    clock.now += 0.5  # stale now: calls wait for loads of their own, which fail
    for _ in range(3):
        with pytest.raises(OSError, match="database is down"):
            await fresh.get()
    assert [r.getMessage() for r in caplog.records] == [
        "could not reload the test definitions in the background (OSError: database is "
        "down); the copy held is used until it is 10s old, then calls wait for the database"
    ]
    caplog.clear()
    clock.now += EVERY_SECONDS
    with pytest.raises(OSError, match="database is down"):
        await fresh.get()
    assert [r.getMessage() for r in caplog.records] == [
        "could not load the test definitions (OSError: database is down); the calls "
        "waiting for it failed, and the next call tries again (5 more like this in the "
        "12 s before)"
    ]
    caplog.clear()
    loader.failing = None
    assert await fresh.get() == 9
    clock.now += TTL
    assert await fresh.get() == 10
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "loaded the test definitions again after 7 failed loads")
    ]


async def test_the_log_never_ends_on_a_failure_that_is_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two short outages within the window: the second failure's line is held back, and
    so is the line of the load that works after it; the first outage's pair is written."""
    caplog.set_level(logging.INFO, "spendgate.fresh")
    loader, clock = Loader(), Clock()
    notices = Notices(clock)
    keys_ = [Fresh(loader, ttl=TTL, what="proxy key", clock=clock, notices=notices) for _ in "ab"]
    for _ in range(2):  # two outages
        loader.failing = OSError("database is down")
        for fresh in keys_:
            fresh.invalidate()  # no copy held: a call waits for a load
            with pytest.raises(OSError):
                await fresh.get()
        loader.failing = None
        clock.now += 1
        for fresh in keys_:
            await fresh.get()
        clock.now += 1
    assert [r.getMessage() for r in caplog.records] == [
        "could not load the proxy key (OSError: database is down); the calls waiting for "
        "it failed, and the next call tries again",
        "loaded the proxy key again after 1 failed load",
    ]
    caplog.clear()
    # A third outage just past the failure line's window, and over before the first
    # "again" line's would be: both lines again, so the log ends on the recovery.
    clock.now = 1010.6
    loader.failing = OSError("database is down")
    keys_[0].invalidate()
    with pytest.raises(OSError):
        await keys_[0].get()
    loader.failing = None
    clock.now = 1010.8
    await keys_[0].get()
    assert [r.getMessage() for r in caplog.records] == [
        "could not load the proxy key (OSError: database is down); the calls waiting for "
        "it failed, and the next call tries again (3 more like this in the 11 s before)",
        "loaded the proxy key again after 1 failed load",
    ]


def test_every_writes_a_line_once_per_window_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "spendgate.test")
    logger = logging.getLogger("spendgate.test")
    clock = Clock()
    every = Every(10.0, clock)
    assert every.log(logger, logging.ERROR, "down: %s", "refused")
    clock.now += 9.9
    assert [every.log(logger, logging.ERROR, "down: %s", "refused") for _ in range(3)] == [
        False,
        False,
        False,
    ]
    clock.now += 0.1
    assert every.log(logger, logging.ERROR, "down: %s", "refused")
    assert not every.log(logger, logging.ERROR, "down: %s", "refused")
    clock.now += 60
    assert every.log(logger, logging.WARNING, "down: %s", "refused")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "down: refused"),
        ("ERROR", "down: refused (3 more like this in the 10 s before)"),
        ("WARNING", "down: refused (1 more like this in the 60 s before)"),
    ]


def test_describe_says_what_the_driver_said_without_secrets() -> None:
    wrapped = OperationalError(
        "SELECT 1",
        {},
        ConnectionRefusedError(
            "connection to postgresql://spendgate:hunter2hunter2@db:5432/x refused\n  Is it up?"
        ),
    )
    assert describe(wrapped) == (
        "OperationalError: connection to postgresql://spendgate:***@db:5432/x refused Is it up?"
    )
    assert describe(TimeoutError()) == "TimeoutError"

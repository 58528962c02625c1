"""Rate limits: token buckets in the database, 429 + retry-after through the SDK, exact
across gateways sharing PostgreSQL, token limits settled to real usage."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from spendgate.cli.main import cli
from spendgate.limits.guard import (
    LEASE_IDLE,
    LEASE_MAX_CALLS,
    LEASE_MIN_CALLS,
    LEASE_REFILL,
    LimitGuard,
    _Slot,
)
from spendgate.limits.model import RateLimit
from spendgate.proxy import forward
from spendgate.proxy.auth import Resolved
from spendgate.proxy.errors import Refused
from spendgate.proxy.forward import RequestInfo
from spendgate.proxy.upstream import UpstreamClient
from spendgate.records import Attribution, CallRecord
from spendgate.storage import Store
from spendgate.storage.limits import MINUTE_US, Charge, LimitStore, RateLimited, wait_us
from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.testing.prometheus import scrape, total
from spendgate.testing.upstream import FakeUpstream
from spendgate.usage import Usage

UPSTREAM_KEY = "sk-ant-api03-upstream-limits-test-secret"
MODEL = "claude-sonnet-4-6"
T0 = 1_800_000_000_000_000  # a wall-clock instant in microseconds
HI = [{"role": "user", "content": "hi"}]


# -- the store: token buckets --------------------------------------------------------


def test_bucket_fills_refuses_and_drains_continuously(store: Store) -> None:
    limits = LimitStore(store.engine)
    rpm = limits.create_limit(scope="user", scope_value="*", requests_per_minute=3)
    ann = Charge(rpm, "ann", requests=1)
    for _ in range(3):
        limits.take([ann], T0)
    with pytest.raises(RateLimited) as full:
        limits.take([ann], T0)
    assert full.value.metric == "requests"
    assert full.value.wait_us == 20_000_000  # one request drains every 20 s
    assert full.value.level.used("requests") == 3
    limits.take([Charge(rpm, "bob", requests=1)], T0)  # each user has a bucket of their own
    with pytest.raises(RateLimited):
        limits.take([ann], T0 + 19_999_999)
    limits.take([ann], T0 + 20_000_000)  # exactly one request has drained
    stored = limits.bucket(rpm, "ann")
    assert stored is not None
    assert (stored.requests, stored.refused) == (3 * MINUTE_US, 2)


def test_take_is_all_or_nothing_and_settle_counts_real_tokens(store: Store) -> None:
    limits = LimitStore(store.engine)
    roomy = limits.create_limit(scope="global", scope_value="", output_tokens_per_minute=10_000)
    tight = limits.create_limit(scope="key", scope_value="k1", output_tokens_per_minute=1_000)
    taken = [Charge(roomy, "", 1, 0, 600), Charge(tight, "k1", 1, 0, 600)]
    limits.take(taken, T0)
    with pytest.raises(RateLimited) as full:
        limits.take(taken, T0)
    assert full.value.charge.limit.id == tight.id
    assert full.value.wait_us == wait_us(600 * MINUTE_US, 600, 1_000) == 12_000_000
    # Nothing was taken from the bucket that had room.
    roomy_level = limits.bucket(roomy, "")
    assert roomy_level is not None and roomy_level.output_tokens == 600 * MINUTE_US
    # The call really produced 5 tokens: 595 are given back everywhere.
    limits.settle(taken, [Charge(roomy, "", 1, 0, 5), Charge(tight, "k1", 1, 0, 5)], T0)
    tight_level = limits.bucket(tight, "k1")
    assert tight_level is not None and tight_level.output_tokens == 5 * MINUTE_US
    limits.take(taken, T0)  # 5 + 600 fits now


def test_call_bigger_than_the_limit_passes_when_empty_then_counts_in_full(store: Store) -> None:
    limits = LimitStore(store.engine)
    itpm = limits.create_limit(scope="global", scope_value="", input_tokens_per_minute=100)
    big = Charge(itpm, "", 1, 250, 0)
    limits.take([big], T0)  # clamped to a whole bucket: it could never fit otherwise
    limits.settle([big], [Charge(itpm, "", 1, 150, 0)], T0)
    with pytest.raises(RateLimited) as full:
        limits.take([Charge(itpm, "", 1, 10, 0)], T0)
    assert full.value.wait_us == 36_000_000  # 60 tokens over: 36 s at 100 tokens/min


def test_deleted_limit_is_skipped(store: Store) -> None:
    limits = LimitStore(store.engine)
    gone = limits.create_limit(scope="global", scope_value="", requests_per_minute=1)
    kept = limits.create_limit(scope="user", scope_value="ann", requests_per_minute=5)
    limits.delete_limit(gone.id)
    limits.take([Charge(gone, "", 1), Charge(kept, "ann", 1)], T0)
    limits.take([Charge(gone, "", 1), Charge(kept, "ann", 1)], T0)  # no refusal, no bucket
    assert limits.bucket(gone, "") is None
    kept_level = limits.bucket(kept, "ann")
    assert kept_level is not None and kept_level.requests == 2 * MINUTE_US


def test_limit_definitions_are_validated(store: Store) -> None:
    limits = LimitStore(store.engine)
    with pytest.raises(ValueError, match="at least one of requests"):
        limits.create_limit(scope="global", scope_value="")
    with pytest.raises(ValueError, match="from 1 to"):
        limits.create_limit(scope="global", scope_value="", requests_per_minute=0)


def test_each_value_and_single_value_subjects() -> None:
    from spendgate.records import Attribution

    each = RateLimit("1", "u", "user", "*", requests_per_minute=1)
    one = RateLimit("2", "t", "team", "Eng", requests_per_minute=1)
    who = Attribution(key_id="k", team="Eng", user="ann")
    assert each.subject(who) == "ann"
    assert each.subject(Attribution(key_id="k")) is None
    assert one.subject(who) == "Eng"
    assert one.subject(Attribution(team="Ops")) is None
    assert RateLimit("3", "g", "global", "", requests_per_minute=1).subject(Attribution()) == ""


# -- leases: busy buckets counted from memory -------------------------------------------


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _guard(limits: LimitStore, clock: Callable[[], float] = time.monotonic) -> LimitGuard:
    # The wall clock stands still: buckets do not drain, so their levels are exact sums.
    return LimitGuard(limits, ttl=0.0, clock=clock, now_us=lambda: T0)


def _info(max_tokens: int) -> RequestInfo:
    return RequestInfo(model=MODEL, max_tokens=max_tokens, body=b"x" * 300)


def _resolved(key: str = "k1") -> Resolved:
    return Resolved(attribution=Attribution(key_id=key), upstream_auth=None)


def _used(input_tokens: int, output_tokens: int) -> CallRecord:
    record = CallRecord()
    record.usage = Usage.from_raw({"input_tokens": input_tokens, "output_tokens": output_tokens})
    return record


async def _calls(
    guard: LimitGuard, n: int, rng: random.Random, out: list[tuple[int, int]]
) -> list[str]:
    """``n`` calls one after another; what each really used goes to ``out``."""
    outcomes = []
    for _ in range(n):
        try:
            hold = await guard.reserve(_resolved(), _info(1000), "/v1/messages")
        except Refused:
            outcomes.append("refused")
            continue
        await asyncio.sleep(0)
        # Up to twice the estimates (100 input, 1,000 output): a call can owe its lease.
        used = (rng.randrange(0, 200), rng.randrange(0, 2000))
        out.append(used)
        await guard.settle(hold, _used(*used))
        outcomes.append("ok")
    return outcomes


def _level(limits: LimitStore, limit: RateLimit, subject: str) -> tuple[int, int, int]:
    level = limits.bucket(limit, subject)
    assert level is not None
    return (level.requests, level.input_tokens, level.output_tokens)


async def test_busy_buckets_are_leased_and_count_every_call_exactly(store: Store) -> None:
    limits = LimitStore(store.engine)
    every = limits.create_limit(
        scope="global",
        scope_value="",
        requests_per_minute=10_000_000,
        input_tokens_per_minute=50_000_000,
        output_tokens_per_minute=90_000_000,
    )
    per_key = limits.create_limit(scope="key", scope_value="*", requests_per_minute=5_000_000)
    first, second = _guard(limits), _guard(limits)  # two processes on one database
    rng = random.Random(7)
    used: list[tuple[int, int]] = []
    done = await asyncio.gather(
        *(_calls(guard, 150, rng, used) for guard in (first, second) for _ in range(4))
    )
    assert all(outcome == "ok" for batch in done for outcome in batch)
    # 1,200 calls in far fewer transactions: the leases took them from memory.
    assert first.stats.transactions + second.stats.transactions < 200
    await first.close()
    await second.close()  # every lease's unused room goes back
    calls = len(used)
    assert _level(limits, per_key, "k1") == (calls * MINUTE_US, 0, 0)
    assert _level(limits, every, "") == (
        calls * MINUTE_US,
        sum(i for i, _ in used) * MINUTE_US,
        sum(o for _, o in used) * MINUTE_US,
    )


async def test_near_the_limit_two_processes_let_exactly_the_limit_through(store: Store) -> None:
    limits = LimitStore(store.engine)
    rpm = limits.create_limit(scope="key", scope_value="k1", requests_per_minute=2_000)
    first, second = _guard(limits), _guard(limits)
    rng = random.Random(11)
    passed = refused = 0
    while refused < 20:  # until both have been refused ten times in a row, in turns
        guard = first if rng.random() < 0.5 else second
        try:
            await guard.reserve(_resolved(), _info(16), "/v1/messages")
        except Refused as refusal:
            assert refusal.status == 429
            refused += 1
            continue
        passed += 1
        refused = 0
    assert passed == 2_000  # leases never let more through; near the limit none is held
    assert first.stats.transactions + second.stats.transactions < 1_000
    await first.close()
    await second.close()
    assert _level(limits, rpm, "k1") == (2_000 * MINUTE_US, 0, 0)


def test_a_leases_quick_checks_say_what_its_arithmetic_says() -> None:
    """The checks every leased call runs (room for a charge, a lease running low,
    something to give back) against what they stand for, over held amounts around a
    lease's marks: debts, empty, below and above half, one lease, three halves."""
    limit = RateLimit(
        "1", "g", "global", "", requests_per_minute=10**6, output_tokens_per_minute=10**8
    )
    covered = (0, 2)  # requests and output tokens; input tokens are not limited
    slot = _Slot(limit, "", used_at=0.0, window_at=0.0)
    amounts = (-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1000)
    for lease in (None, Charge(limit, "", 4, 0, 6), Charge(limit, "", 1, 0, 0)):
        slot.lease = lease
        one = lease.amounts if lease is not None else (0, 0, 0)
        for r, i, o in itertools.product(amounts, (0, 5), amounts):
            slot.held = [r, i, o]
            back = slot.surplus()
            assert slot.has_surplus() == any(back), (lease, slot.held, back)
            # A debt is given back in full; past three halves of a lease, down to one.
            for at, held in enumerate(slot.held):
                due = held < 0 or 2 * held > 3 * one[at]
                assert back[at] == ((held - one[at] if held > 0 else held) if due else 0)
            if lease is not None:
                low = any(slot.held[at] * LEASE_REFILL < one[at] for at in covered)
                assert slot.low() == low, (lease, slot.held)
            for charge in (Charge(limit, "", 1, 50, 3), Charge(limit, "", 1, 50, 0)):
                # A charge of nothing on a limited rate still needs a unit of room there.
                room = all(slot.held[at] >= max(charge.amounts[at], 1) for at in covered)
                assert slot.covers(charge) == room, (slot.held, charge)


async def test_a_busy_bucket_under_a_vast_limit_is_leased_a_capped_lease(store: Store) -> None:
    """Leases are sized to the calls of the last second, at most LEASE_MAX_CALLS: a
    bucket whose limit is far above the load takes few transactions, and never holds
    more than the cap however fast its calls come."""
    limits = LimitStore(store.engine)
    limits.create_limit(scope="global", scope_value="", requests_per_minute=100_000_000)
    guard = _guard(limits, _Clock())  # the clock stands still: every call in one second
    leases = []
    for n in range(6_144):
        hold = await guard.reserve(_resolved(), _info(16), "/v1/messages")
        await guard.settle(hold, _used(10, 10))
        slot = guard._slots.get((hold.charges[0].limit.id, "")) if hold else None
        if slot is not None and slot.lease is not None:
            leases.append(slot.lease.requests)
        if n % 64 == 0:
            await asyncio.sleep(0.01)  # the task tops the lease up
    await guard.close()
    assert max(leases) == LEASE_MAX_CALLS
    # Leases grow with the rate, then a top-up every half lease: 23 transactions for
    # these 6,144 calls (with leases of at most 256 calls, 61).
    assert guard.stats.transactions <= 30


async def test_an_idle_lease_goes_back_and_a_quiet_bucket_is_not_leased(store: Store) -> None:
    limits = LimitStore(store.engine)
    rpm = limits.create_limit(scope="key", scope_value="*", requests_per_minute=1_000_000)
    clock = _Clock()
    guard = _guard(limits, clock)
    for _ in range(LEASE_MIN_CALLS - 1):  # a few calls a second: each one in the database
        await guard.reserve(_resolved("quiet"), _info(16), "/v1/messages")
    assert guard.stats.transactions == LEASE_MIN_CALLS - 1
    assert _level(limits, rpm, "quiet")[0] == (LEASE_MIN_CALLS - 1) * MINUTE_US
    for _ in range(40):
        await guard.reserve(_resolved("busy"), _info(16), "/v1/messages")
    assert _level(limits, rpm, "busy")[0] > 40 * MINUTE_US  # a lease is held on top
    for _ in range(200):
        clock.now += LEASE_IDLE
        guard._kick()  # the task's timer runs on the real clock: look now
        await asyncio.sleep(0.01)
        if _level(limits, rpm, "busy")[0] == 40 * MINUTE_US:
            break
    assert _level(limits, rpm, "busy")[0] == 40 * MINUTE_US  # the unused room went back
    await guard.close()


async def test_a_deleted_limits_lease_is_given_back_and_its_calls_settle(store: Store) -> None:
    limits = LimitStore(store.engine)
    kept = limits.create_limit(scope="global", scope_value="", output_tokens_per_minute=10**8)
    gone = limits.create_limit(scope="key", scope_value="*", output_tokens_per_minute=10**8)
    guard = _guard(limits)
    for _ in range(20):
        hold = await guard.reserve(_resolved(), _info(1000), "/v1/messages")
        await guard.settle(hold, _used(0, 10))
    in_flight = await guard.reserve(_resolved(), _info(1000), "/v1/messages")
    limits.delete_limit(gone.id)
    after = await guard.reserve(_resolved(), _info(1000), "/v1/messages")  # reloads
    assert after is not None and [c.limit.id for c in after.charges] == [kept.id]
    await guard.settle(in_flight, _used(0, 10))  # its lease is gone: settled in the database
    await guard.settle(after, _used(0, 10))
    await guard.close()
    assert limits.bucket(gone, "k1") is None
    assert _level(limits, kept, "") == (0, 0, 22 * 10 * MINUTE_US)


async def test_quiet_buckets_are_forgotten_once_idle(store: Store) -> None:
    limits = LimitStore(store.engine)
    limits.create_limit(scope="key", scope_value="*", requests_per_minute=100)
    clock = _Clock()
    guard = _guard(limits, clock)
    for i in range(50):  # one call each from 50 keys: no lease, but counted per bucket
        await guard.reserve(_resolved(f"key-{i}"), _info(16), "/v1/messages")
    assert len(guard._slots) == 50
    clock.now += LEASE_IDLE
    for _ in range(300):  # the task's next round, due by the real clock within a second
        if not guard._slots:
            break
        await asyncio.sleep(0.01)
    assert not guard._slots  # memory does not grow with every key ever seen
    await guard.close()


def test_a_lease_is_taken_only_with_headroom_behind_it(store: Store) -> None:
    limits = LimitStore(store.engine)
    rpm = limits.create_limit(scope="global", scope_value="", requests_per_minute=1_000)
    call, lease = Charge(rpm, "", 1), Charge(rpm, "", 10)
    assert limits.take([call], T0, leases=[lease]) == (True,)  # 11 in use
    limits.take([Charge(rpm, "", 939)], T0)  # 950 in use: 50 left
    # 1 + 10 more and 4 x 10 free behind them would need 51: the call alone is taken.
    assert limits.take([call], T0, leases=[lease]) == (False,)
    assert _level(limits, rpm, "") == (951 * MINUTE_US, 0, 0)
    assert limits.rebalance([], [Charge(rpm, "", 9)], T0) == (True,)  # 9 + 36 <= 49
    # 5 given back (955 in use, 45 free) in the same transaction; 10 + 40 do not fit.
    assert limits.rebalance([Charge(rpm, "", 5)], [Charge(rpm, "", 10)], T0) == (False,)
    assert _level(limits, rpm, "") == (955 * MINUTE_US, 0, 0)


async def test_a_refusal_gives_back_what_the_call_took_from_leases(store: Store) -> None:
    limits = LimitStore(store.engine)
    roomy = limits.create_limit(scope="global", scope_value="", requests_per_minute=10**7)
    tight = limits.create_limit(scope="key", scope_value="k1", requests_per_minute=300)
    guard = _guard(limits)
    outcomes = await _calls(guard, 320, random.Random(3), [])
    # The tight limit is too small to lease: each call checks it in the database, after
    # taking the roomy one from its lease, and a refused call gives that back.
    assert (outcomes.count("ok"), outcomes.count("refused")) == (300, 20)
    await guard.close()
    assert _level(limits, roomy, "")[0] == 300 * MINUTE_US
    assert _level(limits, tight, "k1")[0] == 300 * MINUTE_US


class _SlowStore(LimitStore):
    """Takes that last ``delay`` seconds, or fail while ``down``."""

    delay = 0.0
    down = False

    def take(self, *args: Any, **kwargs: Any) -> tuple[bool, ...]:
        time.sleep(self.delay)
        if self.down:
            raise OperationalError("take", {}, Exception("the database is down"))
        return super().take(*args, **kwargs)

    def rebalance(self, *args: Any, **kwargs: Any) -> tuple[bool, ...]:
        if self.down:
            raise OperationalError("rebalance", {}, Exception("the database is down"))
        return super().rebalance(*args, **kwargs)


async def test_a_call_cancelled_while_its_take_runs_leaves_nothing_taken(store: Store) -> None:
    limits = _SlowStore(store.engine)
    rpm = limits.create_limit(scope="global", scope_value="", requests_per_minute=10**7)
    guard = _guard(limits)
    for _ in range(LEASE_MIN_CALLS - 1):  # each in the database, no lease yet
        await guard.reserve(_resolved(), _info(16), "/v1/messages")
    limits.delay = 0.3
    # The next call takes from the database with a lease; it is cancelled meanwhile
    # (its client gone, or a shutdown's deadline), and the transaction still commits.
    call = asyncio.create_task(guard.reserve(_resolved(), _info(16), "/v1/messages"))
    await asyncio.sleep(0.1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await guard.close()  # waits for the take, then gives its lease and the call back
    assert guard.stats.transactions == LEASE_MIN_CALLS + 1
    assert _level(limits, rpm, "")[0] == (LEASE_MIN_CALLS - 1) * MINUTE_US


async def test_shutdown_does_not_hang_while_the_database_is_down(store: Store) -> None:
    limits = _SlowStore(store.engine)
    limits.create_limit(scope="global", scope_value="", output_tokens_per_minute=10**8)
    guard = _guard(limits)
    for _ in range(20):
        hold = await guard.reserve(_resolved(), _info(1000), "/v1/messages")
        await guard.settle(hold, _used(0, 5_000))  # more than estimated: owed, due now
    limits.down = True
    await asyncio.sleep(0.05)  # the task's round fails and pauses before a retry
    started = time.monotonic()
    await asyncio.wait_for(guard.close(), 5)
    assert time.monotonic() - started < 3


async def test_a_deleted_limits_lease_goes_back_by_the_next_round(store: Store) -> None:
    limits = LimitStore(store.engine)
    limits.create_limit(scope="global", scope_value="", requests_per_minute=10**7)
    gone = limits.create_limit(scope="key", scope_value="*", requests_per_minute=10**7)
    given: list[Charge] = []
    rebalance = limits.rebalance

    def spy(returns: Any, leases: Any, now_us: int) -> tuple[bool, ...]:
        given.extend(returns)
        return rebalance(returns, leases, now_us)

    limits.rebalance = spy  # type: ignore[method-assign]
    guard = _guard(limits)
    await _calls(guard, 20, random.Random(1), [])
    limits.delete_limit(gone.id)
    await guard.reserve(_resolved(), _info(16), "/v1/messages")  # reloads: retired
    for _ in range(100):
        if any(c.limit.id == gone.id for c in given):
            break
        await asyncio.sleep(0.01)
    back = [c for c in given if c.limit.id == gone.id]
    assert back and back[0].requests > 0  # its unused room, given back without waiting
    await guard.close()


# -- through the gateway ---------------------------------------------------------------


def _create_key(url: str, **extra: Any) -> dict[str, Any]:
    body = {"label": "limited", "upstream_key": UPSTREAM_KEY, **extra}
    resp = httpx.post(f"{url}/api/keys", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _create_limit(url: str, **body: Any) -> dict[str, Any]:
    resp = httpx.post(f"{url}/api/limits", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _bucket(gateway: GatewayServer, limit_id: str) -> dict[str, Any]:
    gateway.flush()  # calls settle after their answer is sent: wait for them
    report = httpx.get(f"{gateway.url}/api/limits/{limit_id}", timeout=10).json()
    assert len(report["buckets"]) == 1, report
    data: dict[str, Any] = report["buckets"][0]
    return data


def test_sdk_sees_rate_limit_error_with_retry_after(
    sqlite_gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    key = _create_key(sqlite_gateway.url)
    limit = _create_limit(
        sqlite_gateway.url, scope="key", value=key["id"], requests_per_minute=2, name="alice rpm"
    )
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"], max_retries=0)
    for _ in range(2):
        client.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
    response = limited.value.response
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 30  # one request drains per 30 s
    assert "x-should-retry" not in response.headers  # the SDKs retry this one
    error = limited.value.body["error"]  # type: ignore[index]
    assert error["type"] == "rate_limit_error"
    message = error["message"]
    assert message.startswith("spendgate: rate limit 'alice rpm'")
    assert "2 of 2 requests per minute in use" in message and "room again in" in message
    assert len(upstream.served) == 2  # the refused call never left the gateway
    assert _bucket(sqlite_gateway, limit["id"])["refused"] == 1
    sqlite_gateway.flush()
    rows = httpx.get(f"{sqlite_gateway.url}/api/requests").json()["data"]
    assert sorted((r["status_code"], r["error_type"]) for r in rows)[-1] == (429, "rate_limited")


def test_calls_are_refused_with_a_503_while_limits_cannot_be_read(
    sqlite_gateway: GatewayServer, upstream: FakeUpstream, tmp_path: Path
) -> None:
    key = _create_key(sqlite_gateway.url)
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"], max_retries=0)
    db = sqlite3.connect(tmp_path / "spendgate.db")
    db.execute("ALTER TABLE rate_limits RENAME TO rate_limits_away")
    db.commit()
    try:
        for _ in range(3):
            with pytest.raises(anthropic.InternalServerError) as refused:
                client.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
            assert refused.value.status_code == 503
            error = refused.value.body["error"]  # type: ignore[index]
            assert error["type"] == "api_error"
            assert error["message"].startswith("spendgate: cannot check rate limits")
        assert upstream.served == []  # fail closed: nothing was forwarded
    finally:
        db.execute("ALTER TABLE rate_limits_away RENAME TO rate_limits")
        db.commit()
        db.close()
    sqlite_gateway.flush()
    rows = httpx.get(f"{sqlite_gateway.url}/api/requests").json()["data"]
    assert [(r["status_code"], r["error_type"]) for r in rows] == [
        (503, "rate_limit_unavailable")
    ] * 3
    assert client.messages.create(model=MODEL, max_tokens=16, messages=HI).id  # type: ignore[arg-type]


def test_each_user_gets_a_bucket_of_their_own(sqlite_gateway: GatewayServer) -> None:
    key = _create_key(sqlite_gateway.url)
    _create_limit(sqlite_gateway.url, scope="user", value="*", requests_per_minute=1)
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"], max_retries=0)

    def call(user: str) -> None:
        client.messages.create(
            model=MODEL,
            max_tokens=16,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-spendgate-user": user},
        )

    call("ann")
    with pytest.raises(anthropic.RateLimitError) as limited:
        call("ann")
    assert "for user ann" in limited.value.message
    call("bob")
    call_without_user = client.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
    assert call_without_user.id  # "each user" does not cover calls without one


def test_output_token_limit_counts_max_tokens_then_settles_to_usage(
    sqlite_gateway: GatewayServer,
) -> None:
    key = _create_key(sqlite_gateway.url)
    limit = _create_limit(
        sqlite_gateway.url, scope="key", value=key["id"], output_tokens_per_minute=1000
    )
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"], max_retries=0)
    used = {"input_tokens": 3, "output_tokens": 600}
    client.messages.create(
        model=MODEL,
        max_tokens=600,
        messages=HI,  # type: ignore[arg-type]
        extra_headers={"x-fake-usage": json.dumps(used)},
    )
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=MODEL, max_tokens=600, messages=HI)  # type: ignore[arg-type]
    assert "output tokens per minute" in limited.value.message
    assert 9 <= int(limited.value.response.headers["retry-after"]) <= 12  # ~200 tokens over
    # 300 more fit; the call only produces 5 tokens, so 295 are given back at once.
    with client.messages.stream(
        model=MODEL,
        max_tokens=300,
        messages=HI,  # type: ignore[arg-type]
        extra_headers={"x-fake-usage": json.dumps({"input_tokens": 3, "output_tokens": 5})},
    ) as stream:
        stream.get_final_message()
    in_use = _bucket(sqlite_gateway, limit["id"])["usage"]["output_tokens"]["in_use"]
    assert 500 <= in_use <= 605  # 605 counted, minus what drained meanwhile (16.7 a second)


def test_input_token_limit_counts_real_input_and_cache_writes(
    sqlite_gateway: GatewayServer,
) -> None:
    key = _create_key(sqlite_gateway.url)
    limit = _create_limit(
        sqlite_gateway.url, scope="key", value=key["id"], input_tokens_per_minute=1000
    )
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"], max_retries=0)
    used = {
        "input_tokens": 400,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 5000,  # cache reads do not count, as at Anthropic
        "output_tokens": 1,
    }
    client.messages.create(
        model=MODEL,
        max_tokens=16,
        messages=HI,  # type: ignore[arg-type]
        extra_headers={"x-fake-usage": json.dumps(used)},
    )
    in_use = _bucket(sqlite_gateway, limit["id"])["usage"]["input_tokens"]["in_use"]
    assert 600 <= in_use <= 700  # 700 counted, minus what drained meanwhile
    long_prompt = [{"role": "user", "content": "x" * 1200}]  # estimated at 400+ tokens
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=MODEL, max_tokens=16, messages=long_prompt)  # type: ignore[arg-type]
    assert "input tokens per minute" in limited.value.message


def test_no_database_round_trip_when_no_limit_applies(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    url = f"sqlite:///{tmp_path / 'spendgate.db'}"
    settings = gateway_settings(tmp_path, upstream.url, url, key_cache_ttl=600)
    with GatewayServer(settings) as gateway:
        _no_round_trip(gateway)


def _no_round_trip(sqlite_gateway: GatewayServer) -> None:
    free = _create_key(sqlite_gateway.url, label="free")
    limited = _create_key(sqlite_gateway.url, label="limited")
    _create_limit(sqlite_gateway.url, scope="key", value=limited["id"], requests_per_minute=100)
    warm = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=free["key"])
    warm.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
    statements: list[str] = []  # definitions are cached now (for SPENDGATE_KEY_CACHE_TTL)
    assert sqlite_gateway.app.store is not None
    engine = sqlite_gateway.app.store.engine

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "rate_limit" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        for key in (free, free, free):
            client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"])
            client.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
        assert statements == []
        client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=limited["key"])
        client.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
        assert len(statements) == 1  # one upsert; a requests-only limit needs no settling
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def test_metrics_count_where_limited_calls_were_checked(sqlite_gateway: GatewayServer) -> None:
    key = _create_key(sqlite_gateway.url)
    _create_limit(sqlite_gateway.url, scope="key", value=key["id"], requests_per_minute=100_000)
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"])
    for _ in range(30):  # quickly enough to lease after LEASE_MIN_CALLS calls
        client.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
    samples = scrape(sqlite_gateway.url)
    in_database = total(samples, "spendgate_rate_limit_checks_total", where="database")
    from_leases = total(samples, "spendgate_rate_limit_checks_total", where="lease")
    assert in_database + from_leases == 30
    assert LEASE_MIN_CALLS <= in_database < 15 and from_leases > 15
    assert 1 <= total(samples, "spendgate_rate_limit_transactions_total") < 20


def test_budget_refusal_gives_the_rate_limit_back(sqlite_gateway: GatewayServer) -> None:
    key = _create_key(sqlite_gateway.url)
    limit = _create_limit(sqlite_gateway.url, scope="key", value=key["id"], requests_per_minute=5)
    resp = httpx.post(
        f"{sqlite_gateway.url}/api/budgets",
        json={"scope": "key", "value": key["id"], "limit_usd": "0.000001"},
    )
    assert resp.status_code == 201
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"], max_retries=3)
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
    assert "exhausted" in refused.value.message
    assert _bucket(sqlite_gateway, limit["id"])["usage"]["requests"]["in_use"] == 0


def test_a_fault_in_the_budget_check_gives_the_rate_limit_back(
    sqlite_gateway: GatewayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = _create_key(sqlite_gateway.url)
    limit = _create_limit(sqlite_gateway.url, scope="key", value=key["id"], requests_per_minute=5)
    governance = sqlite_gateway.app.governance
    assert governance is not None and governance.guard is not None

    async def faulty(*args: Any) -> Any:
        raise RuntimeError("an injected fault")

    monkeypatch.setattr(governance.guard, "reserve", faulty)
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"], max_retries=0)
    with pytest.raises(anthropic.InternalServerError) as failed:
        client.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
    assert failed.value.status_code == 500
    assert _bucket(sqlite_gateway, limit["id"])["usage"]["requests"]["in_use"] == 0


def test_a_fault_gives_the_request_back_only_if_the_call_was_not_forwarded(
    sqlite_gateway: GatewayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = _create_key(sqlite_gateway.url)
    limit = _create_limit(
        sqlite_gateway.url,
        scope="key",
        value=key["id"],
        requests_per_minute=5,
        output_tokens_per_minute=10_000,
    )
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"], max_retries=0)

    def fault(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("an injected fault")

    monkeypatch.setattr(forward, "upstream_headers", fault)  # before it is forwarded
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=MODEL, max_tokens=600, messages=HI)  # type: ignore[arg-type]
    monkeypatch.undo()
    usage = _bucket(sqlite_gateway, limit["id"])["usage"]
    assert (usage["requests"]["in_use"], usage["output_tokens"]["in_use"]) == (0, 0)
    monkeypatch.setattr(UpstreamClient, "handles", staticmethod(fault))  # once forwarded
    started = time.monotonic()
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=MODEL, max_tokens=600, messages=HI)  # type: ignore[arg-type]
    monkeypatch.undo()
    usage = _bucket(sqlite_gateway, limit["id"])["usage"]
    drained = (time.monotonic() - started) * 10_000 / 60 + 1  # the bucket drains meanwhile
    # Its usage is unknown: it keeps its estimate, as a budget charges its reservation.
    assert usage["requests"]["in_use"] == 1
    assert 600 - drained <= usage["output_tokens"]["in_use"] <= 600


# -- exact under concurrency ------------------------------------------------------------


async def _call_once(url: str, key: str) -> str:
    client = anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0, timeout=60)
    try:
        await client.messages.create(
            model=MODEL,
            max_tokens=16,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-fake-sleep": "0.2"},
        )
        return "ok"
    except anthropic.RateLimitError as exc:
        assert int(exc.response.headers["retry-after"]) >= 1
        return "limited"
    finally:
        await client.close()


async def _burst(urls: list[str], key: str, calls: int = 40) -> list[str]:
    return await asyncio.gather(*(_call_once(urls[i % len(urls)], key) for i in range(calls)))


async def test_40_concurrent_calls_against_10_rpm_sqlite(sqlite_gateway: GatewayServer) -> None:
    key = _create_key(sqlite_gateway.url)
    limit = _create_limit(sqlite_gateway.url, scope="key", value=key["id"], requests_per_minute=10)
    outcomes = await _burst([sqlite_gateway.url], key["key"])
    assert (outcomes.count("ok"), outcomes.count("limited")) == (10, 30)
    assert _bucket(sqlite_gateway, limit["id"])["refused"] == 30


@pytest.mark.postgres
async def test_40_concurrent_calls_two_gateways_one_postgres(
    tmp_path: Path, upstream: FakeUpstream, pg_url: str
) -> None:
    settings = [
        gateway_settings(tmp_path / name, upstream.url, pg_url, secret_key="shared-master-key")
        for name in ("a", "b")
    ]
    with GatewayServer(settings[0]) as first, GatewayServer(settings[1]) as second:
        key = _create_key(first.url)
        limit = _create_limit(first.url, scope="key", value=key["id"], requests_per_minute=10)
        outcomes = await _burst([first.url, second.url], key["key"])
        assert (outcomes.count("ok"), outcomes.count("limited")) == (10, 30)
        assert _bucket(second, limit["id"])["refused"] == 30
        assert len(upstream.served) == 10


# -- the API and the CLI ----------------------------------------------------------------


def test_api_validates_lists_and_deletes(sqlite_gateway: GatewayServer) -> None:
    url = sqlite_gateway.url
    none = httpx.post(f"{url}/api/limits", json={"scope": "global"})
    assert none.status_code == 400 and "--rpm" in none.json()["error"]["message"]
    no_team = httpx.post(
        f"{url}/api/limits", json={"scope": "team", "value": "Nope", "requests_per_minute": 1}
    )
    assert no_team.status_code == 404
    made = _create_limit(url, scope="project", value="*", requests_per_minute=60)
    assert made["description"] == "each project: 60 requests/min"
    assert [limit["id"] for limit in httpx.get(f"{url}/api/limits").json()] == [made["id"]]
    assert httpx.delete(f"{url}/api/limits/{made['id']}").json() == {"deleted": made["id"]}
    assert httpx.get(f"{url}/api/limits/{made['id']}").status_code == 404
    spec = httpx.get(f"{url}/api/openapi.json").json()
    assert {"/api/limits", "/api/limits/{limit_id}"} <= set(spec["paths"])
    assert spec["paths"]["/api/limits"]["post"]["description"]


def _cli(db: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--database-url", db])
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if "--json" in args or args[1] == "list" else result.output


def test_cli_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPENDGATE_HOME", str(tmp_path / "home"))
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    _cli(db, "teams", "create", "Research")
    made = _cli(db, "limits", "create", "--team", "Research", "--rpm", "50", "--output-tpm",
                "8000", "--json")  # fmt: skip
    assert (made["scope"], made["scope_value"], made["requests_per_minute"]) == (
        "team",
        "Research",
        50,
    )
    each = _cli(db, "limits", "create", "--key", "*", "--input-tpm", "40000", "--json")
    assert each["description"] == "each key: 40000 input tokens/min"
    assert len(_cli(db, "limits", "list")) == 2
    assert "deleted" in _cli(db, "limits", "delete", each["id"])
    bad = CliRunner().invoke(cli, ["limits", "create", "--global", "--database-url", db])
    assert bad.exit_code == 1 and "at least one of requests" in bad.output
    both = CliRunner().invoke(
        cli, ["limits", "create", "--global", "--user", "x", "--rpm", "1", "--database-url", db]
    )
    assert both.exit_code == 2 and "exactly one of" in both.output

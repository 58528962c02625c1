"""Rate limits on the proxy's hot path: take before forwarding, settle after.

:meth:`LimitGuard.reserve` finds the limits that apply to a call from an
in-memory copy of the definitions (refreshed every ``ttl`` seconds, like the
budget guard), so a call no limit applies to costs no database round trip.
Otherwise one transaction takes one request, the input-token estimate and
``max_tokens`` output tokens from every applicable bucket (Anthropic counts its
own output-token limits the same way). After the call, :meth:`LimitGuard.settle`
replaces the token estimates with the real counts; a limit on requests only
needs no settlement at all.

**Leases.** A process that takes calls from one bucket quickly (at least
``LEASE_MIN_CALLS`` a second) takes a lease with the next call: room for as many
calls as it took in the last second, at most ``LEASE_MAX_CALLS`` and at most
1/``LEASE_SHARE`` of the limit's minute, and only while the bucket keeps
``LEASE_HEADROOM`` leases free behind it (so close to the limit every call is
checked in the database, exactly). The calls after it are taken from memory and
settled there; the guard's task tops the lease up in the background once less than
1/``LEASE_REFILL`` of it is left, and gives back what is unused after
``LEASE_IDLE`` seconds, when a limit is deleted and at shutdown. What a process
holds is counted in the bucket like calls, so leases never let more through than
the limit; they only date a call at its lease rather than its start, which can let
through at most what the process held more, once, after a bucket drained while that
room sat unused (a process holds up to about two leases: 2 % of the limit's minute).
Near the limit, room another process holds and does not use gets calls a 429 until
it is used or goes back (``LEASE_IDLE``).

A call over a limit is refused with HTTP 429 ``rate_limit_error`` and a
``retry-after`` header: unlike an exhausted budget, the SDKs should retry.
A single call larger than a whole minute's worth of a token limit is let
through when the bucket is empty (it could never fit otherwise) and then
counted in full, so the calls after it wait longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from spendgate.budgets.estimate import BYTES_PER_TOKEN, MISSING_MAX_TOKENS
from spendgate.fresh import Fresh
from spendgate.limits.model import METRICS, RateLimit, unit_name
from spendgate.logs import Every, describe
from spendgate.proxy.auth import Resolved
from spendgate.proxy.errors import Refused, database_unavailable
from spendgate.proxy.forward import RequestInfo
from spendgate.records import CallRecord
from spendgate.storage.limits import Charge, LimitStore, RateLimited

log = logging.getLogger("spendgate.limits")

# A lease holds at most this share of the limit's minute (1/100: 1 %) ...
LEASE_SHARE = 100
# ... and room for at most this many calls.
LEASE_MAX_CALLS = 2048
# A process leases from a bucket once it takes at least this many calls a second from it.
LEASE_MIN_CALLS = 4
# A lease is topped up once less than 1/LEASE_REFILL of it is left.
LEASE_REFILL = 2
# Seconds a lease may sit unused before it goes back to its bucket.
LEASE_IDLE = 1.0
# Calls are counted per bucket over windows of this many seconds to size leases.
RATE_WINDOW = 1.0
_RETRY_SECONDS = 1.0
# How long shutdown waits for calls' database takes still in flight.
_CLOSE_WAIT = 5.0

_Key = tuple[str, str]  # (limit id, subject)


def wall_us() -> int:
    """The wall clock in microseconds since the epoch."""
    return time.time_ns() // 1000


@dataclass
class LimitStats:
    """What the rate-limit guard did since the process started (metrics, tests)."""

    # Database transactions: calls' takes and settlements, the lease task's rounds.
    transactions: int = 0
    # Calls counted from this process's leases, and calls checked in the database.
    from_leases: int = 0
    in_database: int = 0


@dataclass
class LimitHold:
    """What one in-flight call took from its rate-limit buckets, and per bucket whether
    from this process's lease (settled in memory) or from the database alone."""

    charges: list[Charge]
    leased: tuple[bool, ...] = ()
    settled: bool = field(default=False)

    @property
    def counts_tokens(self) -> bool:
        """Whether settling changes anything (a token limit applies)."""
        for charge in self.charges:  # noqa: SIM110 - no generator per call
            if charge.limit.counts_tokens:
                return True
        return False


def estimate_tokens(info: RequestInfo) -> tuple[int, int]:
    """Input tokens (body bytes / 3, rounded up) and output tokens (``max_tokens``)."""
    size = len(info.body or b"")
    output = info.max_tokens if info.max_tokens is not None and info.max_tokens >= 0 else None
    return -(-size // BYTES_PER_TOKEN), MISSING_MAX_TOKENS if output is None else output


def counted_tokens(record: CallRecord) -> tuple[int, int]:
    """The input and output tokens a finished call counts against token limits.

    Input is uncached input plus cache writes; cache reads do not count, as in
    Anthropic's own input-token limits for current models.
    """
    usage = record.usage
    return usage.input_tokens + usage.cache_creation_input_tokens, usage.output_tokens


def _key(charge: Charge) -> _Key:
    return (charge.limit.id, charge.subject)


@dataclass(eq=False)
class _Slot:
    """This process's lease on one bucket: what it holds per metric (units, in
    ``METRICS`` order; negative: taken beyond the lease, owed to the bucket)."""

    limit: RateLimit
    subject: str
    used_at: float
    window_at: float
    held: list[int] = field(default_factory=lambda: [0, 0, 0])
    lease: Charge | None = None  # the last lease's size; None: this bucket is not leased
    unit: Charge | None = None  # what the call that took it cost (leases are sized in calls)
    topping: bool = False
    fetching: asyncio.Future[None] | None = None  # a call's take with a lease, in flight
    window_calls: int = 0
    last_window: int = 0

    def __post_init__(self) -> None:
        # 1 for the metrics the limit covers: the others are neither held nor owed.
        self.mask = tuple(int(self.limit.per_minute(m) is not None) for m in METRICS)
        self.covered = tuple(i for i, covered in enumerate(self.mask) if covered)

    def covers(self, charge: Charge) -> bool:
        """Whether the lease has room for ``charge`` on every rate of the limit."""
        held, amounts = self.held, charge.amounts
        # ``or 1``: a charge of nothing on these rates is not waved through by an empty
        # lease (the database checks it, as it would without leases).
        for i in self.covered:  # noqa: SIM110 - no generator per call
            if held[i] < (amounts[i] or 1):
                return False
        return True

    def add(self, charge: Charge, sign: int = 1) -> None:
        """Hold ``charge`` more (``sign`` -1: less), on the metrics the limit covers."""
        held, mask = self.held, self.mask
        held[0] += sign * charge.requests * mask[0]
        held[1] += sign * charge.input_tokens * mask[1]
        held[2] += sign * charge.output_tokens * mask[2]

    def as_charge(self, amounts: Sequence[int] | None = None) -> Charge:
        """``amounts`` (default: what is held) on this bucket, as a charge."""
        r, i, o = self.held if amounts is None else amounts
        return Charge(self.limit, self.subject, r, i, o)

    def low(self) -> bool:
        """Whether less than 1/LEASE_REFILL of the lease is left on some rate."""
        lease = self.lease
        if lease is None:
            return False
        held, amounts = self.held, lease.amounts
        for i in self.covered:  # noqa: SIM110 - no generator per call
            if held[i] * LEASE_REFILL < amounts[i]:
                return True
        return False

    def count_call(self, now: float) -> int:
        """Count one call; the calls taken in about the last ``RATE_WINDOW`` seconds."""
        elapsed = now - self.window_at
        if elapsed >= RATE_WINDOW:
            self.last_window = self.window_calls if elapsed < 2 * RATE_WINDOW else 0
            self.window_at, self.window_calls = now, 0
        self.window_calls += 1
        return self.recent()

    def recent(self) -> int:
        """The calls taken in about the last ``RATE_WINDOW`` seconds."""
        return max(self.last_window, self.window_calls)

    def has_surplus(self) -> bool:
        """Whether :meth:`surplus` (past three halves) would give anything back: checked
        after every settlement, so without building the list."""
        held, lease = self.held, self.lease
        one = lease.amounts if lease is not None else (0, 0, 0)
        for i in range(3):  # noqa: SIM110 - no generator per call
            if held[i] < 0 or 2 * held[i] > 3 * one[i]:
                return True
        return False

    def surplus(self, over: int = 3) -> list[int]:
        """What to give back now: a debt in full, and down to one lease what is held
        beyond ``over`` halves of one (settled calls' unused estimates come back to the
        lease). Settling asks past three halves, the task gives back past two, so a
        lease that hovers at the mark does not wake the task on every call."""
        lease = self.lease
        out = [0, 0, 0]
        for i, metric in enumerate(METRICS):
            held = self.held[i]
            one = lease.cost(metric) if lease is not None else 0
            if held < 0 or 2 * held > over * one:
                out[i] = held - one if held > 0 else held
        return out

    def top_up(self, lease: Charge) -> Charge:
        """What brings the rates that run low back to ``lease`` (the others are not
        taken again): a full lease after a top-up, not one and a half, so the round
        after it has no surplus to give back."""
        held, wanted = self.held, lease.amounts
        amounts = [
            wanted[i] - held[i] if held[i] * LEASE_REFILL < wanted[i] else 0
            for i in range(len(METRICS))
        ]
        return self.as_charge(amounts)


class LimitGuard:
    """The proxy's rate-limit hooks."""

    def __init__(
        self,
        store: LimitStore,
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        now_us: Callable[[], int] = wall_us,
    ) -> None:
        self.store = store
        self._clock = clock
        self._now_us = now_us
        self._limits: list[RateLimit] = []
        self._definitions = Fresh(
            store.list_limits, ttl=ttl, what="rate limits", clock=clock, on_load=self._loaded
        )
        self._slots: dict[_Key, _Slot] = {}
        # Leases on limits deleted since they were taken, to give back (calls under
        # them settle in the database: they are no longer in ``_slots``).
        self._retired: list[_Slot] = []
        self._topups: list[_Slot] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._taking = 0  # calls' database takes in flight (shutdown waits for them)
        self._closing = False
        self.stats = LimitStats()
        self._unavailable = Every(clock=clock)

    def invalidate(self) -> None:
        """Forget the cached definitions (after a change made in this process)."""
        self._definitions.invalidate()

    async def limits(self) -> list[RateLimit]:
        """The rate limit definitions, at most ``ttl`` seconds old (reloaded in the
        background before they are: see :mod:`spendgate.fresh`)."""
        return await self._definitions.get()

    def _loaded(self, limits: list[RateLimit]) -> None:
        self._limits = limits
        self._retire_deleted()

    def _retire_deleted(self) -> None:
        """A lease on a limit that is gone (or changed) goes back at once."""
        current = {limit.id: limit for limit in self._limits}
        for key, slot in list(self._slots.items()):
            if current.get(slot.limit.id) != slot.limit:
                del self._slots[key]
                self._retired.append(slot)
        if self._retired:
            self._kick()

    @staticmethod
    def charges_for(limits: list[RateLimit], resolved: Resolved, info: RequestInfo) -> list[Charge]:
        """What a call takes from each bucket it counts in."""
        charges = []
        estimate: tuple[int, int] | None = None
        for limit in limits:
            subject = limit.subject(resolved.attribution)
            if subject is None:
                continue
            if estimate is None:
                estimate = estimate_tokens(info)
            charges.append(Charge(limit, subject, 1, *estimate))
        return charges

    async def reserve(self, resolved: Resolved, info: RequestInfo, path: str) -> LimitHold | None:
        """Take the call from every applicable bucket; :class:`Refused` (429) if one is full."""
        try:
            limits = await self.limits()
        except SQLAlchemyError as exc:
            raise self.unavailable(exc) from exc
        charges = self.charges_for(limits, resolved, info)
        if not charges:
            return None
        if self._take_from_leases(charges):
            self.stats.from_leases += 1
            return LimitHold(charges, (True,) * len(charges))
        return await self._take_in_database(charges)

    def unavailable(self, exc: SQLAlchemyError) -> Refused:
        """The 503 for a call refused because rate limits cannot be checked: fail
        closed. Logged at most every :data:`~spendgate.logs.EVERY_SECONDS`: in an outage
        every call comes here."""
        self._unavailable.log(
            log, logging.ERROR, "rate limit check failed, refusing the call: %s", describe(exc)
        )
        return database_unavailable("rate limits", "rate_limit_unavailable")

    def _take_from_leases(self, charges: list[Charge]) -> bool:
        """Take every charge from this process's leases, or none of them."""
        slots = []
        for charge in charges:
            slot = self._slots.get(_key(charge))
            if slot is None or not slot.covers(charge):
                return False
            slots.append(slot)
        now = self._clock()
        for slot, charge in zip(slots, charges, strict=True):
            self._use(slot, charge, now)
        return True

    def _use(self, slot: _Slot, charge: Charge, now: float) -> None:
        slot.add(charge, -1)
        slot.used_at = now
        slot.count_call(now)
        if not slot.topping and slot.low():
            slot.topping = True
            self._topups.append(slot)
            self._kick()

    def _lease_for(self, slot: _Slot, unit: Charge) -> Charge | None:
        """A lease of calls costing ``unit``: as many as were taken from this bucket in
        the last second, within the limit's share; None below ``LEASE_MIN_CALLS``."""
        if self._closing:
            return None
        limit = unit.limit
        fits = min((limit.per_minute(m) or 0) // max(unit.cost(m), 1) for m in limit.metrics)
        calls = min(slot.recent(), LEASE_MAX_CALLS, fits // LEASE_SHARE)
        return unit.times(calls) if calls >= LEASE_MIN_CALLS else None

    def _slot(self, charge: Charge, now: float) -> _Slot:
        slot = self._slots.get(_key(charge))
        if slot is None:
            slot = self._slots[_key(charge)] = _Slot(
                charge.limit, charge.subject, used_at=now, window_at=now
            )
            if self._task is None or self._task.done():
                self._kick()  # the task forgets buckets idle for LEASE_IDLE
        return slot

    async def _take_in_database(self, charges: list[Charge]) -> LimitHold:
        """Take what the leases do not cover in one transaction, with a lease where the
        bucket has room for one, and the rest from the leases."""
        while True:  # one lease taken at a time per bucket: the others wait for it
            waiting = {
                slot.fetching
                for charge in charges
                if (slot := self._slots.get(_key(charge))) is not None and slot.fetching is not None
            }
            if not waiting:
                break
            await asyncio.wait(waiting)
            if self._take_from_leases(charges):
                self.stats.from_leases += 1
                return LimitHold(charges, (True,) * len(charges))
        self.stats.in_database += 1
        now = self._clock()
        local: list[tuple[_Slot, Charge]] = []
        short: list[tuple[_Slot, Charge]] = []
        for charge in charges:
            slot = self._slot(charge, now)
            (local if slot.covers(charge) else short).append((slot, charge))
        for slot, charge in local:
            self._use(slot, charge, now)
        for slot, _ in short:
            slot.count_call(now)
            slot.used_at = now
        leases = [self._lease_for(slot, charge) for slot, charge in short]
        returns: list[tuple[_Slot, Charge]] = []
        for slot, _ in short:  # a leftover too small for this call goes back first
            if any(slot.held):
                returns.append((slot, slot.as_charge()))
                slot.held = [0, 0, 0]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for (slot, _), lease in zip(short, leases, strict=True):
            if lease is not None:
                slot.fetching = done
        now_us = self._now_us()
        self.stats.transactions += 1
        self._taking += 1
        work = asyncio.get_running_loop().run_in_executor(
            None,
            functools.partial(
                self.store.take,
                [charge for _, charge in short],
                now_us,
                leases=leases,
                returns=[back for _, back in returns],
            ),
        )
        handed_over = False
        try:
            granted = await asyncio.shield(work)
        except asyncio.CancelledError:
            # The call will not be forwarded, but the transaction runs on: when it
            # ends, what it took (or, refused, what this call took from the leases and
            # gave back) stays this process's, to give back with its leases.
            def settled(work: asyncio.Future[tuple[bool, ...]]) -> None:
                self._taking -= 1
                if work.cancelled() or work.exception() is not None:
                    for slot, charge in local + returns:
                        self._hold(slot, charge)
                    return
                for (slot, charge), lease, got in zip(short, leases, work.result(), strict=True):
                    self._hold(slot, charge.plus(lease) if got and lease is not None else charge)
                for slot, charge in local:
                    self._hold(slot, charge)

            handed_over = True
            work.add_done_callback(settled)
            raise
        except (RateLimited, SQLAlchemyError) as exc:  # nothing was written
            for slot, charge in local + returns:
                self._hold(slot, charge)
            if isinstance(exc, RateLimited):
                raise refusal(exc, now_us) from None
            raise self.unavailable(exc) from exc
        finally:
            if not handed_over:
                self._taking -= 1
            done.set_result(None)
            for slot, _ in short:
                if slot.fetching is done:
                    slot.fetching = None
        leased = {id(charge): True for _, charge in local}
        for (slot, charge), lease, got in zip(short, leases, granted, strict=True):
            leased[id(charge)] = got
            if got and lease is not None:
                self._hold(slot, lease)
                slot.lease, slot.unit = lease, charge
        return LimitHold(charges, tuple(leased[id(charge)] for charge in charges))

    def _hold(self, slot: _Slot, charge: Charge) -> None:
        """Hold ``charge`` more on ``slot``; a slot no longer current (its limit deleted,
        or forgotten as idle meanwhile) is given back by the task's next round."""
        slot.add(charge)
        if self._slots.get((slot.limit.id, slot.subject)) is not slot:
            if slot not in self._retired:
                self._retired.append(slot)
            self._kick()

    async def settle(self, hold: LimitHold | None, record: CallRecord) -> None:
        """Count the call's real tokens instead of the estimates (never raises)."""
        if hold is None or hold.settled:
            return
        hold.settled = True
        if not hold.counts_tokens or record.usage_unknown is not None:
            return  # a call whose usage is unknown keeps what it took (its estimate)
        input_tokens, output_tokens = counted_tokens(record)
        settling = [
            (charge, Charge(charge.limit, charge.subject, 1, input_tokens, output_tokens), leased)
            for charge, leased in zip(hold.charges, hold.leased, strict=True)
            if charge.limit.counts_tokens  # a limit on requests alone has nothing to settle
        ]
        await self._settle(settling, record.id)

    async def release(self, hold: LimitHold | None) -> None:
        """Give everything back: the call was never forwarded (never raises)."""
        if hold is None or hold.settled:
            return
        hold.settled = True
        settling = [
            (charge, Charge(charge.limit, charge.subject), leased)
            for charge, leased in zip(hold.charges, hold.leased, strict=True)
        ]
        await self._settle(settling, "(not forwarded)")

    async def _settle(self, settling: list[tuple[Charge, Charge, bool]], what: str) -> None:
        """Replace what each call took (``taken``) by what it used (``actual``): a charge
        taken under a lease still held settles into it (the difference is held, or
        owed), the others in the database."""
        taken, used = [], []
        for charge, actual, leased in settling:
            # After shutdown's last round nothing more is given back from memory.
            slot = self._slots.get(_key(charge)) if leased and not self._closing else None
            if slot is None:
                taken.append(charge)
                used.append(actual)
                continue
            slot.add(charge)
            slot.add(actual, -1)
            if slot.has_surplus():
                self._kick()
        if not taken:
            return
        try:
            self.stats.transactions += 1
            await asyncio.to_thread(self.store.settle, taken, used, self._now_us())
        except Exception:  # settlement must never break the proxied call
            log.exception("could not settle rate limits for call %s", what)

    # -- the lease task ------------------------------------------------------------

    def _kick(self) -> None:
        if self._closing:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="spendgate-rate-limit-leases"
            )
        self._wake.set()

    def _next_round_in(self) -> float | None:
        """Seconds until a bucket falls idle: its lease goes back, and it is forgotten
        (None: no bucket in use)."""
        if not self._slots:
            return None
        first = min(slot.used_at for slot in self._slots.values())
        # At least a millisecond: a clock that has not moved must not spin the task.
        return max(0.001, first + LEASE_IDLE - self._clock())

    def _due(self) -> bool:
        """Whether something is to be written now: a top-up, a lease no longer current
        (deleted limit, forgotten slot), a debt or a surplus."""
        return (
            bool(self._topups)
            or any(any(slot.held) for slot in self._retired)
            or any(any(slot.surplus(over=2)) for slot in self._slots.values())
        )

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            if not self._due():
                try:
                    # Not wait_for (see the budget guard): a cancellation must not be lost.
                    async with asyncio.timeout(self._next_round_in()):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                if self._closing:
                    return
            try:
                await self._round()
            except Exception:  # the task must survive anything
                log.exception("rate limit leases: could not write, retrying")
                await asyncio.sleep(_RETRY_SECONDS)

    async def _round(self, *, everything: bool = False) -> None:
        """One transaction: give back idle, surplus and deleted leases, top up low ones."""
        now = self._clock()
        returns: list[tuple[_Slot, Charge]] = []
        idle: list[tuple[_Key, _Slot]] = []
        for slot in self._retired:
            if any(slot.held):
                returns.append((slot, slot.as_charge()))
        for key, slot in self._slots.items():
            if everything or now - slot.used_at >= LEASE_IDLE:
                back = slot.as_charge()
                idle.append((key, slot))
            else:
                back = slot.as_charge(slot.surplus(over=2))
            if back.requests or back.input_tokens or back.output_tokens:
                returns.append((slot, back))
        for slot, back in returns:  # taken out now: calls meanwhile use what is left
            slot.add(back, -1)
        topups, self._topups = self._topups, []
        wanted: list[tuple[_Slot, Charge]] = []
        for slot in topups:
            slot.topping = False
            current = self._slots.get((slot.limit.id, slot.subject)) is slot
            if everything or not current or slot.unit is None or not slot.low():
                continue
            lease = self._lease_for(slot, slot.unit)  # sized to the rate now
            if lease is None:  # the calls slowed down: no more leases
                slot.lease = None
                continue
            slot.lease = lease
            wanted.append((slot, slot.top_up(lease)))
        if returns or wanted:
            try:
                self.stats.transactions += 1
                granted = await asyncio.to_thread(
                    self.store.rebalance,
                    [back for _, back in returns],
                    [lease for _, lease in wanted],
                    self._now_us(),
                )
            except Exception:
                for slot, back in returns:  # nothing was written: still held
                    slot.add(back)
                raise
            for (slot, lease), got in zip(wanted, granted, strict=True):
                if got:  # not a use: room nobody takes goes back LEASE_IDLE after the last call
                    slot.add(lease)
                else:  # near the limit: its calls are checked in the database again
                    slot.lease = None
        self._retired = [s for s in self._retired if any(s.held) or s.fetching is not None]
        for key, slot in idle:  # forgotten once idle with nothing held
            still = everything or self._clock() - slot.used_at >= LEASE_IDLE
            if still and self._slots.get(key) is slot and not any(slot.held) and not slot.fetching:
                del self._slots[key]

    async def close(self) -> None:
        """Give every lease back (gateway shutdown): after the task's round in progress
        and the calls' takes in flight (a few seconds at most), in one last round."""
        self._closing = True
        await self._definitions.close()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task  # it ends after its round (or its retry's pause)
            self._task = None
        deadline = time.monotonic() + _CLOSE_WAIT
        while self._taking and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        try:
            await self._round(everything=True)
        except Exception:  # shutdown goes on; what was held drains within a minute
            log.exception("could not give rate limit leases back at shutdown")


def refusal(limited: RateLimited, now_us: int) -> Refused:
    """The 429 for a full bucket: which limit, how full, when there is room again."""
    limit = limited.charge.limit
    metric = limited.metric
    rate = limit.per_minute(metric)
    used = limited.level.used(metric)
    seconds = max(1, -(-limited.wait_us // 1_000_000))
    at = datetime.fromtimestamp((now_us + limited.wait_us) / 1_000_000, UTC)
    whose = (
        f" for {limit.scope} {limited.charge.subject}"
        if limit.scope != "global" and limit.scope_value != limited.charge.subject
        else ""
    )
    message = (
        f"spendgate: rate limit {limit.name!r} ({limit.describe()}) reached{whose}: "
        f"{used} of {rate} {unit_name(metric)} per minute in use; room again in {seconds} s "
        f"(at {at.isoformat(timespec='seconds').replace('+00:00', 'Z')}). Retry after "
        "`retry-after` seconds, or see `spendgate limits list`"
    )
    return Refused(
        429,
        "rate_limit_error",
        message,
        reason="rate_limited",
        headers=[(b"retry-after", str(seconds).encode())],
    )

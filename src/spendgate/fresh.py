"""Definitions the hot path reads from memory, refreshed before they go stale.

Keys, budgets and rate limits are read from the database at most ``ttl`` seconds
apart (``SPENDGATE_KEY_CACHE_TTL``), so a change made in another process takes
effect within ``ttl``. Reloading only once a copy has expired made the calls that
came next wait for the database: at concurrency 32, every call in flight queued
behind the reload (and the key resolver sent one query per waiting call), every
``ttl`` seconds. :class:`Fresh` reloads a copy in the background once it is
:data:`REFRESH_AHEAD` of ``ttl`` old, while calls go on using it; a call waits only
when no copy is current (the first call, a copy that could not be reloaded in time,
or one forgotten by :meth:`Fresh.invalidate` after a change made in this process),
and calls that wait together share one load.

While the database is down every load fails; that is logged at most once per
:data:`~spendgate.logs.EVERY_SECONDS` for a set of values (:class:`Notices`), and
the first load that works after such a line says so.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from spendgate.logs import EVERY_SECONDS, Every, describe

log = logging.getLogger("spendgate.fresh")

T = TypeVar("T")

# A copy is reloaded in the background once it is this share of ``ttl`` old.
REFRESH_AHEAD = 0.75
# After a background load failed, the next is not tried for this share of ``ttl``
# (at most a second): a database that is down is not asked once per call.
_RETRY_SHARE = 0.1
_RETRY_MAX = 1.0


class Notices:
    """What a set of :class:`Fresh` values logs (the key resolver's, one per key, share
    one): a failed load at most once per ``seconds``, and the first load that works
    after such a line was written (so the log never ends on a failure that is over)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, seconds: float = EVERY_SECONDS
    ) -> None:
        self.failed = Every(seconds, clock)
        self.reported = False  # a failure line was written since the last "again" line


class Fresh(Generic[T]):
    """A value loaded in a worker thread by ``load``. A copy's age counts from the start
    of its load: a call answered from memory gets a copy younger than ``ttl``, and a
    call that waits gets what a load started less than ``ttl`` before it read.

    ``on_load`` sees every value loaded for the current generation, on the event loop.
    """

    def __init__(
        self,
        load: Callable[[], T],
        *,
        ttl: float,
        what: str,
        clock: Callable[[], float] = time.monotonic,
        on_load: Callable[[T], None] | None = None,
        notices: Notices | None = None,
    ) -> None:
        self._load = load
        self.ttl = ttl
        self.what = what
        self._clock = clock
        self._on_load = on_load
        self._value: T | None = None
        self._loaded_at: float | None = None  # when the load of _value started
        # Bumped by invalidate(): a load started before it cannot answer a call after it.
        self._generation = 0
        self._task: asyncio.Task[T] | None = None  # the latest load in flight
        self._loading: set[asyncio.Task[T]] = set()  # every load in flight (close)
        self._task_started = 0.0
        self._task_generation = 0
        self._retry_at = float("-inf")
        self._notices = notices if notices is not None else Notices(clock)
        self._failures = 0  # loads failed since the last that worked

    def invalidate(self) -> None:
        """Forget the copy: the next call waits for a load started after this."""
        self._generation += 1
        self._loaded_at = None
        self._value = None

    async def get(self) -> T:
        """The value, at most ``ttl`` seconds old; waits for the database only when no
        current copy is held. Raises what the load raised if it had to wait for one."""
        now = self._clock()
        loaded_at = self._loaded_at
        if loaded_at is not None:
            age = now - loaded_at
            if age < self.ttl:
                if age >= self.ttl * REFRESH_AHEAD and self._task is None and now >= self._retry_at:
                    self._start(now, background=True)
                return self._value  # type: ignore[return-value]
        task = self._task
        # A load in flight answers this call if it is of this generation and started
        # recently enough that what it returns is not already too old.
        if (
            task is None
            or self._task_generation != self._generation
            or now - self._task_started >= self.ttl
        ):
            task = self._start(now, background=False)
        # Shielded: a call that is cancelled (its client went away) leaves the load to
        # the calls that share it.
        return await asyncio.shield(task)

    def _start(self, now: float, *, background: bool) -> asyncio.Task[T]:
        generation = self._generation
        task = asyncio.get_running_loop().create_task(
            self._run(now, generation), name=f"spendgate-load-{self.what}"
        )
        self._task, self._task_started, self._task_generation = task, now, generation
        self._loading.add(task)
        task.add_done_callback(functools.partial(self._done, background=background))
        return task

    @property
    def busy(self) -> bool:
        """Whether a load is in flight."""
        return bool(self._loading)

    def _done(self, task: asyncio.Task[T], *, background: bool) -> None:
        self._loading.discard(task)
        if task.cancelled():
            return
        # Retrieved here: a background load has no caller, and if every call that waited
        # for a load was cancelled nobody else would; asyncio would log it as never
        # retrieved. The calls that still wait get it raised.
        exc = task.exception()
        notices = self._notices
        if exc is None:
            failures, self._failures = self._failures, 0
            if failures and notices.reported:
                notices.reported = False
                log.info(
                    "loaded the %s again after %d failed load%s",
                    self.what,
                    failures,
                    "" if failures == 1 else "s",
                )
            return
        self._failures += 1
        if background:
            self._retry_at = self._clock() + min(_RETRY_MAX, self.ttl * _RETRY_SHARE)
            written = notices.failed.log(
                log,
                logging.WARNING,
                "could not reload the %s in the background (%s); the copy held is used "
                "until it is %.0fs old, then calls wait for the database",
                self.what,
                describe(exc),
                self.ttl,
            )
        else:
            written = notices.failed.log(
                log,
                logging.WARNING,
                "could not load the %s (%s); the calls waiting for it failed, and the "
                "next call tries again",
                self.what,
                describe(exc),
            )
        notices.reported = notices.reported or written

    async def _run(self, started: float, generation: int) -> T:
        try:
            value = await asyncio.to_thread(self._load)
        finally:
            if self._task is asyncio.current_task():
                self._task = None
        if generation == self._generation and (
            self._loaded_at is None or started >= self._loaded_at
        ):
            self._value, self._loaded_at = value, started
            if self._on_load is not None:
                self._on_load(value)
        return value

    async def close(self) -> None:
        """Wait for the loads in flight (gateway shutdown: no task is left pending)."""
        while self._loading:
            await asyncio.gather(*self._loading, return_exceptions=True)

"""Rate limits on the proxy's hot path: take before forwarding, settle after.

:meth:`LimitGuard.reserve` finds the limits that apply to a call from an
in-memory copy of the definitions (refreshed every ``ttl`` seconds, like the
budget guard), so a call no limit applies to costs no database round trip.
Otherwise one transaction takes one request, the input-token estimate and
``max_tokens`` output tokens from every applicable bucket (Anthropic counts its
own output-token limits the same way). After the call, :meth:`LimitGuard.settle`
replaces the token estimates with the real counts; a limit on requests only
needs no settlement at all.

A call over a limit is refused with HTTP 429 ``rate_limit_error`` and a
``retry-after`` header: unlike an exhausted budget, the SDKs should retry.
A single call larger than a whole minute's worth of a token limit is let
through when the bucket is empty (it could never fit otherwise) and then
counted in full, so the calls after it wait longer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from spendgate.budgets.estimate import BYTES_PER_TOKEN, MISSING_MAX_TOKENS
from spendgate.limits.model import RateLimit, unit_name
from spendgate.proxy.auth import Resolved
from spendgate.proxy.errors import Refused
from spendgate.proxy.forward import RequestInfo
from spendgate.records import CallRecord
from spendgate.storage.limits import Charge, LimitStore, RateLimited

log = logging.getLogger("spendgate.limits")


def wall_us() -> int:
    """The wall clock in microseconds since the epoch."""
    return time.time_ns() // 1000


@dataclass
class LimitHold:
    """What one in-flight call took from its rate-limit buckets."""

    charges: list[Charge]
    settled: bool = field(default=False)

    @property
    def counts_tokens(self) -> bool:
        """Whether settling changes anything (a token limit applies)."""
        return any(c.limit.counts_tokens for c in self.charges)


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
        self.ttl = ttl
        self._clock = clock
        self._now_us = now_us
        self._limits: list[RateLimit] = []
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the cached definitions (after a change made in this process)."""
        self._loaded_at = None

    async def limits(self) -> list[RateLimit]:
        """The rate limit definitions, at most ``ttl`` seconds old."""
        now = self._clock()
        if self._loaded_at is not None and now - self._loaded_at < self.ttl:
            return self._limits
        async with self._lock:
            if self._loaded_at is None or self._clock() - self._loaded_at >= self.ttl:
                self._limits = await asyncio.to_thread(self.store.list_limits)
                self._loaded_at = self._clock()
        return self._limits

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
        charges = self.charges_for(await self.limits(), resolved, info)
        if not charges:
            return None
        now = self._now_us()
        try:
            await asyncio.to_thread(self.store.take, charges, now)
        except RateLimited as limited:
            raise refusal(limited, now) from None
        except SQLAlchemyError as exc:
            log.error("rate limit check failed, refusing the call: %s", type(exc).__name__)
            raise Refused(
                503,
                "api_error",
                "spendgate: cannot check rate limits because the database is unavailable; "
                "retry shortly, or check SPENDGATE_DATABASE_URL and GET /health",
                reason="rate_limit_unavailable",
            ) from exc
        return LimitHold(charges)

    async def settle(self, hold: LimitHold | None, record: CallRecord) -> None:
        """Count the call's real tokens instead of the estimates (never raises)."""
        if hold is None or hold.settled:
            return
        hold.settled = True
        if not hold.counts_tokens:
            return
        input_tokens, output_tokens = counted_tokens(record)
        actual = [Charge(c.limit, c.subject, 1, input_tokens, output_tokens) for c in hold.charges]
        await self._settle(hold, actual, record.id)

    async def release(self, hold: LimitHold | None) -> None:
        """Give everything back: the call was never forwarded (never raises)."""
        if hold is None or hold.settled:
            return
        hold.settled = True
        actual = [Charge(c.limit, c.subject) for c in hold.charges]
        await self._settle(hold, actual, "(not forwarded)")

    async def _settle(self, hold: LimitHold, actual: list[Charge], what: str) -> None:
        try:
            await asyncio.to_thread(self.store.settle, hold.charges, actual, self._now_us())
        except Exception:  # settlement must never break the proxied call
            log.exception("could not settle rate limits for call %s", what)


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

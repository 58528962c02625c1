"""Keys and budgets wired into a gateway: the resolver and the reserve/settle hooks.

Built by ``create_app`` (no I/O), opened by the gateway's start-up once the
store exists. Holds no module state; everything hangs off the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from spendgate.batches import BatchCall, BatchLedger, Submit
from spendgate.budgets.guard import BudgetGuard, Reservation
from spendgate.keys import KeyResolver
from spendgate.limits.guard import LimitGuard, LimitHold
from spendgate.pricing import PriceBook
from spendgate.proxy.auth import AuthError, ProxyKeyGrant, Resolved
from spendgate.proxy.forward import Receive, RequestInfo, Scope
from spendgate.records import CallRecord
from spendgate.settings import Settings
from spendgate.storage import Store
from spendgate.storage.batches import BatchStore
from spendgate.storage.budgets import BudgetStore
from spendgate.storage.keys import KeyStore
from spendgate.storage.limits import LimitStore
from spendgate.vault import SecretBox


@dataclass
class Holds:
    """What one in-flight call holds: rate-limit buckets and a budget reservation."""

    limits: LimitHold | None
    budget: Reservation | None


@dataclass
class Governance:
    """Key store, budget store, the key resolver and the budget guard of one gateway."""

    settings: Settings
    book: PriceBook
    keys: KeyStore | None = None
    budgets: BudgetStore | None = None
    resolver: KeyResolver | None = None
    guard: BudgetGuard | None = None
    limits: LimitStore | None = None
    limiter: LimitGuard | None = None
    ledger: BatchLedger | None = None  # Message Batches (budgets and recording)
    _box: SecretBox | None = field(default=None, repr=False)

    def box(self) -> SecretBox:
        """The master-key box (the key file is created on first use)."""
        if self._box is None:
            self._box = SecretBox.from_settings(self.settings)
        return self._box

    def open(self, store: Store) -> None:
        """Attach to an opened store (called at gateway start-up)."""
        self.box()
        self.keys = KeyStore(store.engine)
        self.budgets = BudgetStore(store.engine)
        ttl = self.settings.key_cache_ttl
        self.resolver = KeyResolver(self.keys, self.box, ttl=ttl)
        self.guard = BudgetGuard(
            self.budgets, self.book, zone=ZoneInfo(self.settings.budget_timezone), ttl=ttl
        )
        self.limits = LimitStore(store.engine)
        self.limiter = LimitGuard(self.limits, ttl=ttl)
        self.ledger = BatchLedger(
            book=self.book,
            guard=self.guard,
            budgets=self.budgets,
            store=BatchStore(store.engine),
            upstream_url=self.settings.upstream_url,
        )
        self.ledger.start()  # start-up runs on the event loop: the sweep task joins it

    def changed(self) -> None:
        """Drop cached keys and budgets after a change made through this gateway."""
        if self.resolver is not None:
            self.resolver.invalidate()
        if self.guard is not None:
            self.guard.invalidate()
        if self.limiter is not None:
            self.limiter.invalidate()

    async def close(self) -> None:
        """Write pending budget settlements and give budget and rate-limit leases back
        (gateway shutdown)."""
        if self.ledger is not None:
            await self.ledger.stop()
        if self.guard is not None:
            await self.guard.close()
        if self.limiter is not None:
            await self.limiter.close()
        if self.resolver is not None:
            await self.resolver.close()

    async def resolve_key(self, secret: str) -> ProxyKeyGrant:
        """The proxy's key resolver."""
        if self.resolver is None:
            raise AuthError(
                "spendgate is still starting; retry", status=503, error_type="api_error"
            )
        return await self.resolver(secret)

    async def batch_call(
        self, scope: Scope, receive: Receive, resolved: Resolved, record: CallRecord, submit: Submit
    ) -> BatchCall | None:
        """The proxy's Message Batches hook (see :mod:`spendgate.batches`)."""
        if self.ledger is None:
            return None
        return await self.ledger(scope, receive, resolved, record, submit)

    async def reserve(self, resolved: Resolved, info: RequestInfo, path: str) -> Any:
        """The proxy's reserve hook: rate limits first (a 429 to retry), then budgets."""
        held = None
        if self.limiter is not None:
            held = await self.limiter.reserve(resolved, info, path)
        if self.guard is None:
            return None if held is None else Holds(held, None)
        try:
            reservation = await self.guard.reserve(resolved, info, path)
        except BaseException:  # refused, a fault, or the client gone: not forwarded
            if self.limiter is not None:
                await self.limiter.release(held)
            raise
        if held is None:
            return reservation
        return Holds(held, reservation)

    async def settle(self, reservation: Any, record: CallRecord) -> None:
        """The proxy's settle hook."""
        if isinstance(reservation, Holds):
            if self.limiter is not None:
                if record.forwarded_at is None:  # a fault before forwarding: not a call
                    await self.limiter.release(reservation.limits)
                else:
                    await self.limiter.settle(reservation.limits, record)
            reservation = reservation.budget
        if self.guard is not None and isinstance(reservation, Reservation):
            await self.guard.settle(reservation, record)

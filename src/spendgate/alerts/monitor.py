"""The gateway's alert loop: evaluate the rules every ``alert_interval`` seconds, fire
what is new, deliver what is due, retry with backoff.

Runs as one background task per gateway, never on the request path. Every
replica may run it: firing is deduplicated by the database and each delivery
attempt is claimed by one replica (see :mod:`spendgate.storage.alerts`).
A delivery that fails is retried after ``alert_retry_backoff`` seconds,
doubling each time up to an hour, until ``alert_max_attempts`` attempts; each
failure is recorded on the delivery (visible in ``GET /api/alerts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import aiohttp

from spendgate.alerts.channels import DeliveryError, deliver
from spendgate.alerts.model import Alert, Delivery
from spendgate.alerts.rules import Rules, evaluate
from spendgate.money import to_nanos
from spendgate.records import utcnow
from spendgate.settings import Settings
from spendgate.storage import Store
from spendgate.storage.alerts import AlertStore
from spendgate.storage.analytics import Analytics
from spendgate.storage.budgets import BudgetStore
from spendgate.storage.keys import NotFound
from spendgate.vault import SecretBox, SecretError

log = logging.getLogger("spendgate.alerts")

LEASE = timedelta(minutes=2)  # longer than any one attempt (15 s timeouts)
MAX_BACKOFF = 3600.0


@dataclass(frozen=True)
class AlertConfig:
    """How often to evaluate, the rules, and how to retry."""

    interval: float
    rules: Rules
    max_attempts: int = 8
    backoff: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertConfig:
        """The alert settings (``SPENDGATE_ALERT_*``)."""
        return cls(
            interval=settings.alert_interval,
            rules=Rules(
                zone=ZoneInfo(settings.budget_timezone),
                trailing_days=settings.alert_trailing_days,
                spike_factor=Decimal(str(settings.alert_spike_factor)),
                spike_min_nanousd=to_nanos(settings.alert_spike_min_usd),
            ),
            max_attempts=settings.alert_max_attempts,
            backoff=settings.alert_retry_backoff,
        )

    def retry_delay(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones."""
        delay: float = self.backoff * 2.0 ** max(attempts - 1, 0)
        return min(delay, MAX_BACKOFF)


class AlertMonitor:
    """Evaluates, fires and delivers alerts for one gateway (or one CLI run)."""

    def __init__(
        self,
        store: Store,
        alerts: AlertStore,
        config: AlertConfig,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.alerts = alerts
        self.budgets = BudgetStore(store.engine)
        self.analytics = Analytics(store)
        self.config = config
        self._now = now
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_gateway(cls, store: Store, settings: Settings, box: SecretBox) -> AlertMonitor:
        """The monitor of a gateway (or a CLI run) on ``store``, configured by ``settings``."""
        return cls(store, AlertStore(store.engine, box), AlertConfig.from_settings(settings))

    # -- one round -----------------------------------------------------------

    def fire_due(self) -> list[Alert]:
        """Evaluate the rules now and fire every alert not fired before (blocking)."""
        now = self._now()
        candidates = evaluate(self.analytics, self.budgets.list_budgets(), now, self.config.rules)
        known = self.alerts.fired([a.dedupe_key for a in candidates])
        candidates = [a for a in candidates if a.dedupe_key not in known]
        if not candidates:
            return []
        channels = self.alerts.list_channels()
        fired = [self.alerts.fire(alert, channels, now) for alert in candidates]
        for alert in fired:
            if alert is not None:
                log.info("alert fired: %s", alert.message)
        return [a for a in fired if a is not None]

    async def deliver_due(self) -> int:
        """Attempt every due delivery once; returns how many were attempted here."""
        due = await asyncio.to_thread(self.alerts.due, self._now())
        if not due:
            return 0
        async with self._client() as session:
            done = await asyncio.gather(*(self._attempt(d, session) for d in due))
        return sum(done)

    async def run_once(self) -> list[Alert]:
        """Evaluate, fire and deliver once (``POST /api/alerts/evaluate``, the CLI)."""
        fired = await asyncio.to_thread(self.fire_due)
        await self.deliver_due()
        return fired

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[aiohttp.ClientSession]:
        if self._session is not None:
            yield self._session
            return
        async with aiohttp.ClientSession(trust_env=True) as session:
            yield session

    async def _attempt(self, delivery: Delivery, session: aiohttp.ClientSession) -> bool:
        now = self._now()
        if not await asyncio.to_thread(self.alerts.claim, delivery, now + LEASE):
            return False  # another gateway has it
        attempts = delivery.attempts + 1
        try:
            channel = await asyncio.to_thread(self.alerts.get_channel, delivery.channel_id)
            alert = await asyncio.to_thread(self.alerts.get_alert, delivery.alert_id)
            secrets = await asyncio.to_thread(self.alerts.secrets, channel)
            await deliver(channel, secrets, alert, session)
        except NotFound:
            await self._finish(delivery, "failed", "the channel was deleted")
        except (DeliveryError, SecretError) as exc:
            if attempts >= self.config.max_attempts:
                log.error("alert delivery to %s failed for good: %s", delivery.channel_name, exc)
                await self._finish(delivery, "failed", f"attempt {attempts}: {exc}")
            else:
                delay = self.config.retry_delay(attempts)
                log.warning(
                    "alert delivery to %s failed (attempt %d, retry in %.0f s): %s",
                    delivery.channel_name,
                    attempts,
                    delay,
                    exc,
                )
                retry_at = self._now() + timedelta(seconds=delay)
                await self._finish(delivery, "pending", f"attempt {attempts}: {exc}", retry_at)
        else:
            await asyncio.to_thread(
                self.alerts.finish, delivery, status="sent", sent_at=self._now()
            )
        return True

    async def _finish(
        self, delivery: Delivery, status: str, error: str, retry_at: datetime | None = None
    ) -> None:
        await asyncio.to_thread(
            self.alerts.finish, delivery, status=status, error=error, next_attempt_at=retry_at
        )

    # -- the background loop ----------------------------------------------------

    def start(self) -> None:
        """Start the background loop on the running event loop."""
        self._session = aiohttp.ClientSession(trust_env=True)
        self._task = asyncio.create_task(self._loop(), name="spendgate-alerts")

    async def stop(self) -> None:
        """Stop the loop (an attempt in progress is abandoned; its lease expires)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _loop(self) -> None:
        interval = self.config.interval
        tick = max(min(interval, self.config.backoff, 5.0), 0.05)
        next_evaluation = 0.0
        while True:
            try:
                if time.monotonic() >= next_evaluation:
                    next_evaluation = time.monotonic() + interval
                    await asyncio.to_thread(self.fire_due)
                await self.deliver_due()
            except Exception:  # the loop must outlive a bad round (database outage, bug)
                log.exception("alert round failed; retrying in %.1f s", tick)
            await asyncio.sleep(tick)

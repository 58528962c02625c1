"""The operational side of a running gateway: telemetry, state sampling, retention.

Built by ``create_app`` (no I/O), started and stopped by the gateway's
lifespan, holds no module state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from spendgate.observability import Telemetry
from spendgate.retention import apply_retention
from spendgate.settings import Settings
from spendgate.storage.migrate import head_revisions

if TYPE_CHECKING:
    from spendgate.app import Gateway

log = logging.getLogger("spendgate.operations")

SAMPLE_SECONDS = 1.0


class Operations:
    """Telemetry plus the gateway's periodic housekeeping tasks."""

    def __init__(self, settings: Settings, telemetry: Telemetry) -> None:
        self.settings = settings
        self.telemetry = telemetry
        self.heads: tuple[str, ...] = ()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> Operations:
        """Operations as configured."""
        return cls(settings, Telemetry.from_settings(settings))

    async def start(self, gateway: Gateway) -> None:
        """Start span export, the metric sampler and, when configured, retention."""
        self.heads = head_revisions()
        self.telemetry.start(self.settings)
        if self.telemetry.metrics is not None:

            async def sample() -> None:
                self.sample(gateway)

            self._every(SAMPLE_SECONDS, sample, "metrics sampler")
        if self.settings.retention_days and gateway.store is not None:
            store, days = gateway.store, self.settings.retention_days

            async def retain() -> None:
                deleted = await asyncio.to_thread(apply_retention, store, days)
                if deleted:
                    log.info("retention: deleted %d raw calls older than %d days", deleted, days)

            self._every(self.settings.retention_interval, retain, "retention")

    def sample(self, gateway: Gateway) -> None:
        """Copy the gateway's current state into the metrics (also done at every scrape)."""
        if self.telemetry.metrics is not None:
            stats = gateway.recorder.stats() if gateway.recorder is not None else None
            governance = gateway.governance
            guard = governance.guard if governance is not None else None
            limiter = governance.limiter if governance is not None else None
            self.telemetry.metrics.sample(
                inflight=gateway.proxy.in_flight,
                recorder=stats,
                ledger=guard.stats if guard is not None else None,
                limits=limiter.stats if limiter is not None else None,
            )

    def _every(self, seconds: float, job: Callable[[], Awaitable[None]], name: str) -> None:
        async def loop() -> None:
            while True:
                try:
                    await job()
                except Exception:  # housekeeping must outlive a bad run
                    log.exception("%s failed; retrying in %.0fs", name, seconds)
                await asyncio.sleep(seconds)

        self._tasks.append(asyncio.create_task(loop(), name=f"spendgate-{name}"))

    async def stop(self, gateway: Gateway) -> None:
        """Stop the periodic tasks, take a last sample, flush spans."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.sample(gateway)
        await asyncio.to_thread(self.telemetry.shutdown)

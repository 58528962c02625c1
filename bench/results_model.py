"""What one bench run found, per target and workload."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.load import Run, median_rps, median_run
from bench.targets import Recorded


@dataclass
class WorkloadResult:
    """One workload (``json`` or ``sse``) against one target."""

    c32: list[Run] = field(default_factory=list)
    c1: Run | None = None
    cpu_us_per_request: float | None = None

    @property
    def rps(self) -> float | None:
        """Median req/s of the c=32 runs."""
        return median_rps(self.c32) if self.c32 else None

    @property
    def c32_median(self) -> Run | None:
        """The c=32 run with the median req/s."""
        return median_run(self.c32) if self.c32 else None


@dataclass
class TargetResult:
    """One target: its workloads, memory, and (for spendgate) what it recorded."""

    key: str
    label: str
    workloads: dict[str, WorkloadResult] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    sent: int = 0
    completed: int = 0
    recorded: Recorded | None = None
    recorder_health: dict[str, object] | None = None
    max_backlog: int | None = None
    drain_seconds: float | None = None
    skipped: str | None = None
    failed: str | None = None

    def count(self, run: Run) -> Run:
        """Add a wrk run's counts to the totals; returns the run."""
        self.sent += run.sent
        self.completed += run.completed
        return run

    @property
    def records_spendgate(self) -> bool:
        """Whether this target records calls (spendgate)."""
        return self.key.startswith("spendgate")

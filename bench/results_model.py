"""What one bench run found, per target and workload."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.load import Run, median_rps, median_run
from bench.probe import StreamTiming
from bench.targets import Recorded


@dataclass
class WorkloadResult:
    """One workload (``json`` or ``sse``) against one target."""

    c32: list[Run] = field(default_factory=list)
    c128: Run | None = None
    c1: Run | None = None
    cpu_us_per_request: float | None = None
    stream: StreamTiming | None = None

    @property
    def rps(self) -> float | None:
        """Median req/s of the c=32 runs."""
        return median_rps(self.c32) if self.c32 else None

    @property
    def c32_median(self) -> Run | None:
        """The c=32 run with the median req/s."""
        return median_run(self.c32) if self.c32 else None


@dataclass
class Sustained:
    """A longer c=32 run, with the writer's queue depth sampled every second."""

    seconds: float
    rps: float
    samples: list[tuple[float, int]]
    drain_seconds: float

    @property
    def max_depth(self) -> int:
        """The deepest the queue got."""
        return max((d for _, d in self.samples), default=0)

    @property
    def bounded(self) -> bool:
        """No growth: the last third of the run is no deeper than the first (or tiny)."""
        depths = [d for _, d in self.samples]
        if len(depths) < 3:
            return True
        third = max(1, len(depths) // 3)
        first = sum(depths[:third]) / third
        last = sum(depths[-third:]) / third
        return last <= max(2 * first, 2000)


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
    sustained: Sustained | None = None
    # Calls the upstream answered while this target ran: what spendgate forwarded.
    forwarded: int | None = None
    upstream_before: int = 0
    version: str | None = None
    skipped: str | None = None
    failed: str | None = None

    def count(self, run: Run) -> Run:
        """Add a wrk run's counts to the totals; returns the run."""
        self.sent += run.sent
        self.completed += run.completed
        return run

    @property
    def records_spendgate(self) -> bool:
        """Whether this target records calls (spendgate with accounting on)."""
        return self.key in ("spendgate-sqlite", "spendgate-postgres")

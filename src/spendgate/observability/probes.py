"""Liveness and readiness: is the process up, and should a load balancer send it calls."""

from __future__ import annotations

from dataclasses import dataclass

from spendgate.recording.writer import Recorder
from spendgate.storage import Store
from spendgate.storage.migrate import current_revisions

OK = "ok"


@dataclass(frozen=True)
class Readiness:
    """Each check's verdict (``"ok"`` or what is wrong and how to fix it)."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        """True when every check passed."""
        return all(verdict == OK for verdict in self.checks.values())


def check_readiness(
    *,
    started: bool,
    draining: bool,
    store: Store | None,
    recorder: Recorder | None,
    heads: tuple[str, ...],
) -> Readiness:
    """Started and not shutting down, database reachable and at the newest schema, writer up."""
    checks = {
        "started": OK if started else "still starting",
        "accepting": "shutting down" if draining else OK,
        "database": "not opened",
        "migrations": "unknown",
        "recorder": OK if recorder is not None and recorder.running else "writer not running",
    }
    if store is not None:
        try:
            at = current_revisions(store.engine)
        except Exception as exc:  # readiness reports the failure, it does not raise it
            checks["database"] = f"unreachable ({type(exc).__name__}); check SPENDGATE_DATABASE_URL"
        else:
            checks["database"] = OK
            checks["migrations"] = (
                OK
                if set(at) == set(heads)
                else f"database at {', '.join(at) or 'nothing'}, this version needs "
                f"{', '.join(heads)}; run `spendgate db upgrade`"
            )
    return Readiness(checks)

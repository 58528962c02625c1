"""``python -m bench.gateway [--accounting on|off|record|budget]``: spendgate as served.

Settings come from the environment (``SPENDGATE_*``), the server from
:func:`spendgate.serving.server_for` (uvloop, httptools, the same start-up and heap
settling), so both variants run the same code as production. ``--accounting off`` is a
bench-only switch: once the gateway has started, the proxy's record hand-over becomes a
no-op and its budget and rate-limit hooks are removed, so the same process forwards
without recording, pricing or budget checks. The pair measures what accounting costs.
``record`` keeps recording and pricing but removes the budget hooks; ``budget`` keeps
the budget hooks but discards the records: together they split that cost.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

from spendgate.app import create_app
from spendgate.logs import configure_logging
from spendgate.records import CallRecord
from spendgate.serving import preflight, server_for
from spendgate.settings import Settings

MODES = ("on", "off", "record", "budget")


def _discard(_record: CallRecord) -> None:
    return None


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM; the exit status of the server."""
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    parser.add_argument("--accounting", choices=MODES, default="on")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    preflight(settings)
    gateway = create_app(settings)
    if args.accounting != "on":
        start = gateway.startup
        mode = args.accounting

        async def startup_without_accounting() -> None:
            await start()
            if mode in ("off", "budget"):
                gateway.proxy.submit = _discard
            if mode in ("off", "record"):
                gateway.proxy.reserve = None
                gateway.proxy.settle = None

        gateway.startup = startup_without_accounting  # type: ignore[method-assign]
    if os.environ.get("BENCH_GC") == "off":  # bench-only experiment: no cyclic collector
        start_gc = gateway.startup

        async def startup_without_gc() -> None:
            await start_gc()
            gc.disable()

        gateway.startup = startup_without_gc  # type: ignore[method-assign]
    switch = os.environ.get("BENCH_SWITCH_INTERVAL")
    if switch:  # bench-only experiment: how often the GIL changes hands
        sys.setswitchinterval(float(switch))
    server = server_for(settings, gateway)
    server.run()
    return 0 if server.started else 3


if __name__ == "__main__":
    sys.exit(main())

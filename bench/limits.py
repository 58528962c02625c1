"""How many rate-limit takes per second the database carries (``python -m bench.limits URL``).

Each thread loops ``LimitStore.take`` (one transaction, one upsert per bucket)
for a few seconds, against one hot bucket (every call from the same key: all
writers on one row) and against one bucket per thread. For scale, the same
threads also loop an empty transaction (``SELECT 1``: the floor any database
check costs) and, on PostgreSQL, takes committed durably (``synchronous_commit``
on, which the store turns off for these transactions). Limits are set high so
nothing is refused. Point it at a scratch database: it creates tables there.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection, text

from spendgate.storage import Store
from spendgate.storage.limits import Charge, LimitStore

BIG = 100_000_000


def _hammer(threads: int, seconds: float, step: Callable[[int], None]) -> dict[str, float]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        own = latencies[index]
        while time.monotonic() < stop:
            started = time.perf_counter()
            step(index)
            own.append(time.perf_counter() - started)

    running = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    every = sorted(x for own in latencies for x in own)
    cuts = statistics.quantiles(every, n=100)
    return {"per_s": len(every) / seconds, "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000}


def _durable(conn: Connection) -> None:
    """``LimitStore._relaxed`` replaced: keep the server's synchronous_commit."""


def main() -> None:
    """Command line: a scratch database URL, threads, seconds per measurement."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    store = Store.open(args.url, pool_size=args.threads)
    limits = LimitStore(store.engine)
    limit = limits.create_limit(
        scope="key", scope_value="*", requests_per_minute=BIG, output_tokens_per_minute=BIG
    )

    def take(subject: Callable[[int], str]) -> Callable[[int], None]:
        def step(index: int) -> None:
            limits.take([Charge(limit, subject(index), 1, 100, 1000)], time.time_ns() // 1000)

        return step

    def empty(_index: int) -> None:
        with store.engine.begin() as conn:
            conn.execute(text("SELECT 1"))

    runs: list[tuple[str, Callable[[int], None]]] = [
        ("empty transaction", empty),
        ("take, one hot bucket", take(lambda _i: "hot")),
        ("take, bucket per thread", take(lambda i: f"key-{i}")),
    ]
    if limits.dialect == "postgresql":
        durable = LimitStore(store.engine)
        durable._relaxed = _durable  # type: ignore[method-assign]

        def durable_take(index: int) -> None:
            durable.take([Charge(limit, "durable", 1, 100, 1000)], time.time_ns() // 1000)

        runs.append(("take, hot, durable commit", durable_take))
    for name, step in runs:
        result = _hammer(args.threads, args.seconds, step)
        print(
            f"{name:>26} x{args.threads}: {result['per_s']:7.0f}/s, "
            f"p50 {result['p50_ms']:6.2f} ms, p99 {result['p99_ms']:6.2f} ms"
        )
    store.close()


if __name__ == "__main__":
    main()

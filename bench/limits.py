"""How many rate-limit takes per second the database carries (``python -m bench.limits``).

Each thread loops ``LimitStore.take`` (one transaction, one upsert per bucket)
for a few seconds against one hot bucket (every call from the same key: the
worst case, all writers on one row) or one bucket per thread. Prints takes per
second and latency percentiles. Limits are set high so nothing is refused.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from spendgate.storage import Store
from spendgate.storage.limits import Charge, LimitStore


def run(url: str, threads: int, seconds: float, hot: bool, pool: int) -> dict[str, float]:
    """Hammer ``take`` from ``threads`` threads; takes/s and latency in ms."""
    store = Store.open(url, pool_size=pool)
    limits = LimitStore(store.engine)
    limit = limits.create_limit(
        scope="key",
        scope_value="*",
        requests_per_minute=100_000_000,
        output_tokens_per_minute=100_000_000,
    )
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        charge = Charge(limit, "hot" if hot else f"key-{index}", 1, 100, 1000)
        own = latencies[index]
        while time.monotonic() < stop:
            started = time.perf_counter()
            limits.take([charge], time.time_ns() // 1000)
            own.append(time.perf_counter() - started)

    pool_threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool_threads:
        thread.start()
    for thread in pool_threads:
        thread.join()
    store.close()
    every = sorted(x for own in latencies for x in own)
    quantiles = statistics.quantiles(every, n=100)
    return {
        "takes_per_s": len(every) / seconds,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def main() -> None:
    """Command line: a database URL, threads, seconds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="a scratch database: tables are created in it")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    for hot in (True, False):
        result = run(args.url, args.threads, args.seconds, hot, pool=args.threads)
        shape = "one hot bucket" if hot else "a bucket per thread"
        print(
            f"{shape:>20}, {args.threads} threads: {result['takes_per_s']:8.0f} takes/s, "
            f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
        )


if __name__ == "__main__":
    main()

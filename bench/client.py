"""``python -m bench client``: the upstream client alone, aiohttp against spendgate's lean one.

One fake upstream (``bench.upstream``, its own process); in this process, calls one
after another over one kept-alive connection, alternating the two clients in rounds:
the JSON message and the 25-event stream, each read to the end. Prints the median
latency, p99 and this process's CPU per call. What it isolates is the client's own
cost, the part of a proxied call that the gateway's other work does not touch.

    python -m bench client --calls 3000 --rounds 2
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import uvloop

from bench import targets
from bench.processes import Servers
from spendgate.proxy.upstream import UpstreamClient

_JSON = (
    b'{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hi"}]}'
)
_SSE = _JSON[:-1] + b',"stream":true}'
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"x-api-key", b"sk-ant-bench"),
    (b"anthropic-version", b"2023-06-01"),
]

Caller = Callable[[bytes], Awaitable[int]]


async def _measure(call: Caller, body: bytes, calls: int) -> tuple[float, float, float]:
    for _ in range(50):  # warm the connection and the code
        await call(body)
    latencies = []
    cpu = time.process_time()
    for _ in range(calls):
        started = time.perf_counter()
        await call(body)
        latencies.append(time.perf_counter() - started)
    cpu = (time.process_time() - cpu) / calls
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99)], cpu


async def _run(port: int, calls: int, rounds: int) -> None:
    url = f"http://127.0.0.1:{port}"
    lean = UpstreamClient(url)
    session = aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
    timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=900)
    str_headers = [(n.decode(), v.decode()) for n, v in _HEADERS]

    async def with_lean(body: bytes) -> int:
        resp = await lean.request("POST", "/v1/messages", _HEADERS, body)
        size = 0
        async for chunk in resp.iter_any():
            size += len(chunk)
        resp.release()
        return size

    async def with_aiohttp(body: bytes) -> int:
        resp = await session.request(
            "POST",
            url + "/v1/messages",
            headers=str_headers,
            data=body,
            allow_redirects=False,
            timeout=timeout,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            auto_decompress=False,
        )
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
        resp.release()
        return size

    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    try:
        for _ in range(rounds):
            for workload, body in (("json", _JSON), ("sse", _SSE)):
                for name, call in (("aiohttp", with_aiohttp), ("lean", with_lean)):
                    results.setdefault((workload, name), []).append(
                        await _measure(call, body, calls)
                    )
    finally:
        await session.close()
        await lean.close()
    print("| workload | client | p50 (ms) | p99 (ms) | CPU per call (µs) |")
    print("|---|---|---:|---:|---:|")
    for (workload, name), runs in results.items():
        p50 = statistics.median(r[0] for r in runs) * 1e3
        p99 = statistics.median(r[1] for r in runs) * 1e3
        cpu = statistics.median(r[2] for r in runs) * 1e6
        print(f"| {workload} | {name} | {p50:.3f} | {p99:.3f} | {cpu:.0f} |")


def main(argv: list[str]) -> int:
    """Start the fake upstream, measure, print a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench client", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="spendgate-client-"))
    servers = Servers()
    try:
        upstream, ready = targets.upstream_server(workdir)
        servers.start(upstream, ready)
        uvloop.run(_run(upstream.port, args.calls, args.rounds))
    finally:
        servers.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0

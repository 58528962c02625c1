"""``python -m bench threads``: where a gateway's CPU goes, thread by thread.

Starts the fake upstream and one spendgate per accounting mode (SQLite, a proxy key
under a $1B budget), runs wrk at c=32 against each in turn, and reads every thread's
user and system CPU and every thread's context switches from ``/proc`` before and
after, per call. Threads are named by id (the event loop is the process's main
thread); child processes (the writer process) are listed on their own line.

This is how the cost of a writer *thread* showed up: the event loop's own CPU grew by
more than the thread's work, with ~2.7 voluntary context switches a call
(docs/benchmarks.md, "The writer in a process of its own").

    python -m bench threads --accounting off,record,on --workloads json,sse
    python -m bench threads --env SPENDGATE_WRITER_PROCESS=false   # the writer as a thread
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench import load, targets
from bench.processes import Servers, process_tree

_TICK = os.sysconf("SC_CLK_TCK")


def _threads(pid: int) -> dict[str, tuple[float, float, int]]:
    """Per thread of ``pid``: user s, system s, voluntary context switches."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                switches = next(
                    int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt")
                )
        except (FileNotFoundError, StopIteration):
            continue
        name = "event loop" if tid == str(pid) else f"thread {tid}"
        out[name] = (int(fields[11]) / _TICK, int(fields[12]) / _TICK, switches)
    return out


def _snapshot(pid: int) -> dict[str, tuple[float, float, int]]:
    snap = _threads(pid)
    for child in process_tree(pid):
        if child == pid:
            continue
        for name, value in _threads(child).items():
            label = f"child {child}" if name == "event loop" else f"child {child} {name}"
            snap[label] = value
    return snap


def main(argv: list[str]) -> int:
    """Measure; print one line per mode and workload."""
    parser = argparse.ArgumentParser(prog="python -m bench threads", description=__doc__)
    parser.add_argument("--accounting", default="off,record,on")
    parser.add_argument("--workloads", default="json")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for every gateway, e.g. SPENDGATE_WRITER_PROCESS=false",
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="spendgate-threads-"))
    servers = Servers()
    try:
        upstream, ready = targets.upstream_server(workdir)
        servers.start(upstream, ready)
        gateways = []
        for i, mode in enumerate(args.accounting.split(",")):
            url = f"sqlite:///{workdir / f'db{i}' / 'spendgate.db'}"
            server, ready = targets.spendgate_server(
                workdir, f"v{i}", upstream.port, url, accounting=mode
            )
            assert server.env is not None
            server.env.update(item.split("=", 1) for item in args.env)
            started = servers.start(server, ready, timeout=60)
            key = targets.proxy_key_with_budget(server.port)
            gateways.append((mode, started, load.write_scripts(workdir / f"lua{i}", key)))
        for _ in range(args.rounds):
            for mode, server, scripts in gateways:
                for workload in args.workloads.split(","):
                    url = f"http://127.0.0.1:{server.port}/v1/messages"
                    load.run(url, scripts[workload], connections=32, seconds=1)
                    time.sleep(0.5)
                    before = _snapshot(server.pid)
                    run = load.run(url, scripts[workload], connections=32, seconds=args.seconds)
                    time.sleep(1.0)  # the writer finishes what the run queued
                    after = _snapshot(server.pid)
                    calls = max(run.sent, 1)
                    parts, total, switches = [], 0.0, 0
                    for name, (user, system, vol) in sorted(after.items()):
                        b_user, b_system, b_vol = before.get(name, (0.0, 0.0, 0))
                        cpu = (user - b_user) + (system - b_system)
                        total += cpu
                        switches += vol - b_vol
                        if cpu * 1e6 / calls >= 2:
                            parts.append(
                                f"{name} {cpu * 1e6 / calls:.0f} "
                                f"(user {(user - b_user) * 1e6 / calls:.0f}, "
                                f"sys {(system - b_system) * 1e6 / calls:.0f})"
                            )
                    print(
                        f"{mode:>6} {workload:>4}: {run.rps:7,.0f} calls/s, "
                        f"{total * 1e6 / calls:4.0f} µs CPU/call: {'; '.join(parts)}; "
                        f"voluntary context switches/call {switches / calls:.2f}",
                        flush=True,
                    )
    finally:
        servers.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0

"""Servers the bench starts: started by PID, measured from ``/proc``, stopped by PID.

Every process the bench starts is a :class:`Server`; :class:`Servers` remembers them
all so that they are stopped on the way out, errors and Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class StartError(RuntimeError):
    """A server did not come up; the message names its log file."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses; fields follow the last ")".
        ppid = int(stat.rpartition(")")[2].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    tree = _children()
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(tree.get(current, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process tree under ``pid`` (all threads), in seconds."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / _CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """Sum of the peak resident set sizes (VmHWM) of the process tree under ``pid``, MiB."""
    total_kb = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def rss_mb(pid: int) -> float:
    """Sum of the current resident set sizes (VmRSS) of the process tree under ``pid``, MiB."""
    total_kb = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


@dataclass
class Server:
    """One started process and where its output goes."""

    name: str
    argv: Sequence[str]
    port: int
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The PID of the started process."""
        assert self.proc is not None, f"{self.name} is not started"
        return self.proc.pid

    def start(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        """Start the process and wait until ``ready()`` is true; :class:`StartError` if not."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(
                    f"{self.name} exited with status {self.proc.returncode} at start; "
                    f"see {self.log_path}:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                if ready():
                    return
            time.sleep(0.1)
        self.stop()
        raise StartError(
            f"{self.name} was not ready within {timeout:.0f}s; see {self.log_path}:\n"
            f"{self.log_tail()}"
        )

    def stop(self, timeout: float = 35.0) -> None:
        """SIGTERM the process (it drains and exits), SIGKILL it if it does not."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Servers:
    """Everything started, so that everything is stopped (newest first)."""

    started: list[Server] = field(default_factory=list)

    def start(self, server: Server, ready: Callable[[], bool], timeout: float = 30.0) -> Server:
        """Start ``server`` and remember it."""
        self.started.append(server)
        server.start(ready, timeout)
        return server

    def stop(self, server: Server) -> None:
        """Stop one server now."""
        server.stop()
        if server in self.started:
            self.started.remove(server)

    def stop_all(self) -> None:
        """Stop every server still running."""
        while self.started:
            self.stop(self.started[-1])

"""``spendgate serve`` as a real child process (scale-out, shutdown and start-up tests).

Settings go in through the environment, exactly as a container or a systemd
unit would pass them; the process's log goes to a file for the test to read.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from spendgate.testing.gateway import free_port

SPENDGATE = [sys.executable, "-m", "spendgate"]


def spendgate_env(home: Path, **settings: object) -> dict[str, str]:
    """A child environment: this one without SPENDGATE_* / ANTHROPIC_*, plus ``settings``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SPENDGATE_", "ANTHROPIC_", "PROMETHEUS_"))
    }
    env["SPENDGATE_HOME"] = str(home)
    env["SPENDGATE_CONFIG"] = str(home / "no-config.toml")
    for name, value in settings.items():
        env[f"SPENDGATE_{name.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    return env


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``spendgate ARGS`` to completion, output captured."""
    return subprocess.run(
        [*SPENDGATE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


class GatewayProcess:
    """One ``spendgate serve`` process on a free loopback port."""

    def __init__(self, home: Path, *, args: tuple[str, ...] = (), **settings: object) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = spendgate_env(home, host="127.0.0.1", port=self.port, **settings)
        self.args = args
        self.log_path = home / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Launch the process (does not wait; see :meth:`wait_ready`)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        self.proc = subprocess.Popen(
            [*SPENDGATE, "serve", *self.args], env=self.env, stdout=log, stderr=log
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 60.0) -> Self:
        """Block until ``/readyz`` answers 200; fail with the log if the process died."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"gateway not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """Everything the process has logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int = signal.SIGTERM) -> None:
        """Send a signal to the process."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def __enter__(self) -> Self:
        return self.start().wait_ready()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()

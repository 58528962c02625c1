"""LiteLLM's proxy as a peer: installed from PyPI into its own virtual environment.

The venv (``bench/.litellm-venv``, gitignored) is created on first use with the
interpreter that runs the bench; if it cannot be created or installed the target is
skipped with the reason. The proxy runs one worker on loopback, without a database
(no spend logs: less work than spendgate does), and forwards through its Anthropic
pass-through route ``/anthropic/v1/messages`` to the same fake upstream, with the
upstream key from ``ANTHROPIC_API_KEY``. No master key, as spendgate on loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.load import API_KEY

VENV = Path(__file__).resolve().parent / ".litellm-venv"
PACKAGE = "litellm[proxy]"
PATH = "/anthropic/v1/messages"

_CONFIG = """
model_list:
  - model_name: claude-sonnet-4-5
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: http://127.0.0.1:{upstream_port}
      api_key: {api_key}
litellm_settings:
  telemetry: false
general_settings: {{}}
"""


class Unavailable(RuntimeError):
    """LiteLLM could not be installed; the message says why."""


def executable() -> Path:
    """The ``litellm`` command in the bench's venv."""
    return VENV / "bin" / "litellm"


def ensure_installed(say: Callable[[str], None] = print) -> str:
    """Create the venv and install LiteLLM if needed; returns its version."""
    python = VENV / "bin" / "python"
    if not executable().exists():
        say(f"installing {PACKAGE} into {VENV} (first run only, takes a few minutes)")
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(VENV)],
            [str(python), "-m", "pip", "install", "--quiet", PACKAGE],
        ]
        for argv in steps:
            try:
                done = subprocess.run(
                    argv, capture_output=True, text=True, timeout=900, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise Unavailable(f"{' '.join(argv[:4])} failed: {exc}") from exc
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
                raise Unavailable(f"{' '.join(argv[:4])} failed: {' '.join(tail)}")
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0 or not executable().exists():
        raise Unavailable(f"litellm is not importable in {VENV}: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def server_argv(root: Path, port: int, upstream_port: int) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one LiteLLM proxy worker."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "litellm.yaml"
    config.write_text(_CONFIG.format(upstream_port=upstream_port, api_key=API_KEY))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPENDGATE_", "LITELLM_"))}
    env.update(
        {
            "ANTHROPIC_API_BASE": f"http://127.0.0.1:{upstream_port}",
            "ANTHROPIC_API_KEY": API_KEY,
            "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_SCHEMA_UPDATE": "true",
        }
    )
    env.pop("DATABASE_URL", None)
    argv = [
        str(executable()),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    return argv, env

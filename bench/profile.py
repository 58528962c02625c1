"""Sampling profile of a running gateway with py-spy, summarised as top costs.

py-spy attaches to the process by PID (no code change, no restart) and writes collapsed
stacks (``frame;frame;... count``). It samples only threads holding the GIL (``--gil``):
the gateway is one process whose Python work is serialised by the GIL, so that is where
its CPU goes, and idle thread-pool workers drop out. The summary ranks functions by self
time (the frame on top) and by inclusive time (on the stack), line numbers dropped,
groups self time by package, and splits the event-loop thread from other threads (the
database writer runs in ``asyncio.to_thread``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_GROUPS = (
    ("spendgate/proxy/", "spendgate proxy"),
    ("spendgate/recording/", "spendgate recording"),
    ("spendgate/storage/", "spendgate storage"),
    ("spendgate/pricing/", "spendgate pricing"),
    ("spendgate/", "spendgate (other)"),
    ("sqlalchemy/", "sqlalchemy"),
    ("aiohttp/", "aiohttp"),
    ("uvicorn/", "uvicorn"),
    ("asyncio/", "asyncio"),
    ("concurrent/", "threads (to_thread)"),
    ("threading.py", "threads (to_thread)"),
    ("sqlite3/", "sqlite3"),
    ("psycopg/", "psycopg"),
    ("yarl/", "yarl / multidict"),
    ("multidict/", "yarl / multidict"),
    ("pydantic", "pydantic"),
)

# Waiting, not working: a pool thread blocked on its queue or a condition.
_IDLE = {
    ("_worker", "concurrent/futures/thread.py"),
    ("Condition.wait", "threading.py"),
    ("Event.wait", "threading.py"),
}


def py_spy_path() -> str | None:
    """py-spy next to the running interpreter, or on PATH, or None."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path, rate: int = 250) -> subprocess.Popen[bytes]:
    """Start py-spy recording ``pid`` for ``seconds`` into ``out`` (collapsed stacks)."""
    exe = py_spy_path()
    if exe is None:
        raise FileNotFoundError("py-spy is not installed: .venv/bin/pip install py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(rate),
        "--gil",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    log = out.with_suffix(".log").open("wb")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


def _frame(text: str) -> tuple[str, str]:
    match = _FRAME.match(text.strip())
    if not match:
        return text.strip(), ""
    return match["func"], match["file"]


def _short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = path.split("/", 1)[1] if "/" in path else path
            break
    return path


def _group(path: str) -> str:
    for needle, name in _GROUPS:
        if needle in path:
            return name
    return "other"


@dataclass
class Summary:
    """Ranked costs from one profile."""

    samples: int
    self_top: list[tuple[str, int]]
    inclusive_top: list[tuple[str, int]]
    by_group: list[tuple[str, int]]
    by_thread: list[tuple[str, int]]

    def render(self, title: str, top: int = 20) -> str:
        """Plain-text report."""

        def pct(n: int) -> str:
            return f"{100 * n / self.samples:5.1f} %" if self.samples else "  -  "

        lines = [f"## {title}", f"samples holding the GIL: {self.samples}", "", "### by thread"]
        lines += [f"{pct(n)}  {name}" for name, n in self.by_thread]
        lines += ["", "### self time by group"]
        lines += [f"{pct(n)}  {name}" for name, n in self.by_group]
        lines += ["", "### self time by function"]
        lines += [f"{pct(n)}  {name}" for name, n in self.self_top[:top]]
        lines += ["", "### inclusive time by function (spendgate and its libraries)"]
        lines += [f"{pct(n)}  {name}" for name, n in self.inclusive_top[: top + 10]]
        return "\n".join(lines) + "\n"


def summarise(collapsed: Path) -> Summary:
    """Rank functions of a py-spy ``--format raw`` file by self and inclusive samples."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        frames = [(func, _short(path)) for func, path in frames if path]
        if not frames:
            continue
        if frames[-1] in _IDLE:
            continue
        total += count
        on_loop = any(path.startswith("asyncio/runners.py") for _, path in frames)
        threads["event loop thread" if on_loop else "other threads (to_thread)"] += count
        func, path = frames[-1]
        self_counts[f"{func} ({path})"] += count
        groups[_group(path)] += count
        seen = set()
        for func, path in frames:
            name = f"{func} ({path})"
            if name not in seen:
                seen.add(name)
                incl_counts[name] += count
    interesting = [
        (name, n)
        for name, n in incl_counts.most_common()
        if any(k in name for k in ("spendgate/", "aiohttp/", "uvicorn/", "sqlalchemy/"))
    ]
    return Summary(
        total,
        self_counts.most_common(),
        interesting,
        groups.most_common(),
        threads.most_common(),
    )

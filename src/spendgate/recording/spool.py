"""Append-only spool files for records the database could not take.

Each process appends to its own file (``spool-<pid>.jsonl``). Replay claims a
file by renaming it (atomic on POSIX), so several processes sharing a spool
directory never replay the same file twice; inserts ignore ids already stored,
so a replay interrupted half-way can simply run again.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from spendgate.storage.schema import from_micros, to_micros

_CLAIMED = ".replaying-"
_TIME_COLUMNS = ("created_at", "first_byte_at", "ended_at")


def encode_row(row: dict[str, Any]) -> bytes:
    """One spool line for a ``calls`` row."""
    out = dict(row)
    for name in _TIME_COLUMNS:
        if out.get(name) is not None:
            out[name] = to_micros(out[name])
    return orjson.dumps(out) + b"\n"


def decode_row(line: bytes) -> dict[str, Any]:
    """A ``calls`` row from a spool line."""
    row: dict[str, Any] = orjson.loads(line)
    for name in _TIME_COLUMNS:
        if row.get(name) is not None:
            row[name] = from_micros(int(row[name]))
    return row


class Spool:
    """The spool directory as this process sees it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.own_file = directory / f"spool-{os.getpid()}.jsonl"

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Append rows durably (fsync); raises OSError when the disk refuses."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = b"".join(encode_row(r) for r in rows)
        with open(self.own_file, "ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def pending(self) -> int:
        """Records waiting in every spool file of the directory."""
        if not self.directory.is_dir():
            return 0
        total = 0
        for path in self.directory.glob("spool-*.jsonl*"):
            try:
                with open(path, "rb") as handle:
                    total += sum(1 for line in handle if line.strip())
            except OSError:
                continue
        return total

    def claim(self) -> list[Path]:
        """Take every unclaimed spool file for replay by this process."""
        if not self.directory.is_dir():
            return []
        claimed: list[Path] = []
        mine = os.getpid()
        for path in sorted(self.directory.glob("spool-*.jsonl*")):
            owner = _claimer(path.name)
            if owner == mine:
                claimed.append(path)  # claimed earlier, its replay failed: retry it
                continue
            if owner is not None and _alive(owner):
                continue
            # A fresh name every time: renaming onto a file claimed earlier (the
            # own file is spilled to again after each claim) would replace it.
            base = path.name.split(_CLAIMED)[0]
            target = path.with_name(f"{base}{_CLAIMED}{mine}-{uuid.uuid4().hex[:12]}")
            try:
                path.rename(target)
            except OSError:
                continue  # another process claimed it first
            claimed.append(target)
        return claimed

    @staticmethod
    def read(path: Path, chunk: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Rows of a claimed file, ``chunk`` at a time. A torn last line is skipped."""
        batch: list[dict[str, Any]] = []
        with open(path, "rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # a write cut by a crash: the record was counted lost then
                batch.append(decode_row(line))
                if len(batch) >= chunk:
                    yield batch
                    batch = []
        if batch:
            yield batch


def _claimer(name: str) -> int | None:
    """The pid in ``….replaying-<pid>[-<suffix>]``, or None for an unclaimed file."""
    if _CLAIMED not in name:
        return None
    pid = name.rsplit(_CLAIMED, 1)[1].split("-", 1)[0]
    return int(pid) if pid.isdigit() else 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Importing Claude Code's local JSONL transcripts as call records.

Claude Code writes one line per content block of each API response, sharing
``message.id`` + ``requestId``; early lines carry partial output counts. Lines
are deduplicated on that pair keeping the line with the most tokens (so the
final one wins) and preferring a main-thread line over a sidechain replay.
Record ids derive from the pair, so importing the same files again adds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

import orjson

from spendgate.pricing import PriceBook, apply_cost
from spendgate.records import Attribution, CallRecord
from spendgate.usage import Usage

DEFAULT_ROOTS = (Path("~/.claude/projects"), Path("~/.config/claude/projects"))
_NAMESPACE = uuid.UUID("c1a0de00-c0de-4000-8000-000000000000")


@dataclass
class Entry:
    """One deduplicated assistant response from a transcript."""

    message_id: str
    request_id: str
    session_id: str
    model: str
    at: datetime
    usage: dict[str, Any]
    project: str
    sidechain: bool
    version: str | None

    @property
    def tokens(self) -> int:
        """All tokens of the line, to pick the most complete duplicate."""
        u = Usage.from_raw(self.usage)
        return u.prompt_tokens + u.output_tokens


def transcript_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every ``*.jsonl`` under ``paths`` (files are taken as given), sorted."""
    for given in paths:
        path = given.expanduser()
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(path.rglob("*.jsonl"))


def _project(line: Mapping[str, Any], file: PurePath) -> str:
    cwd = line.get("cwd")
    if isinstance(cwd, str) and cwd.strip("/"):
        return Path(cwd).name
    return file.parent.name


def parse_line(raw: bytes, file: PurePath) -> Entry | None:
    """An assistant response with usage, or None for anything else (or a broken line)."""
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(line, dict) or line.get("isApiErrorMessage"):
        return None
    message = line.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
        return None
    ids = (message.get("id"), line.get("requestId"), line.get("sessionId"), message.get("model"))
    if not all(isinstance(v, str) and v for v in ids) or message["model"] == "<synthetic>":
        return None
    try:
        at = datetime.fromisoformat(str(line.get("timestamp")).replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    return Entry(
        message_id=message["id"],
        request_id=line["requestId"],
        session_id=line["sessionId"],
        model=message["model"],
        at=at,
        usage=message["usage"],
        project=_project(line, file),
        sidechain=bool(line.get("isSidechain")),
        version=line.get("version") if isinstance(line.get("version"), str) else None,
    )


def _better(new: Entry, old: Entry) -> bool:
    if new.sidechain != old.sidechain:
        return not new.sidechain
    return new.tokens > old.tokens


def read_lines(
    lines: Iterable[bytes], origin: PurePath, found: dict[tuple[str, str], Entry] | None = None
) -> dict[tuple[str, str], Entry]:
    """Deduplicated entries of transcript ``lines`` read from ``origin``, merged into ``found``."""
    found = {} if found is None else found
    for raw in lines:
        entry = parse_line(raw, origin)
        if entry is None:
            continue
        key = (entry.message_id, entry.request_id)
        old = found.get(key)
        if old is None or _better(entry, old):
            found[key] = entry
    return found


def read_entries(files: Iterable[Path]) -> dict[tuple[str, str], Entry]:
    """Deduplicated entries of ``files`` keyed by (message id, request id)."""
    found: dict[tuple[str, str], Entry] = {}
    for file in files:
        with file.open("rb") as handle:
            read_lines(handle, file, found)
    return found


def priced_records(
    entries: Iterable[Entry], book: PriceBook, *, user: str | None = None, team: str | None = None
) -> list[CallRecord]:
    """Priced call records for ``entries``, attributed to ``user`` and ``team`` if given."""
    records = []
    for entry in entries:
        record = to_record(entry)
        record.attribution.user = user
        record.attribution.team = team
        apply_cost(book, record)
        records.append(record)
    return records


def to_record(entry: Entry) -> CallRecord:
    """The call record for an entry (unpriced; price it before storing)."""
    agent = f"claude-code/{entry.version}" if entry.version else "claude-code"
    return CallRecord(
        id=str(uuid.uuid5(_NAMESPACE, f"{entry.message_id}:{entry.request_id}")),
        created_at=entry.at,
        source="import",
        endpoint="/v1/messages",
        stream=True,
        status_code=200,
        request_id=entry.request_id,
        message_id=entry.message_id,
        model_requested=entry.model,
        model=entry.model,
        usage=Usage.from_raw(entry.usage),
        user_agent=agent,
        note="imported from a Claude Code transcript",
        attribution=Attribution(
            project=entry.project, session_id=entry.session_id, tags=["claude-code"]
        ),
    )

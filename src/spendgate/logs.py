"""Structured JSON log lines for the gateway's own logging (never secrets)."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

# uvicorn adds ``color_message``, a colour-coded copy of the message.
_SKIP = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "color_message",
}


# Belt and braces: whatever a message or a traceback carries (a database error
# quotes its SQL parameters), credentials and database passwords never reach a log.
_SECRETS = re.compile(
    r"(?P<keep>sk-ant-[a-z]+\d*-|sg-|sgt_)[A-Za-z0-9_-]{8,}|(?P<url>://[^:/@\s\"]+:)[^@\s\"]+@"
)


def redact(text: str) -> str:
    """``text`` with Anthropic keys, proxy keys, API tokens and URL passwords masked."""
    return _SECRETS.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    if match["url"]:
        return match["url"] + "***@"
    return match["keep"] + "***"


# How often a line that every call in an outage would log is written at most.
EVERY_SECONDS = 10.0


class Every:
    """At most one log line per ``seconds``, counting the ones held back.

    While the database is down every call is refused, and a line per call (thousands
    a second) would flood the log and slow the gateway down. ::

        held = every.due()
        if held is not None:
            log.error("budget check failed: %s%s", reason, held_back(held))
    """

    def __init__(
        self, seconds: float = EVERY_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._next = float("-inf")
        self._held = 0

    def due(self) -> int | None:
        """None if a line was written less than ``seconds`` ago (this one is counted);
        else how many were held back since that line."""
        now = self._clock()
        if now < self._next:
            self._held += 1
            return None
        held, self._held = self._held, 0
        self._next = now + self.seconds
        return held


def held_back(count: int) -> str:
    """What a line says of the lines :class:`Every` held back before it."""
    if not count:
        return ""
    return f" ({count} more like this since the last such line)"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _SKIP and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(entry, default=str).decode())


def configure_logging(level: str = "info") -> None:
    """Send spendgate's and uvicorn's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("alembic").setLevel(logging.WARNING)

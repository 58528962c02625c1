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
    a second) would flood the log and slow the gateway down. The next line written
    says how many were held back, and over how long::

        every.log(log, logging.ERROR, "budget check failed: %s", describe(exc))
    """

    def __init__(
        self, seconds: float = EVERY_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._last = float("-inf")  # when the last line was written
        self._held = 0

    def log(
        self,
        logger: logging.Logger,
        level: int,
        message: str,
        *args: object,
        exc_info: bool = False,
    ) -> bool:
        """``logger.log(level, message, *args)`` unless a line was written less than
        ``seconds`` ago (then it is counted); whether it was written."""
        now = self._clock()
        if now - self._last < self.seconds:
            self._held += 1
            return False
        held, self._held = self._held, 0
        since, self._last = now - self._last, now
        if held:
            message += " (%d more like this in the %.0f s before)"
            args = (*args, held, since)
        logger.log(level, message, *args, exc_info=exc_info, stacklevel=2)
        return True


def describe(exc: BaseException) -> str:
    """An exception for a log line: its class and what the database driver said (a
    connection refused, a missing table, a wrong password), secrets masked."""
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    detail = redact(" ".join(str(cause).split()))[:200]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


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

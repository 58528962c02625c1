"""Structured JSON log lines for the gateway's own logging (never secrets)."""

from __future__ import annotations

import logging
import re
import sys
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

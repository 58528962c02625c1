"""Errors the gateway itself answers on proxy routes, in Anthropic's own shape.

Upstream errors are never built here: they pass through byte-for-byte.
"""

from __future__ import annotations

import functools
import time
from email.utils import formatdate
from typing import Any

import orjson

from spendgate.records import new_id

Send = Any


class ClientGone(Exception):
    """The client closed its connection while we were answering."""


class Refused(Exception):
    """The gateway refuses a call before forwarding it (budget, rate limit)."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        reason: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.reason = reason
        self.headers = headers or []


@functools.lru_cache(maxsize=2)
def _formatted(second: int) -> bytes:
    return formatdate(second, usegmt=True).encode("ascii")


def http_date() -> bytes:
    """Now as an HTTP ``date`` header value (formatted once a second).

    The server adds no ``date`` or ``server`` header of its own (a proxied answer keeps
    the upstream's, once); the gateway's own answers carry this one."""
    return _formatted(int(time.time()))


def error_body(error_type: str, message: str) -> tuple[bytes, str]:
    """Anthropic's error JSON and the request id it carries."""
    request_id = "req_sg_" + new_id().replace("-", "")
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }
    return orjson.dumps(body), request_id


async def send_error(
    send: Send,
    status: int,
    error_type: str,
    message: str,
    *,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> str:
    """Answer with an Anthropic-shaped error; returns the request id used."""
    body, request_id = error_body(error_type, message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"request-id", request_id.encode()),
        (b"x-spendgate-error", b"1"),
        (b"date", http_date()),
        *(extra_headers or []),
    ]
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    except OSError as exc:  # ASGI 2.4: send() raises once the client has gone
        raise ClientGone from exc
    return request_id


def database_unavailable(checking: str, reason: str) -> Refused:
    """The 503 for a call refused because ``checking`` (budgets, rate limits) cannot be
    checked: the database is down, and a limit must not switch off during an outage."""
    return Refused(
        503,
        "api_error",
        f"spendgate: cannot check {checking} because the database is unavailable; "
        "retry shortly, or check SPENDGATE_DATABASE_URL and GET /health",
        reason=reason,
    )

"""What the fake upstream served: one :class:`Served` per request, in order.

A handler fills an :class:`Exchange` while it answers and *commits* it once,
just before the client can see the end of the answer (the last SSE chunk, the
aborted connection, or the returned JSON). Committing first means a test that
has just seen its call finish always finds the record in the log.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """An Anthropic-looking identifier such as ``req_011C…`` or ``msg_01…``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass(frozen=True, slots=True)
class Served:
    """One request the fake answered, and exactly what it answered.

    ``usage`` is the final usage a client should compute: for a stream, the
    ``message_start`` usage overwritten by the last ``message_delta`` usage.
    ``completed`` is False when the answer did not run to its end (a cut or
    reset stream, a mid-stream ``error`` event, a client that went away).
    ``status`` is 0 when the connection was dropped before any status line.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int
    response_body: bytes
    request_id: str
    message_id: str | None = None
    model: str | None = None
    usage: JSON | None = None
    stream: bool = False
    completed: bool = True


@dataclass(slots=True)
class Exchange:
    """The mutable record of one request while it is being answered."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    request_id: str
    sink: Callable[[Served], None]
    status: int = 0
    chunks: list[bytes] = field(default_factory=list)
    message_id: str | None = None
    model: str | None = None
    usage: JSON | None = None
    stream: bool = False
    completed: bool = True
    committed: bool = False

    def commit(self) -> None:
        """Append the finished record to the log (only the first call counts)."""
        if self.committed:
            return
        self.committed = True
        self.sink(
            Served(
                method=self.method,
                path=self.path,
                query=self.query,
                headers=self.headers,
                body=self.body,
                status=self.status,
                response_body=b"".join(self.chunks),
                request_id=self.request_id,
                message_id=self.message_id,
                model=self.model,
                usage=self.usage,
                stream=self.stream,
                completed=self.completed,
            )
        )


class ServedLog:
    """A thread-safe, append-only list of :class:`Served` records."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Served] = []

    def append(self, item: Served) -> None:
        """Record one answered request."""
        with self._lock:
            self._items.append(item)

    def snapshot(self) -> list[Served]:
        """A copy of the log, oldest first."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        """Forget everything served so far."""
        with self._lock:
            self._items.clear()

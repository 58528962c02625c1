"""Scenario controls: ``x-fake-*`` request headers that steer one answer.

A proxy forwards unknown headers untouched, so a test drives the fake through
the gateway with the SDK's ``extra_headers``. Every header is optional; a
value that does not parse is answered with a 400 naming the header.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

DEFAULT_RETRY_AFTER = "7"

HEADERS = (
    "x-fake-usage",
    "x-fake-model",
    "x-fake-error",
    "x-fake-retry-after",
    "x-fake-midstream-error",
    "x-fake-reset",
    "x-fake-delay",
    "x-fake-events",
    "x-fake-refusal",
    "x-fake-sleep",
)


class ScenarioError(ValueError):
    """An ``x-fake-*`` header whose value the fake cannot use."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """How to answer one request; the defaults are a plain successful call."""

    usage: dict[str, Any] | None = None
    model: str | None = None
    error: tuple[int, str] | None = None
    retry_after: str | None = None
    midstream_error: str | None = None
    reset: bool = False
    delay: float | None = None
    events: int = 5
    refusal: bool = False
    sleep: float = 0.0

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Scenario:
        """Read the ``x-fake-*`` headers of a request (names are case-insensitive)."""
        get = {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-fake-")}
        error = _error(get["x-fake-error"]) if "x-fake-error" in get else None
        retry_after = get.get("x-fake-retry-after")
        if retry_after is None and error is not None and error[0] == 429:
            retry_after = DEFAULT_RETRY_AFTER
        return cls(
            usage=_usage(get["x-fake-usage"]) if "x-fake-usage" in get else None,
            model=get.get("x-fake-model") or None,
            error=error,
            retry_after=retry_after,
            midstream_error=get.get("x-fake-midstream-error") or None,
            reset=_flag(get, "x-fake-reset"),
            delay=_seconds(get, "x-fake-delay"),
            events=_count(get, "x-fake-events", default=5),
            refusal=_flag(get, "x-fake-refusal"),
            sleep=_seconds(get, "x-fake-sleep") or 0.0,
        )


def _flag(headers: Mapping[str, str], name: str) -> bool:
    return headers.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _seconds(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ScenarioError(f"{name}: expected seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ScenarioError(f"{name}: expected non-negative seconds, got {raw!r}")
    return value


def _count(headers: Mapping[str, str], name: str, *, default: int) -> int:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ScenarioError(f"{name}: expected an integer, got {raw!r}") from None
    if value < 0:
        raise ScenarioError(f"{name}: expected a non-negative integer, got {raw!r}")
    return value


def _usage(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise ScenarioError(f"x-fake-usage: not JSON: {raw!r}") from None
    if not isinstance(value, dict):
        raise ScenarioError("x-fake-usage: expected a JSON object")
    return value


def _error(raw: str) -> tuple[int, str]:
    """``529:overloaded_error``, ``529`` or ``overloaded_error``."""
    status_text, _, error_type = raw.strip().partition(":")
    if not status_text.isdigit():
        error_type, status_text = status_text, ""
    error_type = error_type.strip()
    if status_text:
        status = int(status_text)
        if not 400 <= status <= 599:
            raise ScenarioError(f"x-fake-error: status must be 4xx or 5xx, got {raw!r}")
        if not error_type:
            error_type = next(
                (t for t, s in ERROR_STATUS.items() if s == status),
                "api_error" if status >= 500 else "invalid_request_error",
            )
        return status, error_type
    if error_type not in ERROR_STATUS:
        raise ScenarioError(f"x-fake-error: expected '<status>:<type>', got {raw!r}")
    return ERROR_STATUS[error_type], error_type

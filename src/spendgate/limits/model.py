"""What a rate limit is: requests and tokens per minute for one scope.

A limit names a scope (``global``, ``key``, ``team``, ``user``, ``project``)
and either one value of it (team ``Engineering``) or ``*``: every value
separately (each key its own 60 requests per minute). Up to three rates share
one definition, as Anthropic's own limits do: requests, input tokens and
output tokens per minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Literal, get_args

from spendgate.records import Attribution

Scope = Literal["global", "key", "team", "user", "project"]
Metric = Literal["requests", "input_tokens", "output_tokens"]
SCOPES: tuple[str, ...] = get_args(Scope)
METRICS: tuple[Metric, ...] = get_args(Metric)
# The attribution field a scope's buckets are named by (read for every call).
_ATTRIBUTE = {"key": "key_id", "team": "team", "user": "user", "project": "project"}
EACH = "*"
# Bucket arithmetic stays inside 64-bit integers up to this rate (see storage.limits).
MAX_PER_MINUTE = 100_000_000

_UNITS = {"requests": "requests", "input_tokens": "input tokens", "output_tokens": "output tokens"}


def unit_name(metric: Metric) -> str:
    """``input tokens`` — for messages."""
    return _UNITS[metric]


@dataclass(frozen=True)
class RateLimit:
    """One rate limit. ``scope_value`` is "" for global and ``*`` for "each value"."""

    id: str
    name: str
    scope: Scope
    scope_value: str
    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    created_at: datetime | None = None

    def per_minute(self, metric: Metric) -> int | None:
        """The limit on ``metric``, or None when this limit does not cover it."""
        if metric == "requests":
            return self.requests_per_minute
        if metric == "input_tokens":
            return self.input_tokens_per_minute
        return self.output_tokens_per_minute

    @cached_property
    def metrics(self) -> tuple[Metric, ...]:
        """The metrics this limit covers."""
        return tuple(m for m in METRICS if self.per_minute(m) is not None)

    @cached_property
    def counts_tokens(self) -> bool:
        """Whether calls under this limit must be settled to their real token counts."""
        return self.input_tokens_per_minute is not None or self.output_tokens_per_minute is not None

    def subject(self, who: Attribution) -> str | None:
        """The bucket a call attributed to ``who`` counts in, or None if the limit does not
        apply to it."""
        if self.scope == "global":
            return ""
        value: str | None = getattr(who, _ATTRIBUTE[self.scope])
        if not value:
            return None
        if self.scope_value in (EACH, value):
            return value
        return None

    def describe(self) -> str:
        """``each user: 60 requests/min, 40000 input tokens/min`` — for messages."""
        if self.scope == "global":
            where = "all calls"
        elif self.scope_value == EACH:
            where = f"each {self.scope}"
        else:
            where = f"{self.scope} {self.scope_value}"
        rates = ", ".join(f"{self.per_minute(m)} {unit_name(m)}/min" for m in self.metrics)
        return f"{where}: {rates}"

    def to_api(self) -> dict[str, Any]:
        """The public JSON shape."""
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "scope_value": self.scope_value or None,
            "requests_per_minute": self.requests_per_minute,
            "input_tokens_per_minute": self.input_tokens_per_minute,
            "output_tokens_per_minute": self.output_tokens_per_minute,
            "description": self.describe(),
            "created_at": (
                self.created_at.isoformat().replace("+00:00", "Z") if self.created_at else None
            ),
        }

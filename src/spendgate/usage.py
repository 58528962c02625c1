"""The ``usage`` object the Anthropic API returns, read exactly.

The raw object is kept as open JSON (unknown fields survive); :class:`Usage`
is the typed view pricing and storage need. Streaming usage is merged by
*overwriting*: ``message_delta.usage`` counts are cumulative and may repeat the
input and cache counts of ``message_start``, so adding them would double-count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeGuard

JSON = dict[str, Any]


def _int(value: Any) -> int:
    """A token count from JSON; anything that is not a non-negative integer counts as 0."""
    if type(value) is int:  # the JSON case, and never a bool
        return value if value >= 0 else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


# What JSON gives besides objects: never a mapping, decided without the ABC check.
_SCALARS = frozenset({int, str, float, bool, list, type(None)})


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # A dict (what JSON gives) or a JSON scalar (a count, a field not sent) skips the
    # ABC check, which costs more than the rest of a usage read together.
    kind = type(value)
    return kind is dict or (kind not in _SCALARS and isinstance(value, Mapping))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call, by billing class.

    ``input_tokens`` is *uncached* input, as the API reports it; the prompt's
    total is ``prompt_tokens``. All cache writes without a TTL breakdown count
    as 5-minute writes, which is how Anthropic bills them.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    code_execution_requests: int = 0
    thinking_tokens: int = 0
    service_tier: str | None = None
    inference_geo: str | None = None
    speed: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def cache_creation_input_tokens(self) -> int:
        """All cache-write tokens, both TTLs."""
        return self.cache_creation_5m_input_tokens + self.cache_creation_1h_input_tokens

    @property
    def prompt_tokens(self) -> int:
        """The whole prompt: uncached input plus cache reads plus cache writes."""
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    @staticmethod
    def empty() -> Usage:
        """No usage (one shared instance: a Usage is immutable)."""
        return _EMPTY

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any] | None) -> Usage:
        """Read a ``usage`` object as the API sent it (tolerant of missing or odd fields)."""
        if not raw:
            return _EMPTY if cls is Usage else cls()
        creation_total = _int(raw.get("cache_creation_input_tokens"))
        breakdown = raw.get("cache_creation")
        if _is_mapping(breakdown):
            five = _int(breakdown.get("ephemeral_5m_input_tokens"))
            hour = _int(breakdown.get("ephemeral_1h_input_tokens"))
            # A breakdown that does not cover the total (never seen, but cheap to
            # guard): the unexplained rest is billed as 5-minute writes.
            if creation_total > five + hour:
                five = creation_total - hour
        else:
            five, hour = creation_total, 0
        tools = raw.get("server_tool_use")
        tools = tools if _is_mapping(tools) else {}
        details = raw.get("output_tokens_details")
        details = details if _is_mapping(details) else {}
        return _filled(
            cls,
            (
                _int(raw.get("input_tokens")),
                _int(raw.get("output_tokens")),
                _int(raw.get("cache_read_input_tokens")),
                five,
                hour,
                _int(tools.get("web_search_requests")),
                _int(tools.get("web_fetch_requests")),
                _int(tools.get("code_execution_requests")),
                _int(details.get("thinking_tokens")),
                _str(raw.get("service_tier")),
                _str(raw.get("inference_geo")),
                _str(raw.get("speed")),
                dict(raw),
            ),
        )

    @classmethod
    def manual(
        cls,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_input_tokens: int = 0,
        cache_creation_5m_input_tokens: int = 0,
        cache_creation_1h_input_tokens: int = 0,
        web_search_requests: int = 0,
        service_tier: str | None = None,
        inference_geo: str | None = None,
        speed: str | None = None,
    ) -> Usage:
        """Build a usage from counts typed by hand, with the raw object the API would send."""
        raw: JSON = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": cache_read_input_tokens,
            "cache_creation_input_tokens": cache_creation_5m_input_tokens
            + cache_creation_1h_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache_creation_5m_input_tokens,
                "ephemeral_1h_input_tokens": cache_creation_1h_input_tokens,
            },
        }
        if web_search_requests:
            raw["server_tool_use"] = {"web_search_requests": web_search_requests}
        for name, value in (
            ("service_tier", service_tier),
            ("inference_geo", inference_geo),
            ("speed", speed),
        ):
            if value is not None:
                raw[name] = value
        return cls.from_raw(raw)


_EMPTY = Usage()
# The slots' own setters, in field order. A frozen dataclass's ``__init__`` sets each
# field through ``object.__setattr__`` by name; :meth:`Usage.from_raw` (every call,
# twice for a stream) fills the slots directly instead, for half the cost. The
# instance stays frozen: assigning an attribute still raises.
_SETTERS = tuple(getattr(Usage, name).__set__ for name in Usage.__slots__)
assert tuple(f.name for f in fields(Usage)) == Usage.__slots__


def _filled(cls: type[Usage], values: tuple[Any, ...]) -> Usage:
    usage = object.__new__(cls)
    for put, value in zip(_SETTERS, values, strict=True):
        put(usage, value)
    return usage


def merge_usage(base: Mapping[str, Any] | None, update: Mapping[str, Any]) -> JSON:
    """Overwrite ``base`` with every field present in ``update`` (cumulative stream counts).

    Nested objects (``cache_creation``, ``server_tool_use``) are merged the same
    way one level down, so a delta that carries only ``web_search_requests``
    does not erase ``web_fetch_requests`` seen earlier.
    """
    if not base:
        return dict(update)  # the first usage seen (a JSON body's only one): nothing to merge
    merged: JSON = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        if _is_mapping(value) and _is_mapping(old):
            merged[key] = {**old, **value}
        else:
            merged[key] = value
    return merged

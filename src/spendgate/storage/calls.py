"""Turning call records into rows and rows into the public JSON shape."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson

from spendgate.money import format_usd
from spendgate.records import Attribution, CallRecord
from spendgate.storage.schema import UTCMicros, calls, from_micros, to_micros
from spendgate.usage import Usage

# The ``calls`` columns in table order: the order of :func:`record_values` and of
# every insert's parameters.
CALL_COLUMNS: tuple[str, ...] = tuple(str(c.name) for c in calls.c)
TIME_AT: tuple[int, ...] = tuple(i for i, c in enumerate(calls.c) if isinstance(c.type, UTCMicros))
_ROW_VALUES = itemgetter(*CALL_COLUMNS)
_COLUMN_AT = {name: i for i, name in enumerate(CALL_COLUMNS)}
BREAKDOWN_AT = _COLUMN_AT["cost_breakdown"]


def _opt_micros(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def _json(value: Any) -> str:
    # orjson takes dicts only; a usage's raw object is one unless built by hand.
    return orjson.dumps(value if type(value) is dict else dict(value)).decode()


def record_values(record: CallRecord) -> list[Any]:
    """The ``calls`` row for a record as insert parameters: one value per column in
    ``CALL_COLUMNS`` order, times as integer microseconds, JSON columns serialised
    except the cost breakdown's, left ``None`` (:func:`fill_breakdowns` serialises it
    from the record's object where the row is stored or spooled).

    The writer's path: built straight from the record, without a row dict.
    """
    usage = record.usage
    attr = record.attribution
    return [
        record.id,
        to_micros(record.created_at),
        record.source,
        record.method,
        record.endpoint,
        record.stream,
        record.billable,
        record.status_code,
        record.request_id,
        record.message_id,
        record.model_requested,
        record.model,
        record.stop_reason,
        record.complete,
        record.error_type,
        record.error_message,
        _opt_micros(record.first_byte_at),
        _opt_micros(record.ended_at),
        record.latency_ms,
        record.ttft_ms,
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_5m_input_tokens,
        usage.cache_creation_1h_input_tokens,
        usage.web_search_requests,
        usage.web_fetch_requests,
        usage.thinking_tokens,
        usage.service_tier,
        usage.inference_geo,
        usage.speed,
        _json(usage.raw) if usage.raw else None,
        record.cost_nanousd,
        record.cache_savings_nanousd,
        None,  # cost_breakdown: see fill_breakdowns
        record.pricing_status,
        record.price_book_version,
        attr.credential_fingerprint,
        attr.credential_kind,
        attr.key_id,
        attr.key_label,
        attr.team,
        attr.user,
        attr.project,
        orjson.dumps(attr.tags).decode() if attr.tags else None,
        attr.session_id,
        attr.agent_id,
        record.user_agent,
        record.note,
    ]


def fill_breakdowns(items: Iterable[tuple[list[Any], Any, Any]]) -> None:
    """Serialise the cost breakdown of items whose column was left ``None`` (see
    :func:`record_values`): the writer process does it, not the event loop, and the
    breakdown crosses the socket once, as an object, instead of also as a string."""
    for values, breakdown, _ in items:
        if breakdown and values[BREAKDOWN_AT] is None:
            values[BREAKDOWN_AT] = orjson.dumps(breakdown).decode()


def values_to_row(values: list[Any]) -> dict[str, Any]:
    """Insert parameters (``CALL_COLUMNS`` order) as a ``calls`` row dict, times back
    to datetimes; ``values`` is left as it is."""
    row = dict(zip(CALL_COLUMNS, values, strict=True))
    for i in TIME_AT:
        name = CALL_COLUMNS[i]
        if row[name] is not None:
            row[name] = from_micros(row[name])
    return row


def record_to_row(record: CallRecord) -> dict[str, Any]:
    """The ``calls`` row for a record as a dict (JSON columns serialised, times as
    datetimes): what the spool keeps."""
    values = record_values(record)
    fill_breakdowns([(values, record.cost_breakdown, None)])
    return values_to_row(values)


def row_values(row: Mapping[str, Any]) -> list[Any]:
    """A ``calls`` row (a dict, possibly with only some columns) as insert parameters:
    ``CALL_COLUMNS`` order, missing columns ``None``, times as microseconds."""
    try:
        values = list(_ROW_VALUES(row))
    except KeyError:  # some columns only (analytics reads what it needs)
        values = [None] * len(CALL_COLUMNS)
        for name, value in row.items():
            at = _COLUMN_AT.get(name)
            if at is not None:
                values[at] = value
    for i in TIME_AT:
        value = values[i]
        if isinstance(value, datetime):
            values[i] = to_micros(value)
    return values


def _loads(value: str | None) -> Any:
    return orjson.loads(value) if value else None


def row_to_record(row: Mapping[str, Any]) -> CallRecord:
    """Rebuild a record from a stored row (used by repricing and the spool)."""
    return CallRecord(
        id=row["id"],
        created_at=row["created_at"],
        source=row["source"],
        method=row["method"],
        endpoint=row["endpoint"],
        stream=bool(row["stream"]),
        billable=bool(row["billable"]),
        status_code=row["status_code"],
        request_id=row["request_id"],
        message_id=row["message_id"],
        model_requested=row["model_requested"],
        model=row["model"],
        stop_reason=row["stop_reason"],
        complete=bool(row["complete"]),
        error_type=row["error_type"],
        error_message=row["error_message"],
        first_byte_at=row["first_byte_at"],
        ended_at=row["ended_at"],
        latency_ms=row["latency_ms"],
        ttft_ms=row["ttft_ms"],
        usage=_usage_from_row(row),
        attribution=Attribution(
            credential_fingerprint=row["credential_fingerprint"],
            credential_kind=row["credential_kind"],
            key_id=row["key_id"],
            key_label=row["key_label"],
            team=row["team"],
            user=row["user_name"],
            project=row["project"],
            tags=_loads(row["tags"]) or [],
            session_id=row["session_id"],
            agent_id=row["agent_id"],
        ),
        user_agent=row["user_agent"],
        note=row["note"],
        cost_nanousd=row["cost_nanousd"],
        cache_savings_nanousd=row["cache_savings_nanousd"],
        cost_breakdown=_loads(row["cost_breakdown"]),
        pricing_status=row["pricing_status"],
        price_book_version=row["price_book_version"],
    )


def _usage_from_row(row: Mapping[str, Any]) -> Usage:
    raw = _loads(row["usage"])
    if raw:
        return Usage.from_raw(raw)
    return Usage(
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cache_read_input_tokens=row["cache_read_input_tokens"],
        cache_creation_5m_input_tokens=row["cache_creation_5m_input_tokens"],
        cache_creation_1h_input_tokens=row["cache_creation_1h_input_tokens"],
        web_search_requests=row["web_search_requests"],
        web_fetch_requests=row["web_fetch_requests"],
        thinking_tokens=row["thinking_tokens"],
        service_tier=row["service_tier"],
        inference_geo=row["inference_geo"],
        speed=row["speed"],
    )


def rfc3339(value: datetime | None) -> str | None:
    """An aware datetime as RFC 3339 UTC with a ``Z`` (milliseconds kept)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def row_to_api(row: Mapping[str, Any]) -> dict[str, Any]:
    """The public JSON shape of a stored call (``GET /api/requests``, exports)."""
    cost = row["cost_nanousd"]
    savings = row["cache_savings_nanousd"]
    creation = row["cache_creation_5m_input_tokens"] + row["cache_creation_1h_input_tokens"]
    return {
        "id": row["id"],
        "created_at": rfc3339(row["created_at"]),
        "source": row["source"],
        "method": row["method"],
        "endpoint": row["endpoint"],
        "stream": bool(row["stream"]),
        "billable": bool(row["billable"]),
        "status_code": row["status_code"],
        "request_id": row["request_id"],
        "message_id": row["message_id"],
        "model": row["model"],
        "model_requested": row["model_requested"],
        "stop_reason": row["stop_reason"],
        "complete": bool(row["complete"]),
        "error_type": row["error_type"],
        "error_message": row["error_message"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "cache_read_input_tokens": row["cache_read_input_tokens"],
        "cache_creation_input_tokens": creation,
        "cache_creation_5m_input_tokens": row["cache_creation_5m_input_tokens"],
        "cache_creation_1h_input_tokens": row["cache_creation_1h_input_tokens"],
        "web_search_requests": row["web_search_requests"],
        "web_fetch_requests": row["web_fetch_requests"],
        "thinking_tokens": row["thinking_tokens"],
        "service_tier": row["service_tier"],
        "inference_geo": row["inference_geo"],
        "speed": row["speed"],
        "cost_usd": None if cost is None else format_usd(cost),
        "cache_savings_usd": None if savings is None else format_usd(savings),
        "cost_breakdown": _loads(row["cost_breakdown"]),
        "pricing_status": row["pricing_status"],
        "price_book_version": row["price_book_version"],
        "latency_ms": row["latency_ms"],
        "ttft_ms": row["ttft_ms"],
        "first_byte_at": rfc3339(row["first_byte_at"]),
        "ended_at": rfc3339(row["ended_at"]),
        "credential_fingerprint": row["credential_fingerprint"],
        "key_id": row["key_id"],
        "key_label": row["key_label"],
        "team": row["team"],
        "user": row["user_name"],
        "project": row["project"],
        "tags": _loads(row["tags"]) or [],
        "session_id": row["session_id"],
        "agent_id": row["agent_id"],
        "user_agent": row["user_agent"],
        "note": row["note"],
        "usage": _loads(row["usage"]),
    }


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first request log."""

    created_at: datetime
    id: str

    def encode(self) -> str:
        """An opaque string for ``next_cursor``."""
        raw = f"{to_micros(self.created_at)}:{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """Parse a ``cursor`` parameter; ValueError when it is not one of ours."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            micros, _, call_id = raw.partition(":")
            return cls(from_micros(int(micros)), call_id)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError("cursor is not a value returned as next_cursor") from exc

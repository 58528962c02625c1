"""Turning call records into rows and rows into the public JSON shape."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from spendgate.money import format_usd
from spendgate.records import Attribution, CallRecord
from spendgate.storage.schema import from_micros, to_micros
from spendgate.usage import Usage


def record_to_row(record: CallRecord) -> dict[str, Any]:
    """The ``calls`` row for a record (JSON columns serialised)."""
    usage = record.usage
    attr = record.attribution
    return {
        "id": record.id,
        "created_at": record.created_at,
        "source": record.source,
        "method": record.method,
        "endpoint": record.endpoint,
        "stream": record.stream,
        "billable": record.billable,
        "status_code": record.status_code,
        "request_id": record.request_id,
        "message_id": record.message_id,
        "model_requested": record.model_requested,
        "model": record.model,
        "stop_reason": record.stop_reason,
        "complete": record.complete,
        "error_type": record.error_type,
        "error_message": record.error_message,
        "first_byte_at": record.first_byte_at,
        "ended_at": record.ended_at,
        "latency_ms": record.latency_ms,
        "ttft_ms": record.ttft_ms,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation_5m_input_tokens": usage.cache_creation_5m_input_tokens,
        "cache_creation_1h_input_tokens": usage.cache_creation_1h_input_tokens,
        "web_search_requests": usage.web_search_requests,
        "web_fetch_requests": usage.web_fetch_requests,
        "thinking_tokens": usage.thinking_tokens,
        "service_tier": usage.service_tier,
        "inference_geo": usage.inference_geo,
        "speed": usage.speed,
        "usage": orjson.dumps(dict(usage.raw)).decode() if usage.raw else None,
        "cost_nanousd": record.cost_nanousd,
        "cache_savings_nanousd": record.cache_savings_nanousd,
        "cost_breakdown": (
            orjson.dumps(record.cost_breakdown).decode() if record.cost_breakdown else None
        ),
        "pricing_status": record.pricing_status,
        "price_book_version": record.price_book_version,
        "credential_fingerprint": attr.credential_fingerprint,
        "credential_kind": attr.credential_kind,
        "key_id": attr.key_id,
        "key_label": attr.key_label,
        "team": attr.team,
        "user_name": attr.user,
        "project": attr.project,
        "tags": orjson.dumps(attr.tags).decode() if attr.tags else None,
        "session_id": attr.session_id,
        "agent_id": attr.agent_id,
        "user_agent": record.user_agent,
        "note": record.note,
    }


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

"""Calls logged by hand (the seed's manual mode) and by importers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from spendgate.pricing import PriceBook, apply_cost
from spendgate.records import Attribution, CallRecord, Source, utcnow
from spendgate.usage import Usage


@dataclass
class ManualCall:
    """Token counts typed by a person, with optional attribution."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    web_search_requests: int = 0
    service_tier: str | None = None
    inference_geo: str | None = None
    speed: str | None = None
    at: datetime | None = None
    note: str | None = None
    user: str | None = None
    project: str | None = None
    team: str | None = None
    tags: list[str] = field(default_factory=list)


def manual_record(call: ManualCall, book: PriceBook, *, source: Source = "manual") -> CallRecord:
    """A priced call record for a hand-logged call."""
    if not call.model.strip():
        raise ValueError("model is required, e.g. claude-sonnet-4-5")
    counts = (
        call.input_tokens,
        call.output_tokens,
        call.cache_read_input_tokens,
        call.cache_creation_5m_input_tokens,
        call.cache_creation_1h_input_tokens,
        call.web_search_requests,
    )
    if any(n < 0 for n in counts):
        raise ValueError("token counts cannot be negative")
    record = CallRecord(
        created_at=call.at or utcnow(),
        source=source,
        method="POST",
        endpoint="/v1/messages",
        status_code=200,
        model_requested=call.model,
        model=call.model,
        usage=Usage.manual(
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            cache_read_input_tokens=call.cache_read_input_tokens,
            cache_creation_5m_input_tokens=call.cache_creation_5m_input_tokens,
            cache_creation_1h_input_tokens=call.cache_creation_1h_input_tokens,
            web_search_requests=call.web_search_requests,
            service_tier=call.service_tier,
            inference_geo=call.inference_geo,
            speed=call.speed,
        ),
        attribution=Attribution(
            credential_kind="manual",
            user=call.user,
            project=call.project,
            team=call.team,
            tags=list(call.tags),
        ),
        note=call.note,
    )
    record.ended_at = record.created_at
    apply_cost(book, record)
    return record

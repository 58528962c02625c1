"""One recorded call: the unit that flows from the proxy to the writer to storage."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from spendgate.usage import Usage

Source = Literal["proxy", "manual", "import", "batch"]
PricingStatus = Literal["priced", "unpriced", "not_billable", "not_list_priced", "pending"]


def new_id() -> str:
    """A UUIDv7 string: time-ordered, so ids sort by creation like the log does."""
    ms = time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF
    value = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    value[6] = 0x70 | (value[6] & 0x0F)  # version 7
    value[8] = 0x80 | (value[8] & 0x3F)  # variant 10 (RFC 9562)
    # str(uuid.UUID(bytes=...)) without building the object (one per call).
    h = value.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


# The error type of a call ended by a fault of spendgate's own before any answer.
GATEWAY_ERROR = "gateway_error"
# The error type of a call whose client left before its answer was relayed whole.
CLIENT_GONE = "client_disconnected"


@dataclass(slots=True)
class Attribution:
    """Who a call is charged to. Filled from the credential, the proxy key and headers."""

    credential_fingerprint: str | None = None
    credential_kind: str | None = None
    key_id: str | None = None
    key_label: str | None = None
    team: str | None = None
    user: str | None = None
    project: str | None = None
    tags: list[str] = field(default_factory=list)
    session_id: str | None = None
    agent_id: str | None = None


@dataclass(slots=True)
class CallRecord:
    """Everything kept about one call. Request and response bodies are never kept."""

    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)
    source: Source = "proxy"
    method: str = "POST"
    endpoint: str = "/v1/messages"
    stream: bool = False
    billable: bool = True
    status_code: int | None = None
    request_id: str | None = None
    message_id: str | None = None
    model_requested: str | None = None
    model: str | None = None
    stop_reason: str | None = None
    complete: bool = True
    error_type: str | None = None
    error_message: str | None = None
    # When the call was handed to the upstream; None for calls the gateway answered
    # itself (refusals). Feeds the added-latency metric; not stored.
    forwarded_at: datetime | None = None
    first_byte_at: datetime | None = None
    ended_at: datetime | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    usage: Usage = field(default_factory=Usage.empty)
    attribution: Attribution = field(default_factory=Attribution)
    user_agent: str | None = None
    note: str | None = None
    # Filled by pricing (spendgate.pricing) before the record is written.
    cost_nanousd: int | None = None
    cache_savings_nanousd: int | None = None
    cost_breakdown: dict[str, Any] | None = None
    pricing_status: PricingStatus = "pending"
    price_book_version: str | None = None

    @property
    def usage_unknown(self) -> str | None:
        """Why what Anthropic billed for this call is not known, or None: it was
        forwarded, then ended by a fault of spendgate's own before any answer, or it was
        answered but its client left before the usage could be read (an answer too long
        to read for nobody, or one that did not come within the wait)."""
        if not self.billable:
            return None
        if self.error_type == GATEWAY_ERROR:
            return (
                "a fault of spendgate's own ended this call after it was forwarded "
                "(error_type gateway_error): its usage, and what Anthropic billed for it, "
                "are not known; see the gateway's log and Anthropic's usage report"
            )
        status = self.status_code
        if (
            self.error_type == CLIENT_GONE
            and status is not None
            and 200 <= status < 300
            and not self.usage.raw
        ):
            return (
                "its client left before the answer's usage could be read (error_type "
                "client_disconnected): what Anthropic billed for it is not known; see "
                "Anthropic's usage report"
            )
        return None

    @property
    def refusal_without_output(self) -> bool:
        """A refusal before any output: Anthropic does not bill it."""
        return self.stop_reason == "refusal" and self.usage.output_tokens == 0

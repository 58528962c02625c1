"""Wire helpers shared by the fake's handlers: JSON bodies and Anthropic errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from spendgate.testing.scenario import Scenario
from spendgate.testing.served import JSON, Exchange, Served


@dataclass(slots=True)
class StoredFile:
    """A file uploaded to the fake Files API."""

    metadata: JSON
    content: bytes


@dataclass(slots=True)
class FakeState:
    """Everything one fake upstream remembers between requests."""

    sink: Callable[[Served], None]
    base_url: str = ""
    organization_id: str = ""
    chunk_delay: float = 0.0
    require_auth: bool = True
    batches: dict[str, JSON] = field(default_factory=dict)
    batch_results: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    # Admin API report buckets by kind ("usage", "cost"), as Anthropic shapes them.
    admin_reports: dict[str, list[JSON]] = field(default_factory=dict)


STATE = web.AppKey("spendgate_fake_state", FakeState)
EXCHANGE = web.RequestKey("spendgate_fake_exchange", Exchange)
SCENARIO = web.RequestKey("spendgate_fake_scenario", Scenario)

DEFAULT_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "The requested resource could not be found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": (
        "This request would exceed the rate limit for your organization of 50 requests per minute."
    ),
    "api_error": "Internal server error",
    "timeout_error": "The request timed out while processing.",
    "overloaded_error": "Overloaded",
}


def dumps(data: Any) -> bytes:
    """Compact JSON, as the API writes it."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer with an exact ``content-length``."""
    return web.Response(
        body=dumps(data), status=status, content_type="application/json", headers=headers
    )


def error_body(error_type: str, message: str | None, request_id: str | None) -> JSON:
    """The ``{"type":"error","error":{...},"request_id":...}`` shape."""
    body: JSON = {
        "type": "error",
        "error": {"type": error_type, "message": message or DEFAULT_MESSAGES.get(error_type, "")},
    }
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error_response(
    request: web.Request,
    status: int,
    error_type: str,
    message: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An Anthropic error answer carrying this request's id."""
    exchange = request.get(EXCHANGE)
    request_id = exchange.request_id if exchange is not None else None
    return json_response(
        error_body(error_type, message, request_id), status=status, headers=headers
    )


def invalid_request(request: web.Request, message: str) -> web.Response:
    """A 400 ``invalid_request_error``."""
    return error_response(request, 400, "invalid_request_error", message)


def not_found(request: web.Request, message: str | None = None) -> web.Response:
    """A 404 ``not_found_error``."""
    return error_response(request, 404, "not_found_error", message)


def json_object(raw: bytes) -> JSON | None:
    """The request body as a JSON object, or None when it is not one."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None

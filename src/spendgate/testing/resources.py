"""The fake's non-inference endpoints: Models, Message Batches and Files.

Batches end the moment they are created (every request succeeds, billed at
the batch tier); files keep their exact uploaded bytes. State lives in the
application's :class:`FakeState`, never in module globals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.parser import BytesHeaderParser

from aiohttp import web

from spendgate.testing.messages import plan_reply, validate_messages_body
from spendgate.testing.scenario import Scenario
from spendgate.testing.served import JSON, new_id
from spendgate.testing.wire import (
    EXCHANGE,
    STATE,
    StoredFile,
    dumps,
    invalid_request,
    json_object,
    json_response,
    not_found,
)

MODELS: tuple[tuple[str, str, str], ...] = (
    ("claude-opus-4-8", "Claude Opus 4.8", "2026-05-28T00:00:00Z"),
    ("claude-opus-4-7", "Claude Opus 4.7", "2026-04-16T00:00:00Z"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17T00:00:00Z"),
    ("claude-opus-4-6", "Claude Opus 4.6", "2026-02-05T00:00:00Z"),
    ("claude-opus-4-5-20251101", "Claude Opus 4.5", "2025-11-24T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    """``2026-01-02T03:04:05Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def model_info(model_id: str, display_name: str, created_at: str) -> JSON:
    """A ``ModelInfo`` object."""
    return {
        "type": "model",
        "id": model_id,
        "display_name": display_name,
        "created_at": created_at,
        "lifecycle": "active",
        "max_input_tokens": 200000,
        "max_tokens": 64000,
    }


class PageError(ValueError):
    """Bad ``limit`` / ``after_id`` / ``before_id`` query parameters."""


def page(items: Sequence[JSON], query: Mapping[str, str]) -> JSON:
    """One page of a newest-first list, in the API's cursor shape.

    ``after_id`` pages forward, ``before_id`` backward; ``has_more`` says
    whether more items lie beyond the page in the direction of travel.
    """
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        raise PageError("limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise PageError("limit: Input should be between 1 and 1000")
    ids = [item["id"] for item in items]
    after, before = query.get("after_id"), query.get("before_id")
    if before is not None:
        if before not in ids:
            raise PageError(f"before_id: unknown id {before!r}")
        end = ids.index(before)
        start = max(0, end - limit)
        has_more = start > 0
    else:
        if after is not None and after not in ids:
            raise PageError(f"after_id: unknown id {after!r}")
        start = ids.index(after) + 1 if after is not None else 0
        end = min(len(ids), start + limit)
        has_more = end < len(ids)
    data = list(items[start:end])
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def _page_response(request: web.Request, items: Sequence[JSON]) -> web.Response:
    try:
        return json_response(page(items, request.query))
    except PageError as exc:
        return invalid_request(request, str(exc))


async def list_models(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models``: the known models, newest first, paginated."""
    return _page_response(request, [model_info(*m) for m in MODELS])


async def get_model(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models/{model_id}``: one ``ModelInfo``, or 404."""
    model_id = request.match_info["model_id"]
    for m in MODELS:
        if m[0] == model_id:
            return json_response(model_info(*m))
    return not_found(request, f"model: {model_id}")


# -- Message Batches -------------------------------------------------------------------


def _batch_requests(body: JSON | None) -> list[tuple[str, JSON]] | str:
    """The ``(custom_id, params)`` pairs of a create-batch body, or why it is invalid."""
    requests = body.get("requests") if body is not None else None
    if not isinstance(requests, list) or not requests:
        return "requests: Field required (a non-empty list)"
    pairs: list[tuple[str, JSON]] = []
    for i, item in enumerate(requests):
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        params = item.get("params") if isinstance(item, dict) else None
        if not isinstance(custom_id, str) or not isinstance(params, dict):
            return f"requests.{i}: custom_id and params are required"
        problem = validate_messages_body(params, needs_max_tokens=True)
        if problem is not None:
            return f"requests.{i}.params.{problem}"
        pairs.append((custom_id, params))
    return pairs


async def create_batch(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages/batches``: a batch that has already ended, all succeeded."""
    state = request.app[STATE]
    pairs = _batch_requests(json_object(request[EXCHANGE].body))
    if isinstance(pairs, str):
        return invalid_request(request, pairs)
    batch_id = new_id("msgbatch_01", 22)
    lines = []
    for custom_id, params in pairs:
        message = plan_reply(params, Scenario(), service_tier="batch").message()
        result = {"type": "succeeded", "message": message}
        lines.append(dumps({"custom_id": custom_id, "result": result}) + b"\n")
    now = _now()
    state.batches[batch_id] = {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": {
            "processing": 0,
            "succeeded": len(pairs),
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "created_at": rfc3339(now),
        "ended_at": rfc3339(now),
        "expires_at": rfc3339(now + timedelta(hours=24)),
        "archived_at": None,
        "cancel_initiated_at": None,
        # Absolute, like the real API's https://api.anthropic.com/... URL: a client
        # following it goes to the upstream itself, not through any gateway.
        "results_url": f"{state.base_url}/v1/messages/batches/{batch_id}/results",
    }
    state.batch_results[batch_id] = b"".join(lines)
    return json_response(state.batches[batch_id])


async def list_batches(request: web.Request) -> web.StreamResponse:
    """``GET /v1/messages/batches``: batches, newest first, paginated."""
    batches = list(reversed(request.app[STATE].batches.values()))
    return _page_response(request, batches)


async def get_batch(request: web.Request) -> web.StreamResponse:
    """``GET /v1/messages/batches/{batch_id}``."""
    batch = request.app[STATE].batches.get(request.match_info["batch_id"])
    return json_response(batch) if batch is not None else not_found(request)


async def cancel_batch(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages/batches/{batch_id}/cancel``: stamps the cancel time; it has ended."""
    batch = request.app[STATE].batches.get(request.match_info["batch_id"])
    if batch is None:
        return not_found(request)
    batch["cancel_initiated_at"] = batch["cancel_initiated_at"] or rfc3339(_now())
    return json_response(batch)


async def delete_batch(request: web.Request) -> web.StreamResponse:
    """``DELETE /v1/messages/batches/{batch_id}``."""
    state = request.app[STATE]
    batch_id = request.match_info["batch_id"]
    if state.batches.pop(batch_id, None) is None:
        return not_found(request)
    state.batch_results.pop(batch_id, None)
    return json_response({"id": batch_id, "type": "message_batch_deleted"})


async def batch_results(request: web.Request) -> web.StreamResponse:
    """``GET /v1/messages/batches/{batch_id}/results``: JSONL, one line per request."""
    results = request.app[STATE].batch_results.get(request.match_info["batch_id"])
    if results is None:
        return not_found(request)
    return web.Response(body=results, content_type="application/binary")


# -- Files -----------------------------------------------------------------------------


def multipart_parts(content_type: str, body: bytes) -> list[tuple[Message, bytes]]:
    """Split a ``multipart/form-data`` body into ``(headers, exact bytes)`` parts."""
    boundary = _boundary(content_type)
    if boundary is None:
        return []
    parts = []
    delimiter = b"--" + boundary.encode()
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        parts.append((headers, content.removesuffix(b"\r\n")))
    return parts


def _boundary(content_type: str) -> str | None:
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    return boundary if isinstance(boundary, str) else None


async def upload_file(request: web.Request) -> web.StreamResponse:
    """``POST /v1/files`` (multipart, field ``file``): stores the exact bytes."""
    for headers, content in multipart_parts(
        request.headers.get("Content-Type", ""), request[EXCHANGE].body
    ):
        if headers.get_param("name", header="content-disposition") != "file":
            continue
        filename = headers.get_filename() or "upload"
        file_id = new_id("file_011", 22)
        metadata: JSON = {
            "id": file_id,
            "type": "file",
            "filename": filename,
            "mime_type": headers.get_content_type(),
            "size_bytes": len(content),
            "created_at": rfc3339(_now()),
            "downloadable": True,
        }
        request.app[STATE].files[file_id] = StoredFile(metadata, content)
        return json_response(metadata)
    return invalid_request(request, "file: Field required (multipart/form-data)")


async def list_files(request: web.Request) -> web.StreamResponse:
    """``GET /v1/files``: file metadata, newest first, paginated."""
    files = [f.metadata for f in reversed(request.app[STATE].files.values())]
    return _page_response(request, files)


async def get_file(request: web.Request) -> web.StreamResponse:
    """``GET /v1/files/{file_id}``: metadata."""
    stored = request.app[STATE].files.get(request.match_info["file_id"])
    return json_response(stored.metadata) if stored is not None else not_found(request)


async def file_content(request: web.Request) -> web.StreamResponse:
    """``GET /v1/files/{file_id}/content``: the exact uploaded bytes."""
    stored = request.app[STATE].files.get(request.match_info["file_id"])
    if stored is None:
        return not_found(request)
    return web.Response(body=stored.content, content_type=stored.metadata["mime_type"])


async def delete_file(request: web.Request) -> web.StreamResponse:
    """``DELETE /v1/files/{file_id}``."""
    file_id = request.match_info["file_id"]
    if request.app[STATE].files.pop(file_id, None) is None:
        return not_found(request)
    return json_response({"id": file_id, "type": "file_deleted"})


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the Models, Batches and Files endpoints."""
    router.add_get("/v1/models", list_models)
    router.add_get("/v1/models/{model_id}", get_model)
    router.add_post("/v1/messages/batches", create_batch)
    router.add_get("/v1/messages/batches", list_batches)
    router.add_get("/v1/messages/batches/{batch_id}", get_batch)
    router.add_delete("/v1/messages/batches/{batch_id}", delete_batch)
    router.add_post("/v1/messages/batches/{batch_id}/cancel", cancel_batch)
    router.add_get("/v1/messages/batches/{batch_id}/results", batch_results)
    router.add_post("/v1/files", upload_file)
    router.add_get("/v1/files", list_files)
    router.add_get("/v1/files/{file_id}", get_file)
    router.add_delete("/v1/files/{file_id}", delete_file)
    router.add_get("/v1/files/{file_id}/content", file_content)

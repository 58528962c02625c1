"""``/api/import``: usage recorded outside the gateway, sent as a file's bytes."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from spendgate.api.analytics import _store
from spendgate.api.errors import ApiError
from spendgate.claude_code import priced_records, read_lines

router = APIRouter(prefix="/api/import", tags=["imports"])

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
_BATCH = 2000


@router.post(
    "/claude-code",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
async def import_claude_code(
    request: Request,
    filename: Annotated[
        str | None, Query(max_length=300, description="The transcript's file name, for messages")
    ] = None,
    user: Annotated[str | None, Query(max_length=200)] = None,
    team: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Import one Claude Code transcript (``~/.claude/projects/*/*.jsonl``) sent as the request
    body. Responses are deduplicated by message id + request id and priced like proxied calls;
    importing the same transcript again adds nothing. Same as ``spendgate import claude-code``.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_UPLOAD_BYTES:
            raise _too_large()
    name = PurePath(filename or "transcript.jsonl").name
    store = _store(request)
    book = request.app.state.gateway.book

    def work() -> dict[str, Any]:
        # Transcripts with no cwd are attributed to this project name.
        entries = read_lines(bytes(body).splitlines(), PurePath("claude-code", name))
        records = priced_records(entries.values(), book, user=user, team=team)
        new = sum(
            store.insert_calls(records[i : i + _BATCH]) for i in range(0, len(records), _BATCH)
        )
        unpriced = sum(1 for r in records if r.pricing_status == "unpriced")
        return {"file": name, "responses": len(records), "new": new, "unpriced": unpriced}

    result = await run_in_threadpool(work)
    if result["responses"] == 0 and body.strip():
        raise ApiError(
            400,
            "not_a_transcript",
            f"{name} has no Claude Code responses with usage; send a file from "
            "~/.claude/projects/<project>/<session>.jsonl",
        )
    return result


def _too_large() -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"a transcript may be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB; split it, or run "
        "`spendgate import claude-code PATH` on the gateway's machine",
    )

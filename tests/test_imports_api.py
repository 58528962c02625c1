"""``POST /api/import/claude-code``: a transcript sent from the dashboard, imported once."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import httpx

from spendgate.testing.gateway import GatewayServer

DATA = Path(__file__).parent / "data" / "claude_code_session.jsonl"


def _client(gateway: GatewayServer) -> httpx.Client:
    client = httpx.Client(base_url=gateway.url)
    csrf = client.get("/api/auth/me").json().get("csrf_token")
    if csrf:
        client.headers["X-CSRF-Token"] = csrf
    client.headers["Origin"] = gateway.url
    return client


def test_import_transcript_is_idempotent(sqlite_gateway: GatewayServer) -> None:
    with closing(_client(sqlite_gateway)) as client:
        params = {"filename": "sess1.jsonl", "user": "ann", "team": "Engineering"}
        first = client.post("/api/import/claude-code", params=params, content=DATA.read_bytes())
        assert first.status_code == 200, first.text
        assert first.json() == {"file": "sess1.jsonl", "responses": 2, "new": 2, "unpriced": 0}
        again = client.post("/api/import/claude-code", params=params, content=DATA.read_bytes())
        assert again.json()["new"] == 0
        calls = client.get("/api/requests", params={"source": "import"}).json()["data"]
        assert {(c["user"], c["team"]) for c in calls} == {("ann", "Engineering")}
        assert all(c["session_id"] == "sess1" for c in calls)


def test_not_a_transcript_says_what_to_send(sqlite_gateway: GatewayServer) -> None:
    with closing(_client(sqlite_gateway)) as client:
        response = client.post("/api/import/claude-code", content=b'{"hello": 1}\n')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_a_transcript"
    assert ".claude/projects" in response.json()["error"]["message"]

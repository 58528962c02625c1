"""Structured logs: one JSON object per line, call lines with request ids, never a secret."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic

from spendgate.logs import redact
from spendgate.testing.process import GatewayProcess
from spendgate.testing.upstream import FakeUpstream

CLIENT_KEY = "sk-ant-api03-LOGS-must-never-show-this-key-0123456789"


def test_redact_masks_credentials_and_url_passwords() -> None:
    text = (
        f"{CLIENT_KEY} sg-AbCdEfGhIjKlMnOpQrStUvWxYz0123 sgt_AbCdEfGhIjKlMnOpQrSt "
        "postgresql://spendgate:hunter2hunter2@db:5432/spendgate claude-sonnet-4-6 sg-ab"
    )
    assert redact(text) == (
        "sk-ant-api03-*** sg-*** sgt_*** postgresql://spendgate:***@db:5432/spendgate "
        "claude-sonnet-4-6 sg-ab"
    )


def test_call_log_lines_carry_ids_and_no_secret(tmp_path: Path, upstream: FakeUpstream) -> None:
    db = f"sqlite:///{tmp_path / 'sg.db'}"
    gateway = GatewayProcess(
        tmp_path / "home", database_url=db, upstream_url=upstream.url, call_log=True
    )
    with gateway:
        client = anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)
        message = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    text = gateway.log()
    assert CLIENT_KEY not in text and CLIENT_KEY[14:] not in text
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    (call,) = [e for e in entries if e["logger"] == "spendgate.calls"]
    assert call["request_id"] == upstream.served[-1].request_id
    assert call["message_id"] == message.id
    assert call["call_id"] and call["status"] == 200 and call["cost_nanousd"] > 0
    assert call["credential"].startswith("fp_")

"""Importing Claude Code transcripts: dedupe, attribution, idempotence."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from spendgate.claude_code import read_entries, transcript_files
from spendgate.cli.main import cli
from spendgate.storage import CallFilter, Store
from spendgate.storage.analytics import Analytics

DATA = Path(__file__).parent / "data" / "claude_code_session.jsonl"


def test_dedupe_keeps_the_final_main_thread_line(tmp_path: Path) -> None:
    target = tmp_path / "-home-u-app" / "sess1.jsonl"
    target.parent.mkdir()
    shutil.copy(DATA, target)
    entries = read_entries(transcript_files([tmp_path]))
    assert sorted(k[0] for k in entries) == ["msg_1", "msg_2"]
    assert entries[("msg_1", "req_1")].usage["output_tokens"] == 250
    assert entries[("msg_2", "req_2")].usage["output_tokens"] == 100  # not the sidechain 999


def test_import_is_idempotent_and_attributed(store: Store, db_url: str, tmp_path: Path) -> None:
    shutil.copy(DATA, tmp_path / "s.jsonl")
    runner = CliRunner()
    args = ["import", "claude-code", str(tmp_path), "--user", "ann", "--database-url", db_url]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0 and "2 new" in first.output, first.output
    again = runner.invoke(cli, args)
    assert "0 new" in again.output
    sessions = Analytics(store).sessions(CallFilter())
    assert sessions[0]["session_id"] == "sess1" and sessions[0]["project"] == "app"
    assert sessions[0]["output_tokens"] == 350 and sessions[0]["user"] == "ann"
    calls = store.list_calls(CallFilter(source="import")).data
    assert all(c["pricing_status"] == "priced" for c in calls)

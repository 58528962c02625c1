"""Data lifecycle: retention of raw calls (rollups kept), ``db stats`` and ``db vacuum``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from spendgate.cli.main import cli
from spendgate.records import CallRecord
from spendgate.retention import apply_retention
from spendgate.storage import CallFilter, Store
from spendgate.storage.maintenance import database_stats
from spendgate.storage.rollups_schema import rollup_hourly
from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.usage import Usage

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _calls(store: Store, ages_in_days: list[float]) -> None:
    store.insert_calls(
        [
            CallRecord(
                created_at=NOW - timedelta(days=age),
                status_code=200,
                model="claude-sonnet-4-6",
                usage=Usage(input_tokens=10, output_tokens=5),
                cost_nanousd=1000,
                pricing_status="priced",
            )
            for age in ages_in_days
        ]
    )


def _rollup_calls(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.sum(rollup_hourly.c.calls))).scalar() or 0)


def test_retention_deletes_old_raw_calls_and_keeps_rollups(store: Store) -> None:
    _calls(store, [400, 95, 31, 29.5, 2, 0])
    before = _rollup_calls(store)
    assert before == 6

    assert apply_retention(store, 30, now=NOW) == 3
    assert apply_retention(store, 30, now=NOW) == 0  # idempotent
    assert apply_retention(store, 0, now=NOW) == 0  # 0 keeps everything
    left = list(store.iter_call_rows(CallFilter()))
    assert sorted(round((NOW - r["created_at"]).total_seconds() / 86400, 1) for r in left) == [
        0.0,
        2.0,
        29.5,
    ]
    assert _rollup_calls(store) == before  # reports still show the pruned calls

    stats = database_stats(store)
    assert stats.rows["calls"] == 3
    assert stats.oldest_call is not None and stats.oldest_call == NOW - timedelta(days=29.5)
    assert stats.rollups_from is not None and stats.rollups_from <= NOW - timedelta(days=400)
    assert stats.size_bytes is not None and stats.size_bytes > 0


def test_the_gateway_applies_retention_periodically(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sg.db'}"
    store = Store.open(url)
    now = datetime.now(UTC)
    store.insert_calls(
        [CallRecord(created_at=now - timedelta(days=d), status_code=200) for d in (10, 0)]
    )
    settings = gateway_settings(
        tmp_path, "http://127.0.0.1:9", url, retention_days=7, retention_interval=0.1
    )
    with GatewayServer(settings):
        for _ in range(100):
            if store.count_calls(CallFilter()) == 1:
                break
            time.sleep(0.05)
    assert store.count_calls(CallFilter()) == 1
    store.close()


def test_db_stats_and_vacuum_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sg.db'}"
    store = Store.open(url)
    _calls(store, [3, 1])
    store.close()
    runner = CliRunner()
    stats = runner.invoke(cli, ["db", "stats", "--json", "--database-url", url])
    assert stats.exit_code == 0, stats.output
    doc = json.loads(stats.output)
    assert doc["rows"]["calls"] == 2 and doc["dialect"] == "sqlite"
    assert doc["calls"]["oldest"].startswith("2026-05-29")
    text = runner.invoke(cli, ["db", "stats", "--database-url", url])
    assert text.exit_code == 0 and "raw calls" in text.output and "calls" in text.output
    vacuumed = runner.invoke(cli, ["db", "vacuum", "--database-url", url])
    assert vacuumed.exit_code == 0, vacuumed.output
    assert vacuumed.output.startswith("vacuumed:")

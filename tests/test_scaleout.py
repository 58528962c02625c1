"""Two gateway processes on one PostgreSQL behave as one gateway, even when a writer is cut.

Both start at once on an empty database (migrations race for the advisory
lock), take mixed streaming and non-streaming load through the official SDK,
and one of them has every database connection killed again and again
(``pg_terminate_backend`` by ``application_name``) while it writes. Its
writer spools what it could not write and replays it; afterwards the ledger
must equal exactly what the fake upstream served, and the two ``/metrics``
pages, added up, must equal the ledger.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from spendgate.storage import CallFilter, Store
from spendgate.testing.process import GatewayProcess
from spendgate.testing.prometheus import Sample, scrape, total
from spendgate.testing.upstream import FakeUpstream

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CALLS = 400
SECRET_KEY = "scale-out-test-master-key"
UPSTREAM_KEY = "sk-ant-api03-scaleout-upstream"
TEAMS = ("platform", "research", "support")
TOKEN_COLUMNS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_input_tokens",
    "cache_write_5m": "cache_creation_5m_input_tokens",
    "cache_write_1h": "cache_creation_1h_input_tokens",
}


def _with_app_name(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


def _issue_keys(url: str) -> list[str]:
    secrets = []
    for name in TEAMS:
        team = httpx.post(f"{url}/api/teams", json={"name": name}, timeout=10)
        assert team.status_code == 201, team.text
        body = {"label": name, "team": name, "upstream_key": UPSTREAM_KEY}
        key = httpx.post(f"{url}/api/keys", json=body, timeout=10)
        assert key.status_code == 201, key.text
        secrets.append(key.json()["key"])
    return secrets


class BackendKiller(threading.Thread):
    """Terminates every connection one gateway holds, every ``period`` seconds."""

    def __init__(self, pg_url: str, app_name: str, period: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(
            pg_url.replace("postgresql://", "postgresql+psycopg://", 1),
            isolation_level="AUTOCOMMIT",
        )
        self.app_name = app_name
        self.period = period
        self.killed = 0
        self.done = threading.Event()

    def run(self) -> None:
        query = text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = :name AND datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        while not self.done.wait(self.period):
            try:
                with self.engine.connect() as conn:
                    self.killed += int(conn.execute(query, {"name": self.app_name}).scalar() or 0)
            except OperationalError:
                continue  # the database is being dropped or restarted under us
        self.engine.dispose()


def _call(client: anthropic.Anthropic, i: int) -> str:
    body: dict[str, Any] = {
        "model": ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6")[i % 3],
        "max_tokens": 64,
        "messages": [{"role": "user", "content": f"call {i} " + "words " * (i % 17)}],
    }
    if i % 2:
        with client.messages.stream(**body) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(**body)
    return message.id


def _wait_for_ledger(pg_url: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    store = Store.open(pg_url, upgrade=False)
    try:
        deadline = time.monotonic() + timeout
        while True:
            rows = list(store.iter_call_rows(CallFilter()))
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.25)
    finally:
        store.close()


def _sum(samples: list[list[Sample]], name: str, **labels: str) -> float:
    return sum(total(s, name, **labels) for s in samples)


def test_two_processes_one_postgres_ledger_is_exact_with_a_writer_killed(
    pg_url: str, tmp_path: Path, upstream: FakeUpstream
) -> None:
    common: dict[str, Any] = {
        "upstream_url": upstream.url,
        "secret_key": SECRET_KEY,
        "flush_interval": 0.02,
        "key_cache_ttl": 60,
    }
    a = GatewayProcess(tmp_path / "a", database_url=_with_app_name(pg_url, "sg-a"), **common)
    b = GatewayProcess(tmp_path / "b", database_url=_with_app_name(pg_url, "sg-b"), **common)
    for gateway in (a, b):  # at the same time: both migrate an empty database
        gateway.start()
    try:
        for gateway in (a, b):
            gateway.wait_ready()
        keys = _issue_keys(a.url)
        # One SDK client per gateway and key; each call goes to gateway i % 2.
        clients = [
            [
                anthropic.Anthropic(base_url=g.url, api_key=key, max_retries=0, timeout=60)
                for key in keys
            ]
            for g in (a, b)
        ]
        # Warm each process's key cache, so the kills below hit the writer, not key lookups.
        warm = [_call(client, i) for i, client in enumerate(clients[0] + clients[1])]
        killer = BackendKiller(pg_url, "sg-a")
        killer.start()
        with ThreadPoolExecutor(16) as pool:
            message_ids = list(
                pool.map(lambda i: _call(clients[i % 2][i % len(keys)], i), range(CALLS))
            )
        killer.done.set()
        killer.join()
        rows = _wait_for_ledger(pg_url, CALLS + len(warm))
        samples = [scrape(a.url), scrape(b.url)]
    finally:
        codes = [gateway.stop() for gateway in (a, b)]
    assert codes == [0, 0], a.log() + b.log()
    after_stop = len(_wait_for_ledger(pg_url, 0))

    # The writer of A really was cut, and really spooled and replayed.
    assert killer.killed > 0
    assert "spooling records" in a.log() and "replaying the spool" in a.log()

    served = {s.request_id: s for s in upstream.served}
    assert len(served) == CALLS + len(warm) and len(set(message_ids)) == CALLS
    ledger_ids = [r["request_id"] for r in rows]
    duplicates = [rid for rid, n in Counter(ledger_ids).items() if n > 1]
    assert duplicates == []
    assert set(ledger_ids) - set(served) == set()  # nothing the upstream did not serve
    missing = set(served) - set(ledger_ids)
    by_gateway = Counter(
        "a" if message_ids.index(served[rid].message_id) % 2 == 0 else "b"
        for rid in missing
        if served[rid].message_id in message_ids
    )
    spooled = sorted(p.name for g in (a, b) for p in (g.home / "spool").glob("*"))
    assert missing == set(), (
        f"{len(missing)} missing, by gateway {by_gateway}, spool {spooled}, "
        f"ledger {len(rows)} before stop, {after_stop} after"
    )
    for row in rows:
        s = served[row["request_id"]]
        assert row["message_id"] == s.message_id
        assert row["stream"] == s.stream
        assert s.usage is not None
        assert row["input_tokens"] == s.usage["input_tokens"]
        assert row["output_tokens"] == s.usage["output_tokens"]
        assert row["complete"] is True and row["status_code"] == 200

    # /metrics of both processes, added up, equal the ledger.
    assert _sum(samples, "spendgate_calls_total") == len(rows)
    for label, column in TOKEN_COLUMNS.items():
        assert _sum(samples, "spendgate_tokens_total", **{"class": label}) == sum(
            r[column] for r in rows
        )
    for team in TEAMS:
        team_cost = sum(Decimal(r["cost_nanousd"]) for r in rows if r["team"] == team) / 10**9
        assert team_cost > 0
        assert _sum(samples, "spendgate_cost_usd_total", team=team) == pytest.approx(
            float(team_cost), rel=1e-9
        )
    assert _sum(samples, "spendgate_lost_records_total") == 0
    assert _sum(samples, "spendgate_spooled_records") == 0
    assert _sum(samples, "spendgate_calls_total", status="200") == len(served)

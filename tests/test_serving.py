"""``spendgate serve`` as a process: start-up sequence, refusals, workers, graceful shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from spendgate.keys import create_key
from spendgate.settings import Settings
from spendgate.storage import CallFilter, Store
from spendgate.storage.budgets import BudgetStore
from spendgate.storage.keys import KeyStore
from spendgate.storage.migrate import current_revisions, head_revisions
from spendgate.testing.process import SPENDGATE, GatewayProcess, run_cli, spendgate_env
from spendgate.testing.prometheus import scrape, total
from spendgate.testing.upstream import FakeUpstream
from spendgate.vault import SecretBox

CLIENT_KEY = "sk-ant-api03-serving-test-key"
BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 32,
    "messages": [{"role": "user", "content": "hello"}],
}


def _client(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=CLIENT_KEY, max_retries=0)


def _ledger(url: str) -> list[dict[str, Any]]:
    store = Store.open(url)
    try:
        return list(store.iter_call_rows(CallFilter()))
    finally:
        store.close()


def test_startup_sequence_migrate_serve_health(tmp_path: Path, upstream: FakeUpstream) -> None:
    """What the container does: `db upgrade`, then `serve`, then the probes answer."""
    db = f"sqlite:///{tmp_path / 'sg.db'}"
    env = spendgate_env(tmp_path / "home", database_url=db)
    migrated = run_cli(["db", "upgrade"], env)
    assert migrated.returncode == 0, migrated.stderr
    with GatewayProcess(tmp_path / "home", database_url=db, upstream_url=upstream.url) as gw:
        assert httpx.get(f"{gw.url}/livez").json() == {"status": "alive"}
        ready = httpx.get(f"{gw.url}/readyz").json()
        assert ready["status"] == "ready" and set(ready["checks"].values()) == {"ok"}
        assert httpx.get(f"{gw.url}/health").json()["status"] == "ok"
        _client(gw.url).messages.create(**BODY)
    assert gw.proc is not None and gw.proc.returncode == 0
    assert len(_ledger(db)) == 1


def test_public_bind_without_accounts_is_refused(tmp_path: Path) -> None:
    env = spendgate_env(tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'sg.db'}")
    result = run_cli(["serve", "--host", "0.0.0.0", "--port", "0"], env)
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert "refusing to bind 0.0.0.0" in message
    assert "spendgate users create" in message  # says how to fix it


def test_encrypted_credentials_without_the_master_key_are_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'sg.db'}"
    first = Settings(_env_file=None, home=tmp_path / "host-a", database_url=db)
    store = Store.open(db)
    create_key(
        KeyStore(store.engine),
        label="ci",
        upstream_key=CLIENT_KEY,
        box=SecretBox.from_settings(first),
    )
    store.close()

    # A second host with neither the key file nor SPENDGATE_SECRET_KEY.
    env = spendgate_env(tmp_path / "host-b", database_url=db)
    result = run_cli(["serve", "--port", "0"], env)
    message = " ".join(result.stderr.split())
    assert result.returncode != 0
    assert "SPENDGATE_SECRET_KEY is not set" in message and "same value on every replica" in message
    assert not (tmp_path / "host-b" / "secret.key").exists()  # no new key silently made

    # ... or with the wrong key.
    env["SPENDGATE_SECRET_KEY"] = "not-the-key-that-encrypted-them"
    result = run_cli(["serve", "--port", "0"], env)
    assert result.returncode != 0
    assert "does not decrypt" in " ".join(result.stderr.split())


def _workers(pid: int) -> list[int]:
    """Worker processes of a supervisor (not multiprocessing's resource tracker)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
                out.append(int(entry.name))
    return out


def test_two_workers_share_the_port_and_the_metrics(tmp_path: Path, upstream: FakeUpstream) -> None:
    db = f"sqlite:///{tmp_path / 'sg.db'}"
    with GatewayProcess(
        tmp_path / "home", args=("--workers", "2"), database_url=db, upstream_url=upstream.url
    ) as gw:
        assert gw.proc is not None
        workers = _workers(gw.proc.pid)
        assert len(workers) == 2, gw.log()
        client = _client(gw.url)

        def call(i: int) -> None:
            if i % 2:
                client.messages.create(**BODY)
            else:
                with client.messages.stream(**BODY) as stream:
                    stream.until_done()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(call, range(40)))
        for _ in range(100):  # the workers write within a flush interval
            if len(_ledger(db)) == 40:
                break
            time.sleep(0.05)
        samples = scrape(gw.url)
        # A worker killed outright is replaced, and its counters still count.
        os.kill(workers[0], signal.SIGKILL)
        for _ in range(200):
            alive = _workers(gw.proc.pid)
            if len(alive) == 2 and workers[0] not in alive:
                break
            time.sleep(0.05)
        assert workers[0] not in alive and len(alive) == 2, gw.log()
        gw.wait_ready()
        after = scrape(gw.url)
    assert gw.proc.returncode == 0, gw.log()
    assert "died (exit -9); replacing it" in gw.log()
    assert total(after, "spendgate_calls_total") == total(samples, "spendgate_calls_total")
    rows = _ledger(db)
    assert sorted(r["request_id"] for r in rows) == sorted(s.request_id for s in upstream.served)
    # Whichever worker answers the scrape adds up every worker's counters.
    assert total(samples, "spendgate_calls_total") == 40
    assert total(samples, "spendgate_tokens_total", **{"class": "output"}) == sum(
        r["output_tokens"] for r in rows
    )


def _stream_in_background(url: str, result: dict[str, Any], started: threading.Event) -> None:
    try:
        with _client(url).messages.stream(**BODY, extra_headers={"x-fake-delay": "0.3"}) as stream:
            for _event in stream:
                started.set()
            result["message"] = stream.get_final_message()
    except Exception as exc:
        result["error"] = exc
    finally:
        started.set()


@pytest.mark.parametrize("deadline", [10, 1])
def test_graceful_shutdown_with_a_stream_in_flight(
    tmp_path: Path, upstream: FakeUpstream, deadline: int
) -> None:
    """SIGTERM: no new connections, the stream finishes (or is cut at the deadline), recorded."""
    db = f"sqlite:///{tmp_path / 'sg.db'}"
    gw = GatewayProcess(
        tmp_path / "home", database_url=db, upstream_url=upstream.url, shutdown_timeout=deadline
    )
    with gw:
        result: dict[str, Any] = {}
        started = threading.Event()
        worker = threading.Thread(target=_stream_in_background, args=(gw.url, result, started))
        worker.start()
        assert started.wait(10)
        began = time.monotonic()
        gw.signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{gw.url}/livez", timeout=2)  # the listening socket is closed
        worker.join(30)
        assert gw.proc is not None
        assert gw.proc.wait(30) == 0, gw.log()
        took = time.monotonic() - began
    rows = _ledger(db)
    assert len(rows) == 1
    if deadline == 10:  # 5 events x 0.3 s fit in the deadline
        assert "error" not in result, result
        assert rows[0]["complete"] is True
        assert rows[0]["output_tokens"] == result["message"].usage.output_tokens
    else:  # cut at the deadline, still recorded, as incomplete
        assert "error" in result
        assert rows[0]["complete"] is False
        assert took < 10
    assert "shutting down: 1 call(s) in flight" in gw.log()


def test_migrations_are_safe_when_replicas_start_together(pg_url: str, tmp_path: Path) -> None:
    env = spendgate_env(tmp_path / "home", database_url=pg_url)
    procs = [
        subprocess.Popen(
            [*SPENDGATE, "db", "upgrade"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    store = Store.open(pg_url, upgrade=False)
    assert set(current_revisions(store.engine)) == set(head_revisions())
    store.close()


def test_a_budgeted_stream_cut_at_the_deadline_is_charged_to_its_budget(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """SIGTERM with a leased, budgeted stream in flight past the deadline: the budget's
    counters end exact (what the recorded call cost is spent, nothing stays reserved)."""
    db = f"sqlite:///{tmp_path / 'sg.db'}"
    gw = GatewayProcess(
        tmp_path / "home", database_url=db, upstream_url=upstream.url, shutdown_timeout=1
    )
    with gw:
        made = httpx.post(
            f"{gw.url}/api/keys", json={"label": "cut", "upstream_key": CLIENT_KEY}, timeout=10
        )
        assert made.status_code == 201, made.text
        key = made.json()
        budget = httpx.post(
            f"{gw.url}/api/budgets",
            json={"scope": "key", "value": key["id"], "limit_usd": "1000", "period": "monthly"},
            timeout=10,
        )
        assert budget.status_code == 201, budget.text
        result: dict[str, Any] = {}
        started = threading.Event()

        def stream() -> None:
            try:
                client = anthropic.Anthropic(base_url=gw.url, api_key=key["key"], max_retries=0)
                with client.messages.stream(
                    **BODY, extra_headers={"x-fake-delay": "0.5"}
                ) as events:
                    for _event in events:
                        started.set()
            except Exception as exc:
                result["error"] = exc
            finally:
                started.set()

        worker = threading.Thread(target=stream)
        worker.start()
        assert started.wait(10)
        gw.signal(signal.SIGTERM)
        worker.join(30)
        assert gw.proc is not None
        assert gw.proc.wait(30) == 0, gw.log()
    assert "error" in result  # cut at the deadline
    rows = _ledger(db)
    assert len(rows) == 1 and rows[0]["complete"] is False
    cost = rows[0]["cost_nanousd"]
    assert cost is not None and cost > 0
    store = Store.open(db)
    try:
        usage = BudgetStore(store.engine).usage(
            budget.json()["id"], datetime.now(UTC).strftime("%Y-%m")
        )
    finally:
        store.close()
    assert usage.reserved_nanousd == 0, gw.log()
    assert usage.spent_nanousd == cost, gw.log()
    assert usage.calls == 1

"""Alerts: rules over real spend, fired once per period by any number of gateways, delivered
to a real local webhook receiver, a Slack-compatible one and a real SMTP server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anthropic
import httpx
import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from cryptography.fernet import Fernet

from spendgate.alerts.monitor import AlertConfig, AlertMonitor
from spendgate.alerts.rules import Rules, ordinal
from spendgate.cli.main import cli
from spendgate.records import Attribution, CallRecord
from spendgate.storage import Store
from spendgate.storage.alerts import AlertStore
from spendgate.storage.budgets import BudgetStore
from spendgate.testing.gateway import GatewayServer, free_port, gateway_settings
from spendgate.testing.upstream import FakeUpstream
from spendgate.vault import SecretBox

USD = 1_000_000_000
NOW = datetime(2026, 11, 12, 10, 0, tzinfo=UTC)
SLACK_TOKEN = "T000/B000/XXXXslacktokenXXXX"
SIGNING_SECRET = "whsec-alert-test-signing-secret"
SMTP_PASSWORD = "smtp-password-do-not-leak"


# -- real receivers ----------------------------------------------------------------


@dataclass
class Receiver:
    """A real HTTP server on loopback that records every POST; can be told to fail."""

    failures: int = 0  # answer 500 to this many requests first
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(body) for p, _, body in self.received if p == path]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"receiver down")
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append((self.path, headers, body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a loopback port."""
    found = Receiver()
    found.start()
    yield found
    assert found.server is not None
    found.server.shutdown()


class Mailbox:
    """An aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on a loopback port and the mailbox it delivers into."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


# -- spend to alert on -----------------------------------------------------------------


def _spend(store: Store, at: datetime, usd: float, team: str = "Engineering") -> None:
    store.insert_calls(
        [
            CallRecord(
                created_at=at,
                model="claude-sonnet-4-6",
                status_code=200,
                cost_nanousd=round(usd * USD),
                pricing_status="priced",
                attribution=Attribution(team=team),
            )
        ]
    )


def _week_of_spend(store: Store) -> None:
    """$10 a day for Engineering on Nov 5-11 (the 7 complete days before NOW)."""
    for days_ago in range(1, 8):
        _spend(store, NOW - timedelta(days=days_ago), 10)


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


BOX = SecretBox(Fernet.generate_key())


def _monitor(store: Store, clock: Clock | None = None, **config: Any) -> AlertMonitor:
    settings = AlertConfig(interval=0.05, rules=Rules(zone=ZoneInfo("UTC")), backoff=1.0)
    return AlertMonitor(
        store, AlertStore(store.engine, BOX), replace(settings, **config), now=clock or Clock(NOW)
    )


def _budget(store: Store, limit_usd: int = 100) -> Any:
    return BudgetStore(store.engine).create_budget(
        scope="team",
        scope_value="Engineering",
        period="monthly",
        limit_nanousd=limit_usd * USD,
        name="Engineering",
    )


# -- the rules, fired once ----------------------------------------------------------------


def test_thresholds_forecast_and_spikes_fire_once_per_period(store: Store) -> None:
    _week_of_spend(store)
    budget = _budget(store)
    monitor = _monitor(store)
    first = monitor.fire_due()
    assert sorted(a.kind for a in first) == ["budget_forecast", "budget_threshold"]
    threshold = next(a for a in first if a.kind == "budget_threshold")
    assert threshold.details["threshold_percent"] == 50  # $70 of $100: 50 % reached, not 80
    assert threshold.message.startswith("Budget 'Engineering' at 50%: $70.00 spent of $100.00")
    assert threshold.dedupe_key == f"threshold:{budget.id}:2026-11:50"
    forecast = next(a for a in first if a.kind == "budget_forecast")
    # $30 left at $10 a day: gone 3 days from now, long before December.
    assert forecast.message.startswith("At this rate budget 'Engineering' runs out on the 15th")
    assert forecast.details["runs_out_on"] == "2026-11-15"
    assert forecast.details["daily_rate_usd"] == "10.000000000"
    assert "mean daily spend of the last 7 complete days" in forecast.details["method"]
    assert monitor.fire_due() == []  # evaluated again: nothing new
    _spend(store, NOW - timedelta(hours=1), 35)  # today: 3.5x the daily average
    second = monitor.fire_due()
    assert sorted((a.kind, a.subject) for a in second) == [
        ("budget_threshold", f"budget:{budget.id}"),
        ("spend_spike", "global"),
        ("spend_spike", "team:Engineering"),
    ]
    exhausted = next(a for a in second if a.kind == "budget_threshold")
    assert exhausted.details["threshold_percent"] == 100
    assert "exhausted: $105.00 spent of $100.00" in exhausted.message
    assert "until it resets on 2026-12-01" in exhausted.message
    spike = next(a for a in second if a.subject == "team:Engineering")
    assert spike.message == (
        "Spend spike for team Engineering: $35.00 today (2026-11-12), 3.5x the average of "
        "$10.00 a day over the last 7 days"
    )
    assert monitor.fire_due() == []
    history = monitor.alerts.history()
    assert len(history) == 5
    assert all(deliveries == [] for _, deliveries in history)  # no channel configured


def test_small_or_new_spend_is_no_spike(store: Store) -> None:
    for days_ago in range(1, 8):
        _spend(store, NOW - timedelta(days=days_ago), 100, team="Big")
        _spend(store, NOW - timedelta(days=days_ago), 0.1, team="Tiny")
    _spend(store, NOW - timedelta(hours=1), 50, team="New")  # no history: no average
    _spend(store, NOW - timedelta(hours=1), 0.9, team="Tiny")  # 9x, but under $1
    assert _monitor(store).fire_due() == []
    assert _monitor(store, rules=Rules(zone=ZoneInfo("UTC"), spike_min_nanousd=0)).fire_due()


def test_two_gateways_evaluating_at_once_fire_each_alert_once(db_url: str) -> None:
    stores = [Store.open(db_url) for _ in range(2)]
    try:
        _week_of_spend(stores[0])
        _spend(stores[0], NOW - timedelta(hours=1), 35)
        _budget(stores[0])
        monitors = [_monitor(s) for s in stores]
        fired: list[Any] = []
        threads = [
            threading.Thread(target=lambda m=m: fired.extend(m.fire_due()))
            for m in monitors
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a.kind for a in fired) == ["budget_threshold", "spend_spike", "spend_spike"]
        assert len(monitors[1].alerts.history()) == 3
    finally:
        for s in stores:
            s.close()


def test_ordinals() -> None:
    assert [ordinal(d) for d in (1, 2, 3, 4, 11, 12, 13, 19, 21, 22, 23, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "19th", "21st", "22nd", "23rd", "31st",
    ]  # fmt: skip


# -- delivery ---------------------------------------------------------------------------


def _channels(alerts: AlertStore, receiver: Receiver, smtp_port: int, **email: Any) -> None:
    alerts.create_channel(
        name="hook", kind="webhook", url=f"{receiver.url}/hook", signing_secret=SIGNING_SECRET
    )
    alerts.create_channel(name="slack", kind="slack", url=f"{receiver.url}/services/{SLACK_TOKEN}")
    alerts.create_channel(
        name="mail",
        kind="email",
        email={
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "sender": "spendgate@example.com",
            "recipients": ["finops@example.com", "cto@example.com"],
            **email,
        },
        password=SMTP_PASSWORD,
    )


async def test_webhook_slack_and_email_receive_each_alert_once(
    store: Store, receiver: Receiver, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    monitor = _monitor(store)
    _channels(monitor.alerts, receiver, port)
    _week_of_spend(store)
    _budget(store)
    fired = await monitor.run_once()
    assert len(fired) == 2
    await monitor.run_once()  # nothing new, nothing due
    hooks = receiver.bodies("/hook")
    assert sorted(h["alert"]["kind"] for h in hooks) == ["budget_forecast", "budget_threshold"]
    assert all(h["type"] == "spendgate.alert" for h in hooks)
    for path, headers, body in receiver.received:
        if path == "/hook":
            expected = hmac.new(SIGNING_SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers["x-spendgate-signature"] == f"sha256={expected}"
    slack = receiver.bodies(f"/services/{SLACK_TOKEN}")
    assert sorted(s["text"].split(" ")[1] for s in slack) == ["At", "Budget"]
    assert all(set(s) == {"text"} for s in slack)
    assert len(mailbox.messages) == 2
    subjects = sorted(m["Subject"] for m in mailbox.messages)
    assert subjects[1] == "[spendgate] Budget 'Engineering' at 50%"
    assert mailbox.messages[0]["To"] == "finops@example.com, cto@example.com"
    history = monitor.alerts.history()
    assert {d.status for _, ds in history for d in ds} == {"sent"}
    assert sum(len(ds) for _, ds in history) == 6


async def test_failed_deliveries_are_retried_with_backoff_then_given_up(
    store: Store, receiver: Receiver
) -> None:
    clock = Clock(NOW)
    monitor = _monitor(store, clock, backoff=10.0, max_attempts=3)
    monitor.alerts.create_channel(name="flaky", kind="webhook", url=f"{receiver.url}/hook")
    monitor.alerts.create_channel(
        name="dead", kind="webhook", url=f"http://127.0.0.1:{free_port()}/nobody-listens"
    )
    receiver.failures = 1
    _week_of_spend(store)
    _budget(store, limit_usd=60)  # $70 of $60: exhausted, no forecast
    assert len(await monitor.run_once()) == 1

    def deliveries() -> dict[str, Any]:
        ((_, found),) = monitor.alerts.history()
        return {d.channel_name: d for d in found}

    first = deliveries()
    assert (first["flaky"].status, first["flaky"].attempts) == ("pending", 1)
    assert "HTTP 500" in (first["flaky"].last_error or "")
    assert first["dead"].last_error and "ClientConnectorError" in first["dead"].last_error
    assert first["flaky"].next_attempt_at == NOW + timedelta(seconds=10)
    clock.advance(9)
    assert await monitor.deliver_due() == 0  # not due yet
    clock.advance(1)
    assert await monitor.deliver_due() == 2
    second = deliveries()
    assert (second["flaky"].status, second["flaky"].attempts) == ("sent", 2)
    assert second["dead"].next_attempt_at == clock.at + timedelta(seconds=20)  # doubled
    clock.advance(20)
    await monitor.deliver_due()
    third = deliveries()["dead"]
    assert (third.status, third.attempts) == ("failed", 3)
    assert third.last_error and third.last_error.startswith("attempt 3: ")
    assert len(receiver.bodies("/hook")) == 1


def test_secrets_are_encrypted_at_rest(tmp_path: Path, receiver: Receiver) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'alerts.db'}")
    alerts = AlertStore(store.engine, BOX)
    _channels(alerts, receiver, 25)
    listed = json.dumps([c.to_api() for c in alerts.list_channels()])
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("alerts.db*"))
    for secret in (SLACK_TOKEN, SIGNING_SECRET, SMTP_PASSWORD):
        assert secret.encode() not in stored
        assert secret not in listed
    assert "http://127.0.0.1" in listed and "finops@example.com" in listed


# -- in the gateway ------------------------------------------------------------------------


def _wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _call_through(url: str, key: str) -> None:
    client = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
    usage = {"input_tokens": 1, "output_tokens": 10_000}  # $0.150015 on Sonnet 4.6
    client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=10_000,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-fake-usage": json.dumps(usage)},
    )


@pytest.mark.postgres
def test_two_gateways_on_postgres_deliver_each_alert_once(
    tmp_path: Path, upstream: FakeUpstream, pg_url: str, receiver: Receiver
) -> None:
    settings = [
        gateway_settings(
            tmp_path / name,
            upstream.url,
            pg_url,
            secret_key="shared-master-key",
            alert_interval=0.1,
            alert_retry_backoff=0.1,
        )
        for name in ("a", "b")
    ]
    with GatewayServer(settings[0]) as first, GatewayServer(settings[1]) as second:
        made = httpx.post(
            f"{first.url}/api/alerts/channels",
            json={"name": "hook", "kind": "webhook", "url": f"{receiver.url}/hook?token=s3cret"},
        )
        assert made.status_code == 201, made.text
        assert "s3cret" not in made.text and made.json()["target"].startswith("http://127.0.0.1")
        key = httpx.post(
            f"{first.url}/api/keys", json={"label": "a", "upstream_key": "sk-ant-api03-x"}
        ).json()
        budget = httpx.post(
            f"{second.url}/api/budgets",
            json={
                "scope": "key",
                "value": key["id"],
                "limit_usd": "0.32",
                "name": "pilot",
                "thresholds": [40, 80],
            },
        ).json()
        _call_through(first.url, key["key"])  # $0.15 of $0.32: 47 %
        _wait_for(lambda: len(receiver.bodies("/hook?token=s3cret")) >= 1)
        _call_through(second.url, key["key"])  # $0.30: 94 %
        _wait_for(lambda: len(receiver.bodies("/hook?token=s3cret")) >= 2)
        time.sleep(0.6)  # several more rounds on both gateways
        hooks = receiver.bodies("/hook?token=s3cret")
        assert [h["alert"]["details"]["threshold_percent"] for h in hooks] == [40, 80]
        assert hooks[0]["alert"]["details"]["budget_id"] == budget["id"]
        history = httpx.get(f"{second.url}/api/alerts").json()
        assert [a["details"]["threshold_percent"] for a in history] == [80, 40]
        assert [d["status"] for a in history for d in a["deliveries"]] == ["sent", "sent"]
        listed = httpx.get(f"{second.url}/api/alerts/channels").text
        assert "s3cret" not in listed


def test_api_channels_test_and_evaluate(sqlite_gateway: GatewayServer, receiver: Receiver) -> None:
    url = sqlite_gateway.url
    bad = httpx.post(f"{url}/api/alerts/channels", json={"name": "x", "kind": "slack"})
    assert bad.status_code == 400 and "URL" in bad.json()["error"]["message"]
    made = httpx.post(
        f"{url}/api/alerts/channels",
        json={"name": "slack", "kind": "slack", "url": f"{receiver.url}/services/{SLACK_TOKEN}"},
    )
    assert made.status_code == 201
    dup = httpx.post(
        f"{url}/api/alerts/channels",
        json={"name": "slack", "kind": "slack", "url": f"{receiver.url}/x"},
    )
    assert dup.status_code == 409
    tested = httpx.post(f"{url}/api/alerts/channels/slack/test").json()
    assert tested == {"ok": True, "channel": "slack", "error": None}
    assert receiver.bodies(f"/services/{SLACK_TOKEN}")[0]["text"].startswith("spendgate: Test")
    receiver.failures = 1
    failed = httpx.post(f"{url}/api/alerts/channels/slack/test").json()
    assert failed["ok"] is False and failed["error"].startswith("HTTP 500")
    assert httpx.post(f"{url}/api/alerts/evaluate").json() == {"fired": []}
    assert httpx.get(f"{url}/api/alerts").json() == []
    assert httpx.delete(f"{url}/api/alerts/channels/slack").status_code == 200
    assert httpx.get(f"{url}/api/alerts/channels").json() == []
    spec = httpx.get(f"{url}/api/openapi.json").json()
    assert {"/api/alerts", "/api/alerts/channels", "/api/alerts/evaluate"} <= set(spec["paths"])


def test_cli_channels_history_and_evaluate(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: Receiver,
    smtp: tuple[Mailbox, int],
) -> None:
    monkeypatch.setenv("SPENDGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOOK_URL", f"{receiver.url}/hook")
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli, [*args, "--database-url", db])
        assert result.exit_code == code, result.output
        return result.output

    made = json.loads(run("alerts", "channels", "add", "hook", "--type", "webhook",
                          "--url-env", "HOOK_URL", "--only", "spend_spike", "--json"))  # fmt: skip
    assert made["kinds"] == ["spend_spike"] and "url" not in made
    mailbox, port = smtp
    run("alerts", "channels", "add", "mail", "--type", "email", "--smtp-host", "127.0.0.1",
        "--smtp-port", str(port), "--smtp-security", "none", "--from", "sg@example.com",
        "--to", "a@example.com")  # fmt: skip
    no_to = run("alerts", "channels", "add", "m2", "--type", "email", "--smtp-host", "h",
                "--from", "x@example.com", code=1)  # fmt: skip
    assert "at least one --to" in no_to
    listed = json.loads(run("alerts", "channels", "list"))
    assert [c["name"] for c in listed] == ["hook", "mail"]
    assert "delivered to hook" in run("alerts", "channels", "test", "hook")
    assert "delivered to mail" in run("alerts", "channels", "test", "mail")
    assert mailbox.messages[0]["Subject"] == "[spendgate] Test alert"
    assert json.loads(run("alerts", "evaluate")) == []
    assert json.loads(run("alerts", "history")) == []
    assert "deleted channel hook" in run("alerts", "channels", "delete", "hook")
    assert "no alert channel 'hook'" in run("alerts", "channels", "test", "hook", code=1)
    asyncio.run(asyncio.sleep(0))

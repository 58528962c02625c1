"""Repricing stored calls, unpriced models, what-if, and the price-book CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from click.testing import CliRunner

from spendgate.cli.main import cli
from spendgate.manual import ManualCall, manual_record
from spendgate.pricing import PriceBook
from spendgate.storage import CallFilter, Store
from spendgate.storage.analytics import Analytics
from spendgate.storage.reprice import reprice, unpriced_models
from spendgate.testing.gateway import GatewayServer

T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)
PRIVATE_PRICES = """\
schema = 1

[[model]]
id = "acme-claude-ft"

[[model.price]]
effective_from = 2026-01-01
input = "2"
output = "8"
source = "our contract"
"""


def _private_book(tmp_path: Path) -> tuple[PriceBook, Path]:
    path = tmp_path / "prices.toml"
    path.write_text(PRIVATE_PRICES)
    return PriceBook.load([path]), path


def _seed(store: Store) -> None:
    builtin = PriceBook.load()
    records = [
        manual_record(
            ManualCall(
                model="acme-claude-ft",
                input_tokens=1_000_000,
                output_tokens=500_000,
                cache_read_input_tokens=100_000,
                at=T0 + timedelta(hours=i),
                team="research",
                tags=["ft"],
            ),
            builtin,
        )
        for i in range(3)
    ]
    records.append(
        manual_record(
            ManualCall(model="claude-haiku-4-5", input_tokens=1000, output_tokens=100, at=T0),
            builtin,
        )
    )
    assert store.insert_calls(records) == 4


def _raw_total(store: Store) -> int:
    return sum(row["cost_nanousd"] or 0 for row in store.iter_call_rows(CallFilter()))


def test_unknown_model_is_listed_then_repriced_exactly_once(store: Store, tmp_path: Path) -> None:
    _seed(store)
    (found,) = unpriced_models(store, CallFilter())
    assert (found.model, found.calls) == ("acme-claude-ft", 3)
    haiku_only = _raw_total(store)
    # $1/MTok in + $5/MTok out for Haiku 4.5: 1000 x 1 + 100 x 5 = 1500 micro-dollars.
    assert haiku_only == 1_500_000

    book, _ = _private_book(tmp_path)
    dry = reprice(store, book, CallFilter(), dry_run=True)
    assert (dry.examined, dry.changed) == (4, 3)
    assert unpriced_models(store, CallFilter()) != []  # a dry run writes nothing

    report = reprice(store, book, CallFilter())
    assert report.changed == 3
    change = report.by_model["acme-claude-ft"]
    # Hand-computed: 1M input x $2 + 0.5M output x $8 + 0.1M cache reads x $0.20
    # (0.1 x input, the standard multiplier when a file leaves cache prices out) = $6.02.
    assert change.after_nanousd == 3 * 6_020_000_000
    assert (change.before_nanousd, change.newly_priced) == (0, 3)
    assert unpriced_models(store, CallFilter()) == []

    # Rollups moved with the raw calls: analytics agrees with the ledger.
    expected = Decimal(_raw_total(store)) / Decimal(10**9)
    summary = Analytics(store).summary(
        CallFilter(since=T0 - timedelta(days=1), until=T0 + timedelta(days=1))
    )
    assert Decimal(summary["cost_usd"]) == expected == Decimal("18.0615")
    by_team = Analytics(store).breakdown(
        CallFilter(since=T0 - timedelta(days=1), until=T0 + timedelta(days=1)), "team"
    )
    research = next(r for r in by_team["data"] if r["key"] == "research")
    assert Decimal(research["cost_usd"]) == Decimal("18.06")

    again = reprice(store, book, CallFilter())
    assert (again.examined, again.changed) == (4, 0)
    assert (
        Decimal(
            Analytics(store).summary(
                CallFilter(since=T0 - timedelta(days=1), until=T0 + timedelta(days=1))
            )["cost_usd"]
        )
        == expected
    )


def test_reprice_filters_by_model_and_time(store: Store, tmp_path: Path) -> None:
    _seed(store)
    book, _ = _private_book(tmp_path)
    report = reprice(store, book, CallFilter(since=T0 + timedelta(hours=1), model="acme-claude-ft"))
    assert (report.examined, report.changed) == (2, 2)
    (left,) = unpriced_models(store, CallFilter())
    assert left.calls == 1


def test_streaming_and_non_streaming_are_priced_identically(sqlite_gateway: GatewayServer) -> None:
    usage = {
        "input_tokens": 2100,
        "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 40000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 777,
        "service_tier": "standard",
        "server_tool_use": {"web_search_requests": 3},
    }
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key="sk-ant-x", max_retries=0)
    headers = {"x-fake-usage": json.dumps(usage), "x-fake-model": "claude-opus-4-5-20251101"}
    args: dict[str, Any] = {
        "model": "claude-opus-4-5",
        "max_tokens": 800,
        "messages": [{"role": "user", "content": "hi"}],
        "extra_headers": headers,
    }
    client.messages.create(**args)
    with client.messages.stream(**args) as stream:
        stream.get_final_message()
    sqlite_gateway.flush()
    rows = httpx.get(f"{sqlite_gateway.url}/api/requests").json()["data"]
    streamed = next(r for r in rows if r["stream"])
    plain = next(r for r in rows if not r["stream"])
    assert streamed["cost_usd"] == plain["cost_usd"] is not None
    assert streamed["cost_breakdown"] == plain["cost_breakdown"]
    # Opus 4.5 ($5 in, $25 out, $6.25 5m write, $10 1h write, $0.50 read per MTok) plus
    # $10 per 1,000 searches: 0.0105 + 0.019425 + 0.00625 + 0.02 + 0.02 + 0.03 = 0.106175.
    assert Decimal(plain["cost_usd"]) == Decimal("0.106175")


def _invoke(args: list[str], env: dict[str, str]) -> Any:
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    return result


def test_prices_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store.open(db)
    _seed(store)
    store.close()
    _, prices_file = _private_book(tmp_path)
    env = {"SPENDGATE_HOME": str(tmp_path), "SPENDGATE_DATABASE_URL": db}

    listed = _invoke(["prices", "list", "--json"], env)
    assert listed.exit_code == 0
    ids = {m["id"] for m in json.loads(listed.output)["models"]}
    assert "claude-haiku-4-5-20251001" in ids or "claude-haiku-4-5" in ids

    shown = _invoke(["prices", "show", "claude-haiku-4-5", "--json"], env)
    assert json.loads(shown.output)["rows"][0]["input"] == "1"
    unknown = _invoke(["prices", "show", "no-such-model"], env)
    assert unknown.exit_code == 1 and "prices list" in unknown.output

    unpriced = _invoke(["prices", "unpriced", "--json"], env)
    assert json.loads(unpriced.output)["data"][0]["calls"] == 3

    env_with_file = {**env, "SPENDGATE_PRICE_FILES": json.dumps([str(prices_file)])}
    assert _invoke(["prices", "check"], env_with_file).exit_code == 0
    done = _invoke(["reprice", "--json"], env_with_file)
    assert json.loads(done.output)["changed"] == 3
    assert json.loads(_invoke(["reprice", "--json"], env_with_file).output)["changed"] == 0

    what = _invoke(
        ["whatif", "--model", "claude-haiku-4-5", "--since", "2026-09-01", "--json"],
        env_with_file,
    )
    summary = json.loads(what.output)
    assert summary["compared"] == 4
    # Haiku 4.5 for the private calls: 1M x $1 + 0.5M x $5 + 0.1M x $0.10 = $3.51 each.
    assert Decimal(summary["hypothetical_usd"]) == Decimal("3.51") * 3 + Decimal("0.0015")

    overlap = tmp_path / "overlap.toml"
    overlap.write_text(
        PRIVATE_PRICES
        + '\n[[model.price]]\neffective_from = 2026-06-01\ninput = "1"\noutput = "4"\n'
    )
    bad = _invoke(["prices", "check"], {**env, "SPENDGATE_PRICE_FILES": json.dumps([str(overlap)])})
    assert bad.exit_code == 1
    assert "overlap" in bad.output


@pytest.mark.parametrize("args", [["whatif"], ["whatif", "--model", "nope"]])
def test_whatif_refuses_unclear_requests(tmp_path: Path, args: list[str]) -> None:
    env = {"SPENDGATE_HOME": str(tmp_path)}
    result = _invoke(args, env)
    assert result.exit_code == 2

"""Importing Anthropic's Admin API reports and reconciling them with the ledger.

The fake upstream serves buckets shaped like Anthropic's answers; the buckets are
built from raw SQL sums over the recorded calls (not from the rollups), with one
planted difference, so a clean reconciliation cross-checks the rollups too.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, type_coerce
from sqlalchemy.types import BigInteger

from spendgate.anthropic_admin import AdminClient, AdminImportError, usage_rows
from spendgate.cli.main import cli
from spendgate.storage import Store
from spendgate.storage.rollups_schema import DAY_US
from spendgate.storage.schema import calls, from_micros
from spendgate.testing.traffic import random_record
from spendgate.testing.upstream import FakeUpstream

ADMIN_KEY = "sk-ant-admin01-test"
# Calls without a proxy key used the client's own Anthropic key: paired with "(no key)".
KEY_IDS = {"k1": "apikey_01Aaaa", "k2": "apikey_01Bbbb", "(no key)": "apikey_01Cccc"}
PLANTED_OUTPUT = 123
PLANTED_CENTS = Decimal("250")  # $2.50 more on Anthropic's side


def _stamp(us: int) -> str:
    return from_micros(us).strftime("%Y-%m-%dT%H:%M:%SZ")


def _raw_by_day(store: Store) -> list[Any]:
    c = calls.c
    at = type_coerce(c.created_at, BigInteger)
    day = (at - at % DAY_US).label("day")
    stmt = select(
        day,
        c.model,
        c.key_id,
        func.sum(c.input_tokens),
        func.sum(c.output_tokens),
        func.sum(c.cache_read_input_tokens),
        func.sum(c.cache_creation_5m_input_tokens),
        func.sum(c.cache_creation_1h_input_tokens),
        func.sum(func.coalesce(c.cost_nanousd, 0)),
    ).group_by(day, c.model, c.key_id)
    with store.engine.connect() as conn:
        return list(conn.execute(stmt))


def anthropic_buckets(store: Store) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Usage and cost buckets as Anthropic would serve them for the recorded calls."""
    usage: dict[int, list[dict[str, Any]]] = defaultdict(list)
    cost: dict[tuple[int, str], int] = defaultdict(int)
    for day, model, key, inp, out, read, w5, w1, nanos in _raw_by_day(store):
        usage[int(day)].append(
            {
                "uncached_input_tokens": int(inp),
                "cache_creation": {
                    "ephemeral_1h_input_tokens": int(w1),
                    "ephemeral_5m_input_tokens": int(w5),
                },
                "cache_read_input_tokens": int(read),
                "output_tokens": int(out),
                "server_tool_use": {"web_search_requests": 0},
                "api_key_id": KEY_IDS[key or "(no key)"],
                "workspace_id": None,
                "model": model,
                "service_tier": "standard",
                "context_window": "0-200k",
            }
        )
        cost[(int(day), model)] += int(nanos)
    first = min(usage)
    usage[first][0]["output_tokens"] += PLANTED_OUTPUT
    planted = usage[first][0]
    cost_by_day: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for (day, model), nanos in sorted(cost.items()):
        cents = Decimal(nanos).scaleb(-7)
        if day == first and model == planted["model"]:
            cents += PLANTED_CENTS
        cost_by_day[day].append(
            {
                "amount": str(cents),
                "currency": "USD",
                "cost_type": "tokens",
                "description": f"{model} Usage - Input Tokens",
                "model": model,
                "token_type": "uncached_input_tokens",
                "workspace_id": None,
                "context_window": "0-200k",
                "service_tier": "standard",
            }
        )

    def buckets(by_day: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        return [
            {"starting_at": _stamp(d), "ending_at": _stamp(d + DAY_US), "results": results}
            for d, results in sorted(by_day.items())
        ]

    return buckets(usage), buckets(cost_by_day)


@pytest.fixture
def recorded(store: Store) -> Store:
    """A store with three days of random calls (keys k1, k2 and none)."""
    rng = random.Random(8)
    store.insert_calls([random_record(rng) for _ in range(300)])
    return store


def test_import_then_reconcile(recorded: Store, db_url: str, upstream: FakeUpstream) -> None:
    usage, cost = anthropic_buckets(recorded)
    upstream.set_admin_reports(usage=usage, cost=cost)
    runner = CliRunner()
    span = ["--since", "2026-10-01", "--until", "2026-10-04", "--database-url", db_url]
    args = ["import", "anthropic-admin", *span, "--admin-key", ADMIN_KEY]
    args += ["--base-url", upstream.url]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "usage rows" in first.output
    again = runner.invoke(cli, args)  # the same days again replace, never add
    assert again.output == first.output
    queries = [s.query for s in upstream.served if "usage_report" in s.path]
    assert "group_by[]=api_key_id" in queries[0] and "bucket_width=1d" in queries[0]

    key_map = [f"--key-map={theirs}={ours}" for ours, theirs in KEY_IDS.items()]
    out = runner.invoke(cli, ["reconcile", *span, *key_map, "--json"])
    assert out.exit_code == 0, out.output
    answer = json.loads(out.output)
    differing = [
        line for line in answer["tokens"] if any(line[n]["difference"] for n in line if "_" in n)
    ]
    assert len(differing) == 1
    assert differing[0]["output_tokens"]["difference"] == -PLANTED_OUTPUT
    assert differing[0]["key"] in KEY_IDS
    assert all(not line["key"].startswith("anthropic:") for line in answer["tokens"])
    costs = [line for line in answer["costs"] if Decimal(line["difference_usd"])]
    assert len(costs) == 1 and Decimal(costs[0]["difference_usd"]) == -PLANTED_CENTS / 100
    assert Decimal(answer["totals"]["cost"]["difference_usd"]) == -PLANTED_CENTS / 100

    unmapped = json.loads(runner.invoke(cli, ["reconcile", *span, "--json"]).output)
    assert any(line["key"].startswith("anthropic:apikey_") for line in unmapped["tokens"])
    per_model = json.loads(runner.invoke(cli, ["reconcile", *span, "--no-keys", "--json"]).output)
    assert {line["key"] for line in per_model["tokens"]} == {"*"}
    table = runner.invoke(cli, ["reconcile", *span, *key_map, "--differences"])
    assert table.exit_code == 0 and f"(-{PLANTED_OUTPUT})" in table.output


def test_pagination_and_admin_key_errors(upstream: FakeUpstream, tmp_path: Any) -> None:
    days = [datetime(2026, 10, d, tzinfo=UTC) for d in (1, 2, 3)]
    upstream.set_admin_reports(
        usage=[
            {
                "starting_at": d.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ending_at": d.replace(day=d.day + 1).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "results": [{"uncached_input_tokens": d.day, "model": "claude-x"}],
            }
            for d in days
        ]
    )
    client = AdminClient(upstream.url, ADMIN_KEY)
    query = [("starting_at", "2026-10-01T00:00:00Z"), ("ending_at", "2026-10-04T00:00:00Z")]
    pages = list(client.pages("/v1/organizations/usage_report/messages", [*query, ("limit", "1")]))
    assert len(pages) == 3 and [p["has_more"] for p in pages] == [True, True, False]
    assert [r["uncached_input_tokens"] for r in usage_rows(iter(pages))] == [1, 2, 3]

    with pytest.raises(AdminImportError, match="ANTHROPIC_ADMIN_KEY"):
        list(AdminClient(upstream.url, "sk-ant-api03-not-admin").pages(
            "/v1/organizations/cost_report", query
        ))  # fmt: skip
    runner = CliRunner()
    db = f"sqlite:///{tmp_path}/x.db"
    missing = runner.invoke(
        cli, ["import", "anthropic-admin", "--database-url", db, "--base-url", upstream.url],
        env={"ANTHROPIC_ADMIN_KEY": "", "SPENDGATE_ANTHROPIC_ADMIN_KEY": ""},
    )  # fmt: skip
    assert missing.exit_code != 0 and "ANTHROPIC_ADMIN_KEY" in missing.output

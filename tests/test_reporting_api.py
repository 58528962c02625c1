"""The analytics, export and Anthropic Admin API endpoints of a running gateway."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import timedelta
from decimal import Decimal

import httpx
from click.testing import CliRunner

from spendgate.cli.main import cli
from spendgate.storage import CallFilter, Store
from spendgate.testing.gateway import GatewayServer
from spendgate.testing.traffic import KEYS, T0, random_record, raw_sums

SINCE = "2026-10-01T00:00:00Z"
UNTIL = "2026-10-04T00:00:00Z"


def _fill(db_url: str, n: int = 400) -> Store:
    store = Store.open(db_url)
    rng = random.Random(3)
    store.insert_calls([random_record(rng) for _ in range(n)])
    return store


def test_summary_and_breakdown_contract(gateway: GatewayServer, db_url: str) -> None:
    store = _fill(db_url)
    with httpx.Client(base_url=gateway.url) as client:
        got = client.get("/api/analytics/summary", params={"since": SINCE, "until": UNTIL}).json()
        flt = CallFilter(since=T0, until=T0 + timedelta(days=3))
        assert {k: got[k] for k in KEYS} == raw_sums(store, flt)
        assert isinstance(got["cost_usd"], str) and "previous" in got
        assert set(got["latency_ms"]) >= {"p50", "p95"}
        for by in ("model", "team", "key", "user", "project", "tag", "status", "session"):
            body = client.get(
                "/api/analytics/breakdown", params={"by": by, "since": SINCE, "until": UNTIL}
            ).json()
            assert body["data"], by
            for row in body["data"]:
                assert {"key", "cost_usd", "calls"} <= set(row)
                Decimal(row["cost_usd"])
        teams = client.get(
            "/api/analytics/breakdown", params={"by": "team", "since": SINCE, "until": UNTIL}
        ).json()["data"]
        total = sum(Decimal(r["cost_usd"]) for r in teams)
        assert str(total) == got["cost_usd"]
        split = client.get(
            "/api/analytics/breakdown",
            params={"by": "session", "then": "model", "since": SINCE, "until": UNTIL},
        ).json()["data"]
        assert split and all("by_model" in row for row in split)
        bad = client.get("/api/analytics/breakdown", params={"by": "color"})
        assert bad.status_code == 400 and "unknown dimension" in bad.json()["error"]["message"]


def test_timeseries_and_forecast(gateway: GatewayServer, db_url: str) -> None:
    _fill(db_url)
    with httpx.Client(base_url=gateway.url) as client:
        body = client.get(
            "/api/analytics/timeseries",
            params={"since": SINCE, "until": UNTIL, "granularity": "day", "stack": "model",
                    "tz": "Europe/Paris"},
        ).json()  # fmt: skip
        assert body["tz"] == "Europe/Paris" and len(body["data"]) == 4
        assert body["data"][1]["start"] == "2026-10-02T00:00:00+02:00"
        assert sum(p["calls"] for p in body["data"]) == 400
        forecast = client.get("/api/analytics/forecast").json()
        assert "linear" in forecast["month_end"]["method"]
        presets = client.get("/api/analytics/summary", params={"period": "mtd"})
        assert presets.status_code == 200


def test_exports_stream_and_total(gateway: GatewayServer, db_url: str) -> None:
    store = _fill(db_url)
    raw_total = raw_sums(store, CallFilter())["cost_usd"]
    with httpx.Client(base_url=gateway.url) as client:
        text = client.get("/api/export", params={"format": "csv"}).text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == 400
        assert str(sum(Decimal(r["cost_usd"] or 0) for r in rows)) == raw_total
        nd = client.get("/api/export", params={"format": "ndjson", "team": "Sales"}).text
        lines = [json.loads(x) for x in nd.splitlines()]
        assert lines and all(x["team"] == "Sales" for x in lines)
        assert len(client.get("/api/export", params={"format": "json"}).json()) == 400
        statement = client.get("/api/export/chargeback", params={"month": "2026-10"}).json()
        charges = sum(Decimal(t["charge_usd"]) for t in statement["teams"])
        assert charges == Decimal(statement["total_charge_usd"])
        exact = Decimal(statement["total_cost_usd"])
        assert exact == Decimal(raw_total)
        assert abs(charges - exact) <= Decimal("0.005")
        focus = client.get("/api/export/focus", params={"since": SINCE, "until": UNTIL}).text
        focus_rows = list(csv.DictReader(io.StringIO(focus)))
        assert str(sum(Decimal(r["BilledCost"]) for r in focus_rows)) == raw_total
        for row in focus_rows:
            assert row["BillingPeriodStart"] == "2026-10-01T00:00:00Z"
            assert row["ChargePeriodStart"].endswith("T00:00:00Z")
            if row["PricingQuantity"]:
                listed = Decimal(row["ListUnitPrice"]) * int(row["PricingQuantity"])
                assert abs(listed - Decimal(row["ListCost"])) < Decimal("0.000001")
        assert {"ListUnitPrice", "SkuPriceId", "RegionName", "CommitmentDiscountId"} <= set(
            focus_rows[0]
        )
        unpriced = client.get(
            "/api/export", params={"format": "ndjson", "pricing_status": "unpriced"}
        ).text.splitlines()
        assert unpriced and all(json.loads(x)["pricing_status"] == "unpriced" for x in unpriced)


def test_admin_api_usage_and_cost_report(gateway: GatewayServer, db_url: str) -> None:
    store = _fill(db_url)
    expected = raw_sums(store, CallFilter())
    with httpx.Client(base_url=gateway.url) as client:
        pages, page = [], None
        while True:
            params: dict[str, str | list[str]] = {
                "starting_at": SINCE, "ending_at": UNTIL, "bucket_width": "1h", "limit": "24",
                "group_by[]": ["model", "workspace_id"],
            }  # fmt: skip
            if page:
                params["page"] = page
            body = client.get("/v1/organizations/usage_report/messages", params=params).json()
            pages.append(body)
            if not body["has_more"]:
                break
            page = body["next_page"]
        assert len(pages) == 3 and all(len(p["data"]) == 24 for p in pages)
        results = [r for p in pages for b in p["data"] for r in b["results"]]
        assert sum(r["output_tokens"] for r in results) == expected["output_tokens"]
        assert sum(r["uncached_input_tokens"] for r in results) == expected["input_tokens"]
        assert results[0]["api_key_id"] is None and results[0]["model"] is not None
        assert pages[0]["data"][0]["starting_at"] == "2026-10-01T00:00:00Z"
        cost = client.get(
            "/v1/organizations/cost_report",
            params={"starting_at": SINCE, "ending_at": UNTIL, "group_by[]": "description"},
        ).json()
        cents = sum(Decimal(r["amount"]) for b in cost["data"] for r in b["results"])
        assert cents / 100 == Decimal(expected["cost_usd"])
        assert any("Usage - Input Tokens" in r["description"] for r in cost["data"][0]["results"])
        bad = client.get("/v1/organizations/cost_report", params={"bucket_width": "1h"})
        assert bad.status_code == 400 and bad.json()["type"] == "error"
        accounts = client.get(
            "/v1/organizations/usage_report/messages",
            params={"starting_at": SINCE, "ending_at": UNTIL, "account_ids[]": "user_01x"},
        ).json()
        assert accounts["data"] and all(b["results"] == [] for b in accounts["data"])
        limit = client.get(
            "/v1/organizations/usage_report/messages", params={"starting_at": SINCE, "limit": "x"}
        )
        assert limit.status_code == 400
        assert limit.json()["error"]["type"] == "invalid_request_error"
        described = cost["data"][0]["results"][0]
        assert described["context_window"] == "0-200k" and "service_tier" in described


def test_cli_report_and_export(db_url: str, tmp_path: object) -> None:
    store = _fill(db_url)
    runner = CliRunner()
    args = ["--database-url", db_url, "--since", SINCE, "--until", UNTIL]
    result = runner.invoke(cli, ["report", "daily", "--json", *args])
    assert result.exit_code == 0, result.output
    days = json.loads(result.output)["data"]
    assert sum(d["calls"] for d in days) == 400
    table = runner.invoke(cli, ["report", "teams", *args, "--breakdown", "model"])
    assert table.exit_code == 0 and "Engineering" in table.output
    sessions = runner.invoke(cli, ["report", "sessions", *args, "--breakdown", "--json"])
    assert sessions.exit_code == 0, sessions.output
    for session in json.loads(sessions.output)["data"]:
        assert sum(m["calls"] for m in session["by_model"]) == session["calls"]
        assert len(session["by_model"]) == session["models"]
    for fmt in ("csv", "json", "ndjson"):
        out = runner.invoke(cli, ["export", "--format", fmt, "--database-url", db_url])
        assert out.exit_code == 0, out.output
    lines = runner.invoke(cli, ["export", "--format", "ndjson", "--database-url", db_url])
    assert len(lines.output.splitlines()) == store.count_calls(CallFilter())
    tail = runner.invoke(cli, ["tail", "--no-follow", "-n", "5", "--database-url", db_url])
    assert tail.exit_code == 0 and len(tail.output.splitlines()) == 5
    errors = runner.invoke(
        cli, ["export", "--format", "ndjson", "--status", "error", "--database-url", db_url]
    )
    assert errors.exit_code == 0
    assert all(json.loads(x)["status_code"] >= 400 for x in errors.output.splitlines())
    bad = runner.invoke(cli, ["export", "--status", "nope", "--database-url", db_url])
    assert bad.exit_code != 0 and "HTTP status" in bad.output

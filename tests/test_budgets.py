"""Hard budgets: calendar periods, atomic reservation, and budgets that hold under load."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anthropic
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spendgate.budgets import period_window
from spendgate.budgets.estimate import worst_case
from spendgate.budgets.guard import BudgetGuard
from spendgate.budgets.model import SCOPES, Budget, BudgetIndex
from spendgate.pricing import PriceBook
from spendgate.proxy.auth import Resolved
from spendgate.records import Attribution
from spendgate.storage import Store
from spendgate.storage.budgets import BudgetStore, Claim, Exhausted
from spendgate.storage.keys import KeyStore
from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.testing.prices import HAIKU_CONTRACT_FEBRUARY
from spendgate.testing.upstream import FakeUpstream

UPSTREAM_KEY = "sk-ant-api03-upstream-budget-test-secret"
MODEL = "claude-sonnet-4-6"
# Each call: max_tokens 10 000 at $15/M = $0.15 reserved (+ a little input); it reports
# 1 input token and 10 000 output tokens, so it settles at $0.150003.
MAX_TOKENS = 10_000
USAGE = {"input_tokens": 1, "output_tokens": MAX_TOKENS, "service_tier": "standard"}
SETTLED_NANOS = 150_003_000
LIMIT_USD = "1.55"  # room for 10 reservations, not 11


# -- periods -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "at", "zone", "key", "start", "end"),
    [
        ("monthly", "2026-11-30T23:30:00+00:00", "Europe/Berlin", "2026-12",
         "2026-11-30T23:00:00+00:00", "2026-12-31T23:00:00+00:00"),
        ("daily", "2026-03-29T12:00:00+00:00", "Europe/Berlin", "2026-03-29",
         "2026-03-28T23:00:00+00:00", "2026-03-29T22:00:00+00:00"),
        ("weekly", "2026-11-22T12:00:00+00:00", "UTC", "2026-W47",
         "2026-11-16T00:00:00+00:00", "2026-11-23T00:00:00+00:00"),
        ("monthly", "2026-12-15T00:00:00+00:00", "UTC", "2026-12",
         "2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
    ],
)  # fmt: skip
def test_period_windows_follow_the_local_calendar(
    period: Any, at: str, zone: str, key: str, start: str, end: str
) -> None:
    window = period_window(period, datetime.fromisoformat(at), ZoneInfo(zone))
    assert window.key == key
    assert window.start == datetime.fromisoformat(start)
    assert window.end == datetime.fromisoformat(end)


def test_lifetime_budget_never_resets() -> None:
    window = period_window("none", datetime.now(UTC), ZoneInfo("UTC"))
    assert (window.key, window.start, window.end) == ("all", None, None)


def test_worst_case_bounds_the_real_cost() -> None:
    book = PriceBook.load()
    body = b'{"model":"claude-sonnet-4-6","max_tokens":1000,"messages":[]}' + b" " * 240
    body = body[:300]
    at = datetime.now(UTC)
    est = worst_case(book, model=MODEL, body=body, max_tokens=1000, at=at)
    assert est.input_tokens == 100
    # 100 tokens at the 1h cache-write rate ($6/M) + 1000 at $15/M
    assert est.nanousd == 600_000 + 15_000_000
    unknown = worst_case(book, model="claude-unknown-9", body=body, max_tokens=1000, at=at)
    assert unknown.nanousd > est.nanousd  # priced at the dearest rates in the book


def test_worst_case_follows_the_price_row_in_effect(tmp_path: Path) -> None:
    """The estimate's rates are kept per model and price row: a contract price that
    applies for one month is used inside it and not before or after, asked in any order."""
    prices = tmp_path / "prices.toml"
    prices.write_text(HAIKU_CONTRACT_FEBRUARY)
    book = PriceBook.load([prices])
    body = b"x" * 300  # 100 input tokens

    def nanos(day: str) -> int:
        at = datetime.fromisoformat(day).replace(tzinfo=UTC)
        return worst_case(book, model="claude-haiku-4-5", body=body, max_tokens=1000, at=at).nanousd

    # List: 1h cache write $2/M, output $5/M; the contract: $1.8/M and $4.5/M.
    listed, contract = 100 * 2_000 + 1000 * 5_000, 100 * 1_800 + 1000 * 4_500
    for _ in range(2):  # cold, then from what is kept
        assert [nanos(d) for d in ("2026-02-15", "2026-01-15", "2026-03-15", "2026-02-02")] == [
            contract,
            listed,
            listed,
            contract,
        ]


# -- the store: all-or-nothing reservation ------------------------------------------


_VALUES = st.sampled_from(["a", "b", "c"])
_BUDGETS = st.lists(st.tuples(st.sampled_from(SCOPES), _VALUES), max_size=12).map(
    lambda specs: [
        Budget(f"b{i:03d}", f"b{i}", scope, "" if scope == "global" else value, "monthly", 10)
        for i, (scope, value) in enumerate(specs)
    ]
)
_WHO = st.builds(
    Attribution,
    key_id=st.none() | _VALUES,
    team=st.none() | _VALUES,
    user=st.none() | _VALUES,
    project=st.none() | _VALUES,
    tags=st.lists(_VALUES, max_size=6),  # past 4 tags an answer is not remembered
)


@settings(max_examples=300, deadline=None)
@given(budgets=_BUDGETS, calls=st.lists(_WHO, min_size=1, max_size=6))
def test_the_budget_index_finds_what_applies_to_says(
    budgets: list[Budget], calls: list[Attribution]
) -> None:
    """Looked up by value and remembered per attribution, in id order (the lock order):
    the same budgets as asking every one, for any budgets and calls, asked twice."""
    index = BudgetIndex(budgets)
    for who in [*calls, *calls]:
        expected = [budget for budget in budgets if budget.applies_to(who)]
        assert index.matching(who) == expected


def test_claims_follow_a_reloaded_budget_list(tmp_path: Path) -> None:
    """A new list of definitions (a reload) is indexed again: a budget added for a key
    is claimed by that key's next call, and one deleted no longer is."""
    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    guard = BudgetGuard(BudgetStore(store.engine), PriceBook.load(), zone=ZoneInfo("UTC"))
    resolved = Resolved(None, attribution=Attribution(key_id="k1", team="t"))
    at = datetime(2026, 12, 7, tzinfo=UTC)
    team = Budget("b1", "team", "team", "t", "monthly", 10)
    key = Budget("b2", "key", "key", "k1", "daily", 10)
    assert [c.budget for c in guard.claims_for([team], resolved, at)] == [team]
    claims = guard.claims_for([team, key], resolved, at)
    assert [(c.budget, c.period_key) for c in claims] == [(team, "2026-12"), (key, "2026-12-07")]
    assert [c.budget for c in guard.claims_for([key], resolved, at)] == [key]
    assert guard.claims_for([], resolved, at) == []
    store.close()


def test_reserve_is_all_or_nothing_and_settle_releases(store: Store) -> None:
    keys, budgets = KeyStore(store.engine), BudgetStore(store.engine)
    team = keys.create_team("Engineering")
    roomy = budgets.create_budget(
        scope="team", scope_value=team.name, period="monthly", limit_nanousd=1_000
    )
    tight = budgets.create_budget(scope="user", scope_value="ann", period="none", limit_nanousd=300)
    claims = [Claim(roomy, "2026-11", None), Claim(tight, "all", None)]
    budgets.reserve(claims, 200)
    with pytest.raises(Exhausted) as refused:
        budgets.reserve(claims, 200)
    assert refused.value.claim.budget.id == tight.id
    # The refused call reserved nothing, not even on the budget that had room.
    assert budgets.usage(roomy.id, "2026-11").reserved_nanousd == 200
    assert budgets.usage(tight.id, "all").refused == 1
    budgets.settle(claims, 200, 150)
    roomy_usage = budgets.usage(roomy.id, "2026-11")
    assert (roomy_usage.spent_nanousd, roomy_usage.reserved_nanousd) == (150, 0)
    budgets.reserve(claims, 150)  # 150 spent + 150 = 300 = the limit: allowed
    with pytest.raises(Exhausted):
        budgets.reserve(claims, 1)


def test_deleted_budget_is_skipped(store: Store) -> None:
    budgets = BudgetStore(store.engine)
    gone = budgets.create_budget(scope="global", scope_value="", period="daily", limit_nanousd=0)
    budgets.delete_budget(gone.id)
    budgets.reserve([Claim(gone, "2026-11-22", None)], 10)  # no error, nothing stored
    assert budgets.usage(gone.id, "2026-11-22").reserved_nanousd == 0


# -- through the gateway ---------------------------------------------------------


def _create_key(url: str) -> dict[str, Any]:
    resp = httpx.post(
        f"{url}/api/keys", json={"label": "load", "upstream_key": UPSTREAM_KEY}, timeout=10
    )
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _create_budget(url: str, key_id: str, limit: str = LIMIT_USD) -> dict[str, Any]:
    resp = httpx.post(
        f"{url}/api/budgets",
        json={"scope": "key", "value": key_id, "limit_usd": limit, "period": "monthly"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _recorded(gateway: GatewayServer, count: int) -> list[dict[str, Any]]:
    """The request log once ``count`` calls are in it (a record is submitted just after
    the client has its answer)."""
    data: list[dict[str, Any]] = []
    for _ in range(100):
        gateway.flush()
        data = httpx.get(f"{gateway.url}/api/requests", params={"limit": 500}).json()["data"]
        if len(data) >= count:
            break
        time.sleep(0.02)
    return data


async def _stream_once(url: str, key: str) -> str:
    client = anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0, timeout=60)
    try:
        stream = await client.messages.create(
            model=MODEL,
            max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_headers={"x-fake-usage": json.dumps(USAGE), "x-fake-sleep": "0.3"},
        )
        async for _event in stream:
            pass
        return "ok"
    except anthropic.RateLimitError as exc:
        assert exc.response.headers.get("x-should-retry") == "false"
        assert "retry-after" not in exc.response.headers
        assert "exhausted" in exc.message
        return "refused"
    finally:
        await client.close()


async def _hammer(urls: list[str], key: str, calls: int = 100) -> list[str]:
    return await asyncio.gather(*(_stream_once(urls[i % len(urls)], key) for i in range(calls)))


def _assert_budget_held(url: str, budget_id: str, outcomes: list[str]) -> None:
    assert outcomes.count("ok") == 10, outcomes.count("ok")
    assert outcomes.count("refused") == 90
    report = httpx.get(f"{url}/api/budgets/{budget_id}", timeout=10).json()
    assert report["reserved_usd"] == "0.000000000"
    spent = int(report["spent_usd"].replace(".", ""))
    assert spent == 10 * SETTLED_NANOS
    assert spent <= int(LIMIT_USD.replace(".", "")) * 10_000_000
    assert report["refused"] == 90


async def test_100_concurrent_streams_against_room_for_10_sqlite(
    sqlite_gateway: GatewayServer,
) -> None:
    key = _create_key(sqlite_gateway.url)
    budget = _create_budget(sqlite_gateway.url, key["id"])
    outcomes = await _hammer([sqlite_gateway.url], key["key"])
    _assert_budget_held(sqlite_gateway.url, budget["id"], outcomes)
    recorded = _recorded(sqlite_gateway, 100)
    ok = [r for r in recorded if r["status_code"] == 200]
    assert len(ok) == 10
    assert all(r["cost_usd"] == "0.150003000" for r in ok)
    refused = [r for r in recorded if r["status_code"] == 429]
    assert len(refused) == 90
    assert {r["error_type"] for r in refused} == {"budget_exceeded"}


TTL = 0.5


@pytest.mark.postgres
async def test_100_concurrent_streams_two_gateways_one_postgres(
    tmp_path: Path, upstream: FakeUpstream, pg_url: str
) -> None:
    settings = [
        gateway_settings(
            tmp_path / name,
            upstream.url,
            pg_url,
            secret_key="shared-master-key",
            key_cache_ttl=TTL,
        )
        for name in ("a", "b")
    ]
    with GatewayServer(settings[0]) as first, GatewayServer(settings[1]) as second:
        key = _create_key(first.url)
        budget = _create_budget(first.url, key["id"])
        # The other replica sees a new budget once its cached definitions expire
        # (SPENDGATE_KEY_CACHE_TTL; it may have cached "no budgets" at start-up).
        await asyncio.sleep(TTL + 0.2)
        outcomes = await _hammer([first.url, second.url], key["key"])
        _assert_budget_held(second.url, budget["id"], outcomes)


def test_refusal_names_budget_spent_limit_and_reset(sqlite_gateway: GatewayServer) -> None:
    key = _create_key(sqlite_gateway.url)
    _create_budget(sqlite_gateway.url, key["id"], limit="0.01")
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"], max_retries=3)
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(
            model=MODEL, max_tokens=1000, messages=[{"role": "user", "content": "hi"}]
        )
    error = refused.value.body["error"]  # type: ignore[index]
    message = error["message"]
    assert refused.value.status_code == 429
    assert error["type"] == "rate_limit_error"
    assert "key:" in message and "spent $0.000000" in message and "of $0.010000" in message
    assert "resets 20" in message
    # x-should-retry: false, so the SDK did not retry despite max_retries=3
    assert [r["status_code"] for r in _recorded(sqlite_gateway, 1)] == [429]


def test_budgets_fail_closed_when_the_database_cannot_be_read(
    sqlite_gateway: GatewayServer, tmp_path: Path
) -> None:
    key = _create_key(sqlite_gateway.url)
    _create_budget(sqlite_gateway.url, key["id"], limit="100")
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"], max_retries=0)
    request = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    db = sqlite3.connect(tmp_path / "spendgate.db")
    db.execute("ALTER TABLE budget_usage RENAME TO budget_usage_away")
    db.commit()
    try:
        with pytest.raises(anthropic.InternalServerError) as refused:
            client.messages.create(**request)  # type: ignore[call-overload]
        assert refused.value.status_code == 503
        assert "cannot check budgets" in refused.value.message
        batch = [{"custom_id": "a", "params": request}]
        with pytest.raises(anthropic.InternalServerError) as batch_refused:
            client.messages.batches.create(requests=batch)  # type: ignore[arg-type]
        assert batch_refused.value.status_code == 503
    finally:
        db.execute("ALTER TABLE budget_usage_away RENAME TO budget_usage")
        db.commit()
        db.close()
    assert client.messages.create(**request).usage.output_tokens > 0  # type: ignore[call-overload]


def test_budget_created_mid_period_counts_earlier_spend(sqlite_gateway: GatewayServer) -> None:
    key = _create_key(sqlite_gateway.url)
    client = anthropic.Anthropic(base_url=sqlite_gateway.url, api_key=key["key"], max_retries=0)
    client.messages.create(
        model=MODEL,
        max_tokens=MAX_TOKENS,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-fake-usage": json.dumps(USAGE)},
    )
    assert len(_recorded(sqlite_gateway, 1)) == 1
    budget = _create_budget(sqlite_gateway.url, key["id"], limit="0.2")
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(
            model=MODEL, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": "hi"}]
        )
    report = httpx.get(f"{sqlite_gateway.url}/api/budgets/{budget['id']}").json()
    assert report["spent_usd"] == "0.150003000"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/limit", {"limit_usd": "60"}),
        ("PATCH", "", {"limit_usd": "60", "name": "lowered", "thresholds": [90]}),
    ],
)
async def test_leases_settle_exactly_and_go_back_at_shutdown(
    tmp_path: Path, upstream: FakeUpstream, method: str, path: str, body: dict[str, Any]
) -> None:
    """A roomy budget is served from a per-process lease; the counters end exact."""
    url = f"sqlite:///{tmp_path / 'spendgate.db'}"
    with GatewayServer(gateway_settings(tmp_path, upstream.url, url)) as gateway:
        key = _create_key(gateway.url)
        budget = _create_budget(gateway.url, key["id"], limit="100000")
        client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key["key"], max_retries=0)
        try:
            for _ in range(3):  # concurrent waves: the first takes the lease, the rest use it
                await asyncio.gather(
                    *(
                        client.messages.create(
                            model=MODEL,
                            max_tokens=MAX_TOKENS,
                            messages=[{"role": "user", "content": "hi"}],
                            extra_headers={"x-fake-usage": json.dumps(USAGE)},
                        )
                        for _ in range(20)
                    )
                )
        finally:
            await client.close()
        # While running, the lease is counted as reserved (in flight) in the database.
        report = f"{gateway.url}/api/budgets/{budget['id']}"
        assert httpx.get(report, timeout=10).json()["reserved_usd"] != "0.000000000"
        # A new limit retires the lease: close to the new limit, one more call is
        # reserved exactly and nothing stays reserved once it has settled.
        resp = httpx.request(method, f"{report}{path}", json=body, timeout=10)
        assert resp.status_code == 200, resp.text
        client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key["key"], max_retries=0)
        try:
            await client.messages.create(
                model=MODEL,
                max_tokens=MAX_TOKENS,
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-fake-usage": json.dumps(USAGE)},
            )
        finally:
            await client.close()
        # Well before an idle lease would go back on its own (LEASE_IDLE, 1 s).
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            if httpx.get(report, timeout=10).json()["reserved_usd"] == "0.000000000":
                break
            await asyncio.sleep(0.02)
        assert httpx.get(report, timeout=10).json()["reserved_usd"] == "0.000000000"
    store = BudgetStore(Store.open(url).engine)
    usage = store.usage(budget["id"], datetime.now(UTC).strftime("%Y-%m"))
    assert usage.reserved_nanousd == 0  # every lease went back
    assert usage.spent_nanousd == 61 * SETTLED_NANOS
    assert usage.calls == 61


def test_budget_edits(gateway: GatewayServer) -> None:
    """PATCH changes name, limit and thresholds; scope, period and counters stay."""
    url = gateway.url
    key = _create_key(url)
    budget = _create_budget(url, key["id"], limit="0.2")
    client = anthropic.Anthropic(base_url=url, api_key=key["key"], max_retries=0)
    client.messages.create(
        model=MODEL, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-fake-usage": json.dumps(USAGE)},
    )  # fmt: skip
    with pytest.raises(anthropic.RateLimitError):  # $0.15 spent, $0.15 more does not fit $0.20
        client.messages.create(
            model=MODEL, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": "hi"}]
        )
    resp = httpx.patch(
        f"{url}/api/budgets/{budget['id']}",
        json={"name": "alice monthly", "limit_usd": "$1.00", "thresholds": [90, 25, 90]},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    edited = resp.json()
    assert (edited["name"], edited["limit_usd"], edited["thresholds"]) == (
        "alice monthly",
        "1.000000000",
        [25, 90],
    )
    assert (edited["scope"], edited["scope_value"], edited["period"]) == (
        "key",
        key["id"],
        "monthly",
    )
    assert (edited["spent_usd"], edited["refused"]) == ("0.150003000", 1)
    client.messages.create(  # the raised limit has room now
        model=MODEL, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": "hi"}]
    )
    name_only = httpx.patch(f"{url}/api/budgets/{budget['id']}", json={"name": "a"}).json()
    assert (name_only["name"], name_only["limit_usd"]) == ("a", "1.000000000")
    assert name_only["thresholds"] == [25, 90]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"limit_usd": "lots"}, 400, "write it like 0.0125"),
        ({"limit_usd": "-1"}, 400, "cannot be negative"),
        ({"thresholds": [0, 50]}, 400, "between 1 and 1000"),
        ({"thresholds": None}, 400, "leave it out to keep it"),
        ({"name": ""}, 422, "name"),
        ({"period": "daily"}, 422, "period"),
    ],
)
def test_budget_edit_errors_say_how_to_fix_them(
    sqlite_gateway: GatewayServer, body: dict[str, Any], status: int, says: str
) -> None:
    url = sqlite_gateway.url
    budget = _create_budget(url, _create_key(url)["id"])
    resp = httpx.patch(f"{url}/api/budgets/{budget['id']}", json=body, timeout=10)
    assert resp.status_code == status, resp.text
    assert says in resp.json()["error"]["message"]
    after = httpx.get(f"{url}/api/budgets/{budget['id']}").json()
    assert {k: after[k] for k in ("name", "limit_usd", "thresholds", "period")} == {
        k: budget[k] for k in ("name", "limit_usd", "thresholds", "period")
    }
    missing = httpx.patch(f"{url}/api/budgets/nope", json={"name": "x"})
    assert missing.status_code == 404 and "spendgate budgets list" in missing.text

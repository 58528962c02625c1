"""The dashboard in headless Chromium against a live gateway with demo data.

Every figure the dashboard shows is checked against the public JSON API it reads;
keys created in the browser are used through the official ``anthropic`` SDK.
"""

from __future__ import annotations

import re
import threading
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from e2e_support import (
    ADMIN,
    PHONE,
    SCREENSHOTS,
    VIEWER,
    VIEWER_TEAM,
    Live,
    eventually,
    new_page,
    usd,
)

from spendgate.testing.gateway import GatewayServer, gateway_settings

TRANSCRIPT = Path(__file__).parent.parent / "data" / "claude_code_session.jsonl"


def filters(page: Any) -> Any:
    return page.get_by_role("form", name="Filters")


def request_filters(page: Any) -> Any:
    return page.get_by_role("form", name="Request filters")


def row_ids(page: Any) -> list[str]:
    """The call ids of the log's rows, read in one go (the table re-renders as data arrive)."""
    ids: list[str] = page.eval_on_selector_all(
        "[data-testid=requests-table] tbody tr", "rows => rows.map(r => r.dataset.callId)"
    )
    return ids


def api_ids(api: httpx.Client, **params: Any) -> list[str]:
    answer = api.get("/api/requests", params={"limit": 50, **params})
    assert answer.status_code == 200, answer.text
    return [c["id"] for c in answer.json()["data"]]


def test_login_is_required_in_team_mode(playwright_browser: Any, gateway: Live) -> None:
    if not gateway.team_mode:
        pytest.skip("this spendgate has no accounts: the dashboard runs in local mode")
    context, page, watch = new_page(playwright_browser, gateway, None)
    page.goto("/keys?period=7d")
    page.wait_for_url(re.compile(r"/login\?next="))
    assert page.get_by_role("heading", name="Sign in").is_visible()
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert "do not match" in page.get_by_role("alert").inner_text()
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Keys & teams").wait_for()
    assert page.url.endswith("/keys?period=7d")
    assert page.get_by_test_id("user").inner_text() == ADMIN[0]
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    # The session is over on the server too.
    assert page.request.get("/api/keys").status == 401
    context.close()
    assert not watch.problems, watch.problems


def test_a_team_viewer_reads_their_team_and_changes_nothing(
    playwright_browser: Any, gateway: Live, api: httpx.Client
) -> None:
    if not gateway.team_mode:
        pytest.skip("this spendgate has no accounts: the dashboard runs in local mode")
    context, page, watch = new_page(playwright_browser, gateway, None)
    page.goto("/?period=7d&tz=UTC")
    page.get_by_label("Username").fill(VIEWER[0])
    page.get_by_label("Password").fill(VIEWER[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(rf"team={VIEWER_TEAM}"))
    params = {"period": "7d", "tz": "UTC", "team": VIEWER_TEAM}
    summary = api.get("/api/analytics/summary", params=params).json()
    hero = page.get_by_test_id("spend-total")
    eventually(lambda: _assert_equal(hero.get_attribute("data-value"), summary["cost_usd"]))
    assert filters(page).get_by_label("Team").locator("option").all_inner_texts() == [VIEWER_TEAM]
    page.goto("/keys")
    page.get_by_text("Only admins can change this").wait_for()
    assert page.get_by_role("form", name="Create a key").count() == 0
    page.goto("/budgets")
    page.get_by_role("heading", name="Budgets & alerts").wait_for()
    assert page.get_by_role("form", name="Create a budget").count() == 0
    context.close()
    # The forecast lists every budget, so it is for unscoped readers: its 403 is expected.
    unexpected = [p for p in watch.problems if "403" not in p]
    assert not unexpected, unexpected


def test_overview_figures_equal_the_analytics_api(page: Any, api: httpx.Client) -> None:
    page.goto("/?period=7d&tz=UTC")
    hero = page.get_by_test_id("spend-total")
    hero.wait_for()

    def same_summary(params: dict[str, str]) -> dict[str, Any]:
        summary: dict[str, Any] = api.get("/api/analytics/summary", params=params).json()
        assert hero.get_attribute("data-value") == summary["cost_usd"]
        assert hero.inner_text() == usd(summary["cost_usd"])
        calls = page.get_by_test_id("kpi-calls")
        assert calls.get_attribute("data-value") == str(summary["calls"])
        assert f"{summary['calls']:,}" in calls.inner_text()
        avg = page.get_by_test_id("kpi-avg-cost").inner_text()
        assert usd(summary["avg_cost_per_call_usd"]) in avg
        savings = page.get_by_test_id("kpi-cache-savings").inner_text()
        assert usd(summary["cache_savings_usd"]) in savings
        rate = f"{Decimal(summary['error_rate']) * 100:.1f}%"
        assert rate in page.get_by_test_id("kpi-error-rate").inner_text()
        previous = page.get_by_test_id("spend-change").inner_text()
        assert usd(summary["previous"]["cost_usd"]) in previous
        return summary

    summary = eventually(lambda: same_summary({"period": "7d", "tz": "UTC"}))
    assert summary["calls"] > 0

    def same_breakdowns() -> None:
        params = {"period": "7d", "tz": "UTC", "by": "user", "limit": 5}
        users = api.get("/api/analytics/breakdown", params=params).json()["data"]
        first = page.get_by_test_id("top-users").locator("tbody tr").first
        assert users[0]["key"] in first.inner_text()
        assert usd(users[0]["cost_usd"]) in first.inner_text()
        teams = api.get(
            "/api/analytics/breakdown", params={"period": "7d", "tz": "UTC", "by": "team"}
        ).json()["data"]
        legend = page.get_by_role("table", name="Spend by team").locator("tbody tr")
        shown = [legend.nth(i).inner_text().split("\t")[:2] for i in range(legend.count())]
        expected = [[t["key"] or "(none)", usd(t["cost_usd"])] for t in teams[:7]]
        assert [[name.strip(), cost.strip()] for name, cost in shown] == expected

    eventually(same_breakdowns)

    # A team filter changes every figure and lives in the URL.
    team = api.get("/api/analytics/breakdown", params={"period": "7d", "by": "team"}).json()[
        "data"
    ][1]["key"]
    filters(page).get_by_label("Team").select_option(team)
    page.wait_for_url(re.compile(rf"team={team}"))
    eventually(lambda: same_summary({"period": "7d", "tz": "UTC", "team": team}))
    # ... and carries to the other pages.
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Requests").click()
    page.wait_for_url(re.compile(r"/requests\?"))
    assert f"team={team}" in page.url and "period=7d" in page.url


def test_custom_range_in_another_zone(page: Any, api: httpx.Client) -> None:
    page.goto("/?period=7d&tz=UTC")
    page.get_by_test_id("spend-total").wait_for()
    filters(page).get_by_label("Period").select_option("custom")
    filters(page).get_by_label("Time zone").select_option("America/New_York")
    since = (date.today() - timedelta(days=12)).isoformat()
    until = (date.today() - timedelta(days=5)).isoformat()
    filters(page).get_by_label("From").fill(since)
    filters(page).get_by_label("To (inclusive)").fill(until)
    page.wait_for_url(re.compile(rf"since={since}.*until={until}"))
    assert "tz=America%2FNew_York" in page.url
    # The range is whole local days: the API gets the day after `until` as its end.
    end = (date.fromisoformat(until) + timedelta(days=1)).isoformat()
    params = {"since": since, "until": end, "tz": "America/New_York"}
    summary = api.get("/api/analytics/summary", params=params).json()
    hero = page.get_by_test_id("spend-total")
    eventually(lambda: _assert_equal(hero.get_attribute("data-value"), summary["cost_usd"]))
    assert hero.inner_text() == usd(summary["cost_usd"])


def test_request_log_filters_paginates_and_shows_detail(page: Any, api: httpx.Client) -> None:
    page.goto("/requests?period=30d&tz=UTC")
    table = page.get_by_test_id("requests-table")
    table.wait_for()
    eventually(lambda: _assert_equal(row_ids(page), api_ids(api, since="30d")))
    assert len(row_ids(page)) == 50

    model = "claude-haiku-5-5"
    filters(page).get_by_label("Model").select_option(model)
    page.wait_for_url(re.compile(rf"model={model}"))
    eventually(lambda: _assert_equal(row_ids(page), api_ids(api, since="30d", model=model)))
    models = page.get_by_test_id("call-model").all_inner_texts()
    assert models and {m.strip() for m in models} == {model}

    request_filters(page).get_by_label("Status").select_option("error")
    eventually(
        lambda: _assert_equal(row_ids(page), api_ids(api, since="30d", model=model, status="error"))
    )
    statuses = page.eval_on_selector_all(
        "[data-testid=call-status]", "cells => cells.map(c => Number(c.dataset.status))"
    )
    assert statuses and all(code >= 400 for code in statuses)
    request_filters(page).get_by_label("Status").select_option("")

    user = api.get("/api/requests", params={"limit": 1, "model": model}).json()["data"][0]["user"]
    request_filters(page).get_by_label("User").fill(user)
    page.wait_for_url(re.compile(rf"user={user}"))
    eventually(
        lambda: _assert_equal(row_ids(page), api_ids(api, since="30d", model=model, user=user))
    )
    assert {u.strip() for u in page.get_by_test_id("call-user").all_inner_texts()} == {user}

    # Cursor pagination, back and forth.
    request_filters(page).get_by_label("User").fill("")
    eventually(lambda: _assert_equal(row_ids(page), api_ids(api, since="30d", model=model)))
    first_page = row_ids(page)
    cursor = api.get("/api/requests", params={"limit": 50, "since": "30d", "model": model}).json()[
        "next_cursor"
    ]
    page.get_by_role("button", name="Older →").click()
    eventually(
        lambda: _assert_equal(row_ids(page), api_ids(api, since="30d", model=model, cursor=cursor))
    )
    page.get_by_role("button", name="← Newer").click()
    eventually(lambda: _assert_equal(row_ids(page), first_page))

    # The detail view: cost breakdown and raw usage, as the API has them, for
    # a call that read the cache (which call is newest depends on the hour the
    # demo data was generated, so pick one that has every part to show).
    calls = [api.get(f"/api/requests/{i}").json() for i in first_page]
    cached = [c for c in calls if c["cache_read_input_tokens"]]
    assert cached, "the demo data has no cache reads on this page"
    call_id = cached[0]["id"]
    page.locator(f"tr[data-call-id='{call_id}'] a").click()
    page.wait_for_url(re.compile(rf"/requests/{call_id}"))
    call = api.get(f"/api/requests/{call_id}").json()
    detail = page.get_by_test_id("detail-cost").inner_text()
    assert detail == f"${Decimal(call['cost_usd']).quantize(Decimal('0.000001'))}"
    raw = page.get_by_test_id("raw-usage").inner_text()
    assert f'"input_tokens": {call["usage"]["input_tokens"]}' in raw
    assert "Cache read" in page.get_by_test_id("cost-breakdown").inner_text()
    page.get_by_role("link", name="← Back to the request log").click()
    page.wait_for_url(re.compile(rf"/requests\?.*model={model}"))


def _assert_equal(got: Any, want: Any) -> None:
    assert got == want


def _sdk(gateway: Live, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0, timeout=20)


def _say_hi(client: anthropic.Anthropic, max_tokens: int = 64) -> Any:
    return client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=max_tokens,
        messages=[{"role": "user", "content": "Say hi"}],
    )


def test_key_created_in_the_ui_works_with_the_sdk_and_a_budget_caps_it(
    page: Any, api: httpx.Client, gateway: Live
) -> None:
    page.goto("/keys")
    teams_form = page.get_by_role("form", name="Create a team")
    teams_form.get_by_label("New team").fill("Platform")
    teams_form.get_by_role("button", name="Add team").click()
    page.get_by_test_id("teams").get_by_text("Platform").wait_for()

    form = page.get_by_role("form", name="Create a key")
    form.get_by_label("Label").fill("e2e laptop")
    form.get_by_label("Team").select_option("Platform")
    form.get_by_label("User").fill("erin")
    form.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Copy the new key now")
    key = dialog.get_by_test_id("issued-key").input_value()
    assert key.startswith("sg-")
    dialog.get_by_role("button", name="Copy").click()
    dialog.get_by_role("button", name="I have stored it").click()
    row = page.get_by_test_id("keys-table").locator("tr", has_text="e2e laptop")
    row.wait_for()
    key_id = row.get_attribute("data-key-id")
    assert key[-4:] in row.inner_text()  # the hint, never the key

    # The request log of that key, open before the call is made ...
    page.goto(f"/requests?key={key_id}&period=24h")
    page.get_by_text("No calls match these filters.").wait_for()
    reply = _say_hi(_sdk(gateway, key))
    assert reply.content[0].type == "text"
    gateway.server.flush()
    # ... shows it without a reload (live refresh).
    first = page.get_by_test_id("requests-table").locator("tbody tr").first
    first.wait_for(timeout=20_000)
    call = api.get("/api/requests", params={"key_id": key_id}).json()["data"][0]
    assert first.get_attribute("data-call-id") == call["id"]
    assert "e2e laptop" in first.inner_text() and "Platform" in first.inner_text()
    assert call["user"] == "erin" and call["team"] == "Platform"

    # A budget on the key, created in the UI, refuses the call that would pass it.
    page.goto("/budgets")
    form = page.get_by_role("form", name="Create a budget")
    form.get_by_label("Applies to").select_option("key")
    form.get_by_label("Which key").select_option(key_id)
    form.get_by_label("Limit (USD)").fill("0.02")
    form.get_by_role("button", name="Create budget").click()
    page.get_by_text("Budget key:").first.wait_for()
    budget = next(b for b in api.get("/api/budgets").json() if b["scope_value"] == key_id)
    _say_hi(_sdk(gateway, key))  # fits: its worst case is under two cents
    with pytest.raises(anthropic.RateLimitError) as refused:
        _say_hi(_sdk(gateway, key), max_tokens=16_000)  # worst case far over the limit
    assert refused.value.status_code == 429
    gateway.server.flush()
    card = page.locator(f"[data-budget-id='{budget['id']}']")

    def budget_shown() -> None:
        now = api.get(f"/api/budgets/{budget['id']}").json()
        assert now["refused"] >= 1 and Decimal(now["spent_usd"]) > 0
        assert card.get_by_test_id("budget-refused").inner_text() == str(now["refused"])
        assert card.get_by_test_id("budget-limit").inner_text() == "$0.02"

    eventually(budget_shown, timeout=20)

    # Rotate in the UI: the old key stops, the new one works; revoke stops that too.
    page.goto("/keys")
    page.get_by_role("button", name="Rotate e2e laptop").click()
    page.get_by_role("dialog", name="Rotate e2e laptop?").get_by_role(
        "button", name="Rotate key"
    ).click()
    new_key = page.get_by_test_id("issued-key").input_value()
    page.get_by_role("button", name="I have stored it").click()
    assert new_key != key
    with pytest.raises(anthropic.AuthenticationError):
        _say_hi(_sdk(gateway, key))
    page.get_by_role("button", name="Revoke e2e laptop").click()
    page.get_by_role("dialog", name="Revoke e2e laptop?").get_by_role(
        "button", name="Revoke key"
    ).click()
    page.get_by_role("button", name="Revoke e2e laptop").wait_for(state="detached")
    with pytest.raises(anthropic.AuthenticationError):
        _say_hi(_sdk(gateway, new_key))


def test_edit_a_key_a_team_and_a_budget(page: Any, api: httpx.Client) -> None:
    """Relabel and recolour a key, rename and recolour a team, edit a budget: the API agrees."""
    team = api.post("/api/teams", json={"name": "Edits", "color": "#4f7df3"}).json()
    key = api.post("/api/keys", json={"label": "edit me", "team": "Edits"}).json()
    budget = api.post(
        "/api/budgets",
        json={"scope": "key", "value": key["id"], "limit_usd": "12.345", "name": "edit budget"},
    ).json()

    page.goto("/keys")
    page.get_by_role("button", name="Edit edit me").click()
    dialog = page.get_by_role("dialog", name="Edit edit me")
    dialog.get_by_label("Label").fill("edited key")
    dialog.get_by_label("Own colour").check()
    dialog.get_by_label("Colour", exact=True).fill("#10b981")
    dialog.get_by_label("Tags").fill("ui, e2e")
    page.screenshot(path=SCREENSHOTS / "keys-edit-dialog.png")
    dialog.get_by_role("button", name="Save key").click()
    dialog.wait_for(state="hidden")
    row = page.get_by_test_id("keys-table").locator(f"tr[data-key-id='{key['id']}']")
    eventually(lambda: _assert_in("edited key", row.inner_text()))
    assert row.get_by_test_id("key-swatch").get_attribute("data-color") == "#10b981"
    stored = api.get(f"/api/keys/{key['id']}").json()
    assert (stored["label"], stored["color"], stored["tags"]) == (
        "edited key",
        "#10b981",
        ["ui", "e2e"],
    )
    assert (stored["team"], stored["user"], stored["expires_at"]) == ("Edits", None, None)

    # A validation error from the form itself, before anything is sent.
    page.get_by_role("button", name="Edit edited key").click()
    dialog = page.get_by_role("dialog", name="Edit edited key")
    dialog.get_by_label("Label").fill(" ")
    dialog.get_by_role("button", name="Save key").click()
    assert "needs a label" in dialog.get_by_role("alert").inner_text()
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert api.get(f"/api/keys/{key['id']}").json()["label"] == "edited key"

    page.get_by_role("button", name="Edit team Edits").click()
    dialog = page.get_by_role("dialog", name="Edit team Edits")
    dialog.get_by_label("Name").fill("Edited team")
    dialog.get_by_label("Colour").fill("#c957b5")
    dialog.get_by_role("button", name="Save team").click()
    dialog.wait_for(state="hidden")
    page.get_by_test_id("teams").get_by_text("Edited team").wait_for()
    teams = {t["id"]: t for t in api.get("/api/teams").json()}
    assert (teams[team["id"]]["name"], teams[team["id"]]["color"]) == ("Edited team", "#c957b5")
    assert api.get(f"/api/keys/{key['id']}").json()["team"] == "Edited team"

    page.goto("/budgets")
    card = page.locator(f"[data-budget-id='{budget['id']}']")
    card.get_by_role("button", name="Edit edit budget").click()
    form = card.get_by_role("form", name="Edit budget edit budget")
    assert form.get_by_label("Limit (USD)").input_value() == "12.345"  # exact, not rounded
    form.get_by_label("Name").fill("edited budget")
    form.get_by_label("Limit (USD)").fill("lots")
    form.get_by_role("button", name="Save").click()
    assert "e.g. 250 or 12.50" in form.get_by_role("alert").inner_text()
    form.get_by_label("Limit (USD)").fill("40.5")
    form.get_by_label("Alert at (% of limit)").fill("90, 75")
    card.screenshot(path=SCREENSHOTS / "budget-edit-form.png")
    form.get_by_role("button", name="Save").click()
    form.wait_for(state="detached")
    eventually(lambda: _assert_in("$40.50", card.get_by_test_id("budget-limit").inner_text()))
    assert "alerts at 75%, 90%" in card.inner_text()
    stored = api.get(f"/api/budgets/{budget['id']}").json()
    assert (stored["name"], stored["limit_usd"], stored["thresholds"]) == (
        "edited budget",
        "40.500000000",
        [75, 90],
    )
    assert (stored["scope"], stored["scope_value"]) == ("key", key["id"])


def test_alert_channels_added_tested_and_deleted_in_the_ui(page: Any, api: httpx.Client) -> None:
    received: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("content-length", 0))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        page.goto("/budgets")
        page.get_by_text("Add a channel").click()
        form = page.get_by_role("form", name="Add an alert channel")
        form.get_by_label("Channel name").fill("e2e hook")
        form.get_by_label("Webhook URL").fill("not a url")
        form.get_by_role("button", name="Add channel").click()
        assert "http:// or https://" in form.get_by_role("alert").inner_text()
        form.get_by_label("Webhook URL").fill(f"http://127.0.0.1:{hook.server_port}/hook")
        form.get_by_label("Signing secret").fill("e2e-signing-secret")
        form.get_by_label("Spend spikes").uncheck()
        form.get_by_role("button", name="Add channel").click()
        channels = page.get_by_test_id("alert-channels")
        channels.get_by_text("e2e hook").wait_for()
        made = next(c for c in api.get("/api/alerts/channels").json() if c["name"] == "e2e hook")
        assert made["kind"] == "webhook"
        assert made["kinds"] == ["budget_threshold", "budget_forecast"]
        assert "e2e-signing-secret" not in str(made) and "/hook" not in made["target"]

        page.get_by_role("button", name="Send a test alert to e2e hook").click()
        row = channels.locator(f"[data-channel-id='{made['id']}']")
        row.get_by_text("Test delivered").wait_for()
        assert len(received) == 1 and b"spendgate" in received[0]
        page.get_by_role("region", name="Alerts").screenshot(path=SCREENSHOTS / "alerts-card.png")

        # E-mail: the form says what is missing before anything is sent.
        form.get_by_label("Kind").select_option("email")
        form.get_by_label("Channel name").fill("e2e mail")
        form.get_by_label("SMTP host").fill("127.0.0.1")
        form.get_by_label("From").fill("spendgate@example.com")
        form.get_by_label("To").fill("finops")
        form.get_by_role("button", name="Add channel").click()
        assert '"finops" is not an e-mail address' in form.get_by_role("alert").inner_text()

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Delete channel e2e hook").click()
        row.wait_for(state="detached")
        names = [c["name"] for c in api.get("/api/alerts/channels").json()]
        assert "e2e hook" not in names and "e2e mail" not in names
    finally:
        hook.shutdown()


def test_rate_limit_added_and_deleted_in_the_ui(page: Any, api: httpx.Client) -> None:
    page.goto("/budgets")
    page.get_by_text("Add a rate limit").click()
    form = page.get_by_role("form", name="Add a rate limit")
    form.get_by_label("Limit", exact=True).select_option("project")
    form.get_by_label("Which").fill("e2e-quiet-project")
    form.get_by_label("Limit name").fill("e2e project cap")
    form.get_by_role("button", name="Add rate limit").click()
    assert "at least one rate" in form.get_by_role("alert").inner_text()
    form.get_by_label("Requests / min").fill("30")
    form.get_by_label("Output tokens / min").fill("20,000")
    form.get_by_role("button", name="Add rate limit").click()
    table = page.get_by_test_id("limits")
    table.get_by_text("e2e project cap").wait_for()
    made = next(x for x in api.get("/api/limits").json() if x["name"] == "e2e project cap")
    assert (made["scope"], made["scope_value"]) == ("project", "e2e-quiet-project")
    assert (made["requests_per_minute"], made["output_tokens_per_minute"]) == (30, 20_000)
    assert made["input_tokens_per_minute"] is None
    row = table.locator(f"tr[data-limit-id='{made['id']}']")
    assert made["description"] in row.inner_text() and "idle" in row.inner_text()

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete rate limit e2e project cap").click()
    row.wait_for(state="detached")
    assert all(x["id"] != made["id"] for x in api.get("/api/limits").json())


def _assert_in(part: str, whole: str) -> None:
    assert part in whole, whole


def test_log_a_call_by_hand(page: Any, api: httpx.Client) -> None:
    page.goto("/log")
    form = page.get_by_role("form", name="Log a call")
    form.get_by_label("Model").fill("claude-sonnet-4-5")
    form.get_by_label("Input tokens").fill("120000")
    form.get_by_label("Output tokens").fill("4000")
    form.get_by_label("Project").fill("by-hand")
    form.get_by_role("button", name="Log call").click()
    result = page.get_by_test_id("logged")
    result.wait_for()
    call = api.get("/api/requests", params={"source": "manual", "project": "by-hand"}).json()[
        "data"
    ][0]
    assert call["input_tokens"] == 120_000 and call["output_tokens"] == 4000
    assert usd(call["cost_usd"]) in result.inner_text()
    result.get_by_role("link").click()
    page.wait_for_url(re.compile(rf"/requests/{call['id']}"))


def test_import_and_export(page: Any, api: httpx.Client) -> None:
    page.goto("/data?period=30d")
    form = page.get_by_role("form", name="Import Claude Code transcripts")
    form.get_by_label("Transcript files (.jsonl)").set_input_files(str(TRANSCRIPT))
    form.get_by_label("Attribute to user").fill("imported-user")
    form.get_by_role("button", name="Import").click()
    assert "2 new" in form.get_by_role("status").inner_text()
    form.get_by_role("button", name="Import").click()
    page.get_by_text("0 new").wait_for()
    imported = api.get("/api/requests", params={"source": "import"}).json()["data"]
    assert {c["user"] for c in imported} == {"imported-user"} and len(imported) == 2

    href = page.get_by_test_id("export-calls").get_attribute("href")
    assert href.startswith("/api/export?format=csv")
    answer = page.request.get(href)
    assert answer.status == 200
    header = answer.text().splitlines()[0]
    assert header.startswith("id,created_at,") and "cost_usd" in header


def test_keyboard_theme_and_phone_menu(playwright_browser: Any, gateway: Live, page: Any) -> None:
    page.goto("/")
    page.get_by_test_id("spend-total").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.get_by_role("button", name="Switch to dark theme").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.reload()
    page.get_by_test_id("spend-total").wait_for()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"

    context, phone, watch = new_page(
        playwright_browser, gateway, page.context.storage_state(), viewport=PHONE
    )
    phone.goto("/")
    nav = phone.get_by_role("navigation", name="Pages")
    assert not nav.is_visible()
    phone.get_by_role("button", name="Menu").click()
    nav.get_by_role("link", name="Budgets & alerts").click()
    phone.get_by_role("heading", name="Budgets & alerts").wait_for()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
    context.close()
    assert not watch.problems, watch.problems


def test_gateway_pages_are_locked_down(api: httpx.Client) -> None:
    for path in ("/", "/requests/abc", "/budgets"):
        answer = api.get(path)
        assert answer.status_code == 200
        csp = answer.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        scripts = re.findall(r"<script\b[^>]*>", answer.text)
        assert scripts and all('src="/' in tag for tag in scripts), scripts
        assert "http://" not in answer.text and "https://" not in answer.text
    assert api.get("/api/nope").headers["content-type"].startswith("application/json")


def test_local_mode_needs_no_sign_in_and_still_sends_csrf(
    playwright_browser: Any, upstream: Any, tmp_path: Path
) -> None:
    """Alone on loopback with no accounts: no sign-in page, mutations still carry the token."""
    db_url = f"sqlite:///{tmp_path / 'local.db'}"
    settings = gateway_settings(tmp_path, upstream.url, db_url)
    with GatewayServer(settings) as server:
        local = Live(server=server, team_mode=False, db_url=db_url)
        context, page, watch = new_page(playwright_browser, local, None)
        page.goto("/")
        page.get_by_role("heading", name="Overview").wait_for()
        page.get_by_text("No calls recorded in this period.").wait_for()
        assert page.get_by_role("button", name="Log out").count() == 0
        page.screenshot(path=SCREENSHOTS / "overview-empty-desktop-light.png", full_page=True)
        page.goto("/log")
        form = page.get_by_role("form", name="Log a call")
        form.get_by_label("Model").fill("claude-haiku-4-5")
        form.get_by_label("Input tokens").fill("1000000")
        form.get_by_role("button", name="Log call").click()
        page.get_by_test_id("logged").wait_for()
        page.goto("/?period=24h")
        hero = page.get_by_test_id("spend-total")
        with httpx.Client(base_url=server.url) as client:
            cost = client.get("/api/analytics/summary", params={"period": "24h"}).json()
        assert Decimal(cost["cost_usd"]) > 0
        eventually(lambda: _assert_equal(hero.get_attribute("data-value"), cost["cost_usd"]))
        context.close()
        assert not watch.problems, watch.problems

"""Screenshots of every page at laptop and phone widths, light and dark (test artifacts).

Saved to ``test-artifacts/screenshots/<page>-<width>-<theme>.png``. Each page must
also render without script errors, CSP violations or third-party requests, and
must not scroll sideways.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from e2e_support import DESKTOP, PHONE, SCREENSHOTS, Live, new_page

PAGES = [
    ("overview", "/?period=30d", "Overview"),
    ("requests", "/requests?period=7d", "Requests"),
    ("request-detail", "/requests/{call_id}", "Request"),
    ("keys", "/keys", "Keys & teams"),
    ("budgets", "/budgets", "Budgets & alerts"),
    ("log-a-call", "/log", "Log a call by hand"),
    ("import-export", "/data", "Import & export"),
]


@pytest.fixture(scope="module")
def call_id(api: httpx.Client) -> str:
    """The newest proxied call, for the detail page."""
    found: str = api.get("/api/requests", params={"limit": 1, "source": "proxy"}).json()["data"][0][
        "id"
    ]
    return found


@pytest.fixture(scope="module")
def furnished(api: httpx.Client) -> None:
    """A key, a team budget, a rate limit and an alert channel, so no page is only empty."""
    assert api.post("/api/keys", json={"label": "ci bot", "team": "Legal"}).status_code == 201
    budget = {"scope": "team", "value": "Legal", "limit_usd": "40", "name": "Legal monthly"}
    assert api.post("/api/budgets", json=budget).status_code == 201
    limit = {"scope": "key", "value": "*", "requests_per_minute": 60, "name": "60 a minute"}
    api.post("/api/limits", json=limit)  # absent on gateways without rate limits
    channel = {"name": "finops hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}
    api.post("/api/alerts/channels", json=channel)  # absent on gateways without alerts


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_every_page(
    playwright_browser: Any,
    gateway: Live,
    signed_in_state: Any,
    call_id: str,
    furnished: None,
    width: str,
    scheme: str,
) -> None:
    viewport = DESKTOP if width == "desktop" else PHONE
    context, page, watch = new_page(
        playwright_browser, gateway, signed_in_state, viewport=viewport, color_scheme=scheme
    )
    for name, path, heading in PAGES:
        page.goto(path.format(call_id=call_id))
        page.get_by_role("heading", name=heading, exact=True).wait_for()
        page.wait_for_load_state("networkidle")
        page.locator(".state-loading").first.wait_for(state="detached")
        overflow = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=SCREENSHOTS / f"{name}-{width}-{scheme}.png", full_page=True)
        assert overflow <= viewport["width"], f"{name} scrolls sideways at {width} ({overflow}px)"
    context.close()

    if gateway.team_mode:
        context, page, more = new_page(
            playwright_browser, gateway, None, viewport=viewport, color_scheme=scheme
        )
        page.goto("/")
        page.get_by_role("heading", name="Sign in").wait_for()
        page.screenshot(path=SCREENSHOTS / f"login-{width}-{scheme}.png", full_page=True)
        context.close()
        watch.problems.extend(more.problems)
    assert not watch.problems, "\n".join(watch.problems)

"""Helpers shared by the end-to-end tests: the live gateway record, watched pages, formats."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, TypeVar

from spendgate.testing.gateway import GatewayServer

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
E2E_DIR = Path(__file__).parent
ROOT = E2E_DIR.parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("SPENDGATE_CHROMIUM", "/usr/bin/chromium")
ADMIN = ("admin", "correct horse battery staple")
VIEWER = ("vic", "viewer of one team only")
VIEWER_TEAM = "Legal"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Live:
    """The running gateway and what the tests know about it."""

    server: GatewayServer
    team_mode: bool
    db_url: str
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url


class PageWatch:
    """What a page did that it must not: CSP violations, script errors, foreign requests."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.problems: list[str] = []

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("request", self._request)

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text:
            self.problems.append(f"CSP: {text}")
        elif message.type == "error" and "Failed to load resource" not in text:
            self.problems.append(f"console error: {text}")

    def _request(self, request: Any) -> None:
        url: str = request.url
        if not (url.startswith(self.base_url) or url.startswith(("data:", "blob:"))):
            self.problems.append(f"third-party request: {url}")


def new_page(
    browser: Any,
    gateway: Live,
    state: dict[str, Any] | None,
    *,
    viewport: dict[str, int] = DESKTOP,
    color_scheme: str = "light",
) -> tuple[Any, Any, PageWatch]:
    """A fresh context (signed in when ``state``) and page, watched for problems."""
    context = browser.new_context(
        base_url=gateway.url,
        viewport=viewport,
        color_scheme=color_scheme,
        storage_state=state,
        timezone_id="UTC",
        locale="en-US",
    )
    # Refresh every 5 s so "appears without a reload" is quick to observe.
    context.add_init_script("localStorage.setItem('spendgate.refresh', '5000')")
    context.set_default_timeout(15_000)
    page = context.new_page()
    watch = PageWatch(gateway.url)
    watch.attach(page)
    return context, page, watch


def usd(value: str) -> str:
    """The dashboard's money format for amounts of a cent or more: $1,234.57 (half to even)."""
    amount = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def eventually(check: Callable[[], T], timeout: float = 15.0) -> T:
    """``check()`` once it stops raising AssertionError (data refreshes, hours roll over)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)

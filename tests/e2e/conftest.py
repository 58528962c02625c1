"""End-to-end fixtures: a live gateway with demo data, Debian's Chromium driven by Playwright.

These tests run with ``make e2e`` (part of ``make test``) or when ``tests/e2e`` is
named on the pytest command line; a plain ``pytest`` of the whole suite skips
them. In CI (``CI=true``) a missing browser, bundle or Playwright fails them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from e2e_support import (
    ADMIN,
    CHROMIUM,
    E2E_DIR,
    IN_CI,
    SCREENSHOTS,
    VIEWER,
    VIEWER_TEAM,
    Live,
    new_page,
)

from spendgate.api.dashboard import STATIC_DIR
from spendgate.cli.main import cli
from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.testing.upstream import FakeUpstream


def _explicitly_asked(config: pytest.Config) -> bool:
    if os.environ.get("SPENDGATE_E2E"):
        return True
    for arg in config.args:
        path = Path(str(arg).split("::")[0]).resolve()
        if path == E2E_DIR or E2E_DIR in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip these tests in a whole-suite run; ``make e2e`` runs them."""
    if _explicitly_asked(config):
        return
    skip = pytest.mark.skip(reason="end-to-end browser tests run with `make e2e`")
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).parents:
            item.add_marker(skip)


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; no browser is ever downloaded."""
    if not Path(CHROMIUM).exists():
        _unavailable(
            f"no Chromium at {CHROMIUM}: install Debian's (apt-get install chromium) "
            "or set SPENDGATE_CHROMIUM; .ci/run installs it"
        )
    if not (STATIC_DIR / "index.html").is_file():
        _unavailable(f"the dashboard is not built in {STATIC_DIR}: run `make web`")
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright_browser(chromium_path: str) -> Iterator[Any]:
    """Headless Chromium under Playwright (the ``playwright`` package of the dev extra)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing: pip install -e '.[dev]'")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    """The fake Anthropic API on a loopback port, for the whole e2e session."""
    with FakeUpstream() as fake:
        yield fake


def _create_users(db_url: str) -> bool:
    """An admin, and a viewer of one team, made with the CLI; False when this version has no
    accounts (the dashboard then runs in local mode)."""
    runner = CliRunner()
    if "users" not in cli.commands:
        return False
    team = runner.invoke(cli, ["teams", "create", VIEWER_TEAM, "--database-url", db_url])
    assert team.exit_code == 0, team.output
    for (username, password), extra in (
        (ADMIN, []),
        (VIEWER, ["--role", "viewer", "--team", VIEWER_TEAM]),
    ):
        args = ["users", "create", username, *extra, "--password-stdin", "--database-url", db_url]
        result = runner.invoke(cli, args, input=password + "\n")
        assert result.exit_code == 0, result.output
    return True


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Live]:
    """A live gateway on a temporary SQLite file: 30 days of demo data and an admin user."""
    home = tmp_path_factory.mktemp("e2e")
    db_url = f"sqlite:///{home / 'spendgate.db'}"
    runner = CliRunner()
    args = ["demo", "--days", "30", "--calls-per-day", "40", "--seed", "7"]
    demo = runner.invoke(cli, [*args, "--database-url", db_url])
    assert demo.exit_code == 0, demo.output
    team_mode = _create_users(db_url)
    # Proxy keys forward with the server's credential (the fake upstream accepts any).
    settings = gateway_settings(home, upstream.url, db_url, anthropic_api_key="sk-ant-e2e")
    with GatewayServer(settings) as server:
        yield Live(server=server, team_mode=team_mode, db_url=db_url)


@pytest.fixture(scope="session")
def api(gateway: Live) -> Iterator[httpx.Client]:
    """The public JSON API, signed in as the admin (what the dashboard's numbers must equal)."""
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        me = client.get("/api/auth/me")
        if gateway.team_mode:
            username, password = ADMIN
            body = {"username": username, "password": password}
            login = client.post("/api/auth/login", json=body)
            assert login.status_code == 200, login.text
            client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        elif me.status_code == 200 and me.json().get("csrf_token"):
            client.headers["X-CSRF-Token"] = me.json()["csrf_token"]
        client.headers["Origin"] = gateway.url
        yield client


@pytest.fixture(scope="session")
def signed_in_state(gateway: Live, playwright_browser: Any) -> dict[str, Any] | None:
    """Browser storage (the session cookie) of the admin, signed in through the login page."""
    if not gateway.team_mode:
        return None
    context = playwright_browser.new_context(base_url=gateway.url)
    page = context.new_page()
    page.goto("/")
    page.wait_for_url("**/login**")
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


@pytest.fixture
def page(playwright_browser: Any, gateway: Live, signed_in_state: Any) -> Iterator[Any]:
    """A signed-in desktop page; fails the test on CSP violations, errors or foreign requests."""
    context, page, watch = new_page(playwright_browser, gateway, signed_in_state)
    yield page
    context.close()
    assert not watch.problems, "\n".join(watch.problems)


@pytest.fixture(scope="session", autouse=True)
def _fresh_artifacts() -> None:
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

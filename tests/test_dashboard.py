"""Serving the dashboard bundle: client routes, assets, the missing-bundle page, headers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.responses import JSONResponse

from spendgate.api.dashboard import CONTENT_SECURITY_POLICY, DashboardFiles, is_client_route


async def _api(scope: dict, receive: object, send: object) -> None:
    response = JSONResponse({"api": scope["path"]}, status_code=404)
    await response(scope, receive, send)  # type: ignore[arg-type]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A built bundle: index.html, one hashed asset, a favicon."""
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><div id=root></div>")
    (static / "assets" / "index-abc123.js").write_text("console.log(1)")
    (static / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the bundle")
    return static


def _client(static: Path) -> httpx.AsyncClient:
    app = DashboardFiles(_api, static_dir=static)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize("path", ["/", "/requests", "/requests/abc", "/keys", "/login"])
async def test_client_routes_load_the_app_with_security_headers(bundle: Path, path: str) -> None:
    async with _client(bundle) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert "id=root" in response.text
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"


async def test_assets_are_immutable_and_typed(bundle: Path) -> None:
    async with _client(bundle) as client:
        js = await client.get("/assets/index-abc123.js")
        icon = await client.head("/favicon.svg")
    assert js.status_code == 200 and js.text == "console.log(1)"
    assert js.headers["content-type"].endswith("javascript; charset=utf-8")
    assert "immutable" in js.headers["cache-control"]
    assert icon.status_code == 200 and icon.content == b""
    assert icon.headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize(
    "path", ["/api/keys", "/api/auth/me", "/health", "/v1/models", "/metrics", "/nope", "/x.js"]
)
async def test_everything_else_reaches_the_api(bundle: Path, path: str) -> None:
    async with _client(bundle) as client:
        response = await client.get(path)
    assert response.json() == {"api": path}


async def test_no_file_outside_the_bundle(bundle: Path) -> None:
    async with _client(bundle) as client:
        response = await client.get("/assets/../../secret.txt")
        encoded = await client.get("/%2e%2e/secret.txt")
    assert "outside" not in response.text and "outside" not in encoded.text


async def test_mutations_are_not_served_from_the_bundle(bundle: Path) -> None:
    async with _client(bundle) as client:
        response = await client.post("/keys")
    assert response.json() == {"api": "/keys"}


async def test_missing_bundle_says_how_to_build_it(tmp_path: Path) -> None:
    async with _client(tmp_path / "absent") as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert "make web" in response.text and "make run" in response.text
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_client_routes() -> None:
    assert is_client_route("/") and is_client_route("/budgets")
    assert not is_client_route("/keysmith") and not is_client_route("/api")

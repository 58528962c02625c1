"""``/livez`` and ``/readyz``: ready only when the database, its schema and the writer are."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.testing.relay import TcpRelay
from spendgate.testing.upstream import FakeUpstream


def _ready(gateway: GatewayServer) -> tuple[int, dict[str, Any]]:
    resp = httpx.get(f"{gateway.url}/readyz", timeout=15)
    body: dict[str, Any] = resp.json()
    return resp.status_code, body


def test_not_ready_while_draining_or_behind_on_migrations(
    sqlite_gateway: GatewayServer,
) -> None:
    assert _ready(sqlite_gateway)[0] == 200
    app = sqlite_gateway.app
    assert app.operations is not None
    heads = app.operations.heads
    app.operations.heads = ("9999_from_a_newer_version",)
    status, body = _ready(sqlite_gateway)
    assert status == 503 and "spendgate db upgrade" in body["checks"]["migrations"]
    app.operations.heads = heads
    app.draining = True
    status, body = _ready(sqlite_gateway)
    assert status == 503 and body["checks"]["accepting"] == "shutting down"
    assert httpx.get(f"{sqlite_gateway.url}/livez").status_code == 200  # alive all along
    app.draining = False


@pytest.fixture
def relayed_pg_url(pg_url: str) -> Iterator[tuple[str, TcpRelay]]:
    """The test database reached through a relay the test can cut."""
    url = make_url(pg_url)
    relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield url.set(port=relay.port).render_as_string(hide_password=False), relay
    finally:
        relay.close()


@pytest.mark.postgres
def test_not_ready_while_the_database_is_unreachable(
    tmp_path: Path, upstream: FakeUpstream, relayed_pg_url: tuple[str, TcpRelay]
) -> None:
    url, relay = relayed_pg_url
    with GatewayServer(gateway_settings(tmp_path, upstream.url, url)) as gateway:
        assert _ready(gateway)[0] == 200
        relay.cut()
        status, body = _ready(gateway)
        assert status == 503
        assert "SPENDGATE_DATABASE_URL" in body["checks"]["database"]
        assert httpx.get(f"{gateway.url}/livez").status_code == 200
        relay.restore()
        deadline = time.monotonic() + 20
        while _ready(gateway)[0] != 200:
            assert time.monotonic() < deadline, "not ready again after the database came back"
            time.sleep(0.1)

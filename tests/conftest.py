"""Fixtures named for what they return: upstream, db_url, store, gateway, sdk clients."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from spendgate.storage import Store
from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.testing.upstream import FakeUpstream

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("SPENDGATE_TEST_POSTGRES_URL")


def _pg_admin_url() -> str:
    """The PostgreSQL server to create test databases on; fails in CI if there is none."""
    if PG_ADMIN_URL:
        return PG_ADMIN_URL
    message = (
        "no PostgreSQL for tests: set SPENDGATE_TEST_POSTGRES_URL to a superuser URL, "
        "e.g. postgresql://spendgate:spendgate@127.0.0.1:5432/postgres (.ci/run does this)"
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _admin_engine_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin_url = _pg_admin_url()
    name = f"sg_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_admin_engine_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {admin_url} is not usable: {exc}")
        pytest.skip(f"PostgreSQL at {admin_url} is not usable: {exc}")
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: a real SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'spendgate.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each database."""
    opened = Store.open(db_url)
    yield opened
    opened.close()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    """The fake Anthropic API on a loopback port."""
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def gateway(tmp_path: Path, upstream: FakeUpstream, db_url: str) -> Iterator[GatewayServer]:
    """A running gateway in front of the fake upstream, on each database."""
    with GatewayServer(gateway_settings(tmp_path, upstream.url, db_url)) as server:
        yield server


@pytest.fixture
def sqlite_gateway(tmp_path: Path, upstream: FakeUpstream) -> Iterator[GatewayServer]:
    """A running gateway on SQLite only (for tests that are about the proxy, not storage)."""
    url = f"sqlite:///{tmp_path / 'spendgate.db'}"
    with GatewayServer(gateway_settings(tmp_path, upstream.url, url)) as server:
        yield server

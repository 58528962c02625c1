"""Proxy keys end to end: issue, use with the SDK, attribute, revoke, rotate, keep secret."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from click.testing import CliRunner

from spendgate.cli.main import cli
from spendgate.testing.gateway import GatewayServer, gateway_settings
from spendgate.testing.upstream import FakeUpstream
from spendgate.vault import SecretBox, hash_key

UPSTREAM_KEY = "sk-ant-api03-UPSTREAM-never-in-clear-0123456789"
MESSAGE = {"role": "user", "content": "hi"}


def _post(gateway: GatewayServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = httpx.post(f"{gateway.url}{path}", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _recorded(gateway: GatewayServer, count: int) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = []
    for _ in range(100):
        gateway.flush()
        data = httpx.get(f"{gateway.url}/api/requests", params={"limit": 500}).json()["data"]
        if len(data) >= count:
            break
        time.sleep(0.02)
    return data


def _issue(gateway: GatewayServer, **extra: Any) -> dict[str, Any]:
    return _post(gateway, "/api/keys", {"label": "alice", "upstream_key": UPSTREAM_KEY, **extra})


def test_key_calls_are_attributed_and_use_the_attached_credential(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    _post(gateway, "/api/teams", {"name": "Engineering", "color": "#3b82f6"})
    key = _issue(gateway, team="Engineering", user="alice", project="apollo", tags=["cli"])
    assert key["key"].startswith("sg-") and len(key["key"]) >= 35
    # api_key -> x-api-key; auth_token -> Authorization: Bearer (Claude Code's two ways)
    for client in (
        anthropic.Anthropic(base_url=gateway.url, api_key=key["key"], max_retries=0),
        anthropic.Anthropic(base_url=gateway.url, auth_token=key["key"], max_retries=0),
    ):
        client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=10,
            messages=[MESSAGE],
            extra_headers={
                "x-spendgate-project": "hermes",
                "x-spendgate-tags": "nightly",
                "x-claude-code-session-id": "sess-42",
            },
        )
        served = upstream.served[-1].headers
        assert served["x-api-key"] == UPSTREAM_KEY
        assert "authorization" not in served
        assert not any(name.startswith("x-spendgate-") for name in served)
    records = _recorded(gateway, 2)
    assert len(records) == 2
    for rec in records:
        assert rec["key_id"] == key["id"]
        assert rec["key_label"] == "alice"
        assert rec["team"] == "Engineering"
        assert rec["user"] == "alice"
        assert rec["project"] == "hermes"  # the header overrides the key's default
        assert rec["tags"] == ["cli", "nightly"]
        assert rec["session_id"] == "sess-42"
        assert rec["cost_usd"] is not None


def _patch(gateway: GatewayServer, path: str, body: dict[str, Any], status: int = 200) -> Any:
    resp = httpx.patch(f"{gateway.url}{path}", json=body, timeout=10)
    assert resp.status_code == status, resp.text
    return resp.json() if status == 200 else resp.json()["error"]["message"]


def test_key_edits_change_its_attribution_at_once(gateway: GatewayServer) -> None:
    """Label, colour, team, user, project, tags and expiry: new calls carry the new values."""
    for team in ("Engineering", "Research"):
        _post(gateway, "/api/teams", {"name": team})
    key = _issue(gateway, team="Engineering", user="alice", tags=["cli"], color="#3B82F6")
    assert key["color"] == "#3b82f6"
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key["key"], max_retries=0)
    client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[MESSAGE])
    _recorded(gateway, 1)  # cached grant of the old attribution, then the edit drops it
    edited = _patch(
        gateway,
        f"/api/keys/{key['id']}",
        {"label": "alice desktop", "color": "#10B981", "team": "Research", "user": None,
         "project": "apollo", "tags": ["ci", "eval"], "expires_at": "2999-01-01T00:00:00Z"},
    )  # fmt: skip
    assert {k: edited[k] for k in ("label", "color", "team", "user", "project", "tags")} == {
        "label": "alice desktop",
        "color": "#10b981",
        "team": "Research",
        "user": None,
        "project": "apollo",
        "tags": ["ci", "eval"],
    }
    assert edited["expires_at"] == "2999-01-01T00:00:00Z" and edited["status"] == "active"
    client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[MESSAGE])
    newest = _recorded(gateway, 2)[0]
    assert (newest["key_label"], newest["team"], newest["user"], newest["project"]) == (
        "alice desktop",
        "Research",
        None,
        "apollo",
    )
    assert newest["tags"] == ["ci", "eval"]
    by_key = httpx.get(
        f"{gateway.url}/api/analytics/breakdown", params={"by": "key", "period": "24h"}
    ).json()["data"]
    assert [(r["key"], r["color"]) for r in by_key] == [(key["id"], "#10b981")]
    # Left out: unchanged; null clears (colour, expiry); the secret still works.
    again = _patch(gateway, f"/api/keys/{key['id']}", {"color": None, "expires_at": None})
    assert again["color"] is None and again["expires_at"] is None
    assert again["label"] == "alice desktop" and again["team"] == "Research"
    listed = {k["id"]: k for k in httpx.get(f"{gateway.url}/api/keys").json()}
    assert listed[key["id"]]["color"] is None and "key" not in listed[key["id"]]
    _patch(gateway, f"/api/keys/{key['id']}", {"color": "#abcdef", "team": None})
    listed = {k["id"]: k for k in httpx.get(f"{gateway.url}/api/keys").json()}
    assert (listed[key["id"]]["color"], listed[key["id"]]["team"]) == ("#abcdef", None)
    # An expiry in the past ends the key like any expired one.
    _patch(gateway, f"/api/keys/{key['id']}", {"expires_at": "2020-01-01T00:00:00+00:00"})
    assert "expired" in _auth_error(gateway, key["key"])
    # Rotation keeps the colour.
    rotated = _post(gateway, f"/api/keys/{key['id']}/rotate", {})
    assert rotated["color"] == "#abcdef"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"color": "red"}, 400, "#rrggbb"),
        ({"color": "#12345"}, 400, "e.g. #3b82f6"),
        ({"label": None}, 400, "leave it out to keep it"),
        ({"label": ""}, 422, "label"),
        ({"colour": "#123456"}, 422, "colour"),
        ({"team": "Nope"}, 404, "spendgate teams list"),
        ({"expires_at": "2030-01-01T00:00:00"}, 400, "time zone"),
        ({"tags": [str(n) for n in range(21)]}, 422, "tags"),
    ],
)
def test_key_edit_errors_say_how_to_fix_them(
    sqlite_gateway: GatewayServer, body: dict[str, Any], status: int, says: str
) -> None:
    key = _issue(sqlite_gateway, label="kept")
    assert says in _patch(sqlite_gateway, f"/api/keys/{key['id']}", body, status)
    assert httpx.get(f"{sqlite_gateway.url}/api/keys/{key['id']}").json()["label"] == "kept"
    missing = _patch(sqlite_gateway, "/api/keys/nope", {"label": "x"}, 404)
    assert "spendgate keys list" in missing


def test_team_rename_carries_its_budgets_and_limits(gateway: GatewayServer) -> None:
    team = _post(gateway, "/api/teams", {"name": "Eng", "color": "#3b82f6"})
    _post(gateway, "/api/teams", {"name": "Ops"})
    key = _issue(gateway, team="Eng")
    budget = _post(
        gateway, "/api/budgets", {"scope": "team", "value": "Eng", "limit_usd": "0.000001"}
    )
    limit = _post(
        gateway, "/api/limits", {"scope": "team", "value": "Eng", "requests_per_minute": 1000}
    )
    renamed = _patch(gateway, "/api/teams/Eng", {"name": "Engineering", "color": "#F59E0B"})
    assert renamed == {**team, "name": "Engineering", "color": "#f59e0b"}
    assert _patch(gateway, f"/api/teams/{team['id']}", {}) == renamed
    assert httpx.get(f"{gateway.url}/api/budgets/{budget['id']}").json()["scope_value"] == (
        "Engineering"
    )
    assert httpx.get(f"{gateway.url}/api/limits/{limit['id']}").json()["scope_value"] == (
        "Engineering"
    )
    assert httpx.get(f"{gateway.url}/api/keys/{key['id']}").json()["team"] == "Engineering"
    # The key's calls now count against the renamed team's (tiny) budget.
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key["key"], max_retries=0)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[MESSAGE])
    assert "exists already" in _patch(gateway, "/api/teams/Engineering", {"name": "Ops"}, 409)
    assert "#rrggbb" in _patch(gateway, "/api/teams/Ops", {"color": "blue"}, 400)
    assert "leave it out" in _patch(gateway, "/api/teams/Ops", {"name": None}, 400)
    assert "spendgate teams list" in _patch(gateway, "/api/teams/Eng", {"color": "#000000"}, 404)
    bad = httpx.post(f"{gateway.url}/api/teams", json={"name": "Red", "color": "red"})
    assert bad.status_code == 400 and "#rrggbb" in bad.json()["error"]["message"]


def _auth_error(gateway: GatewayServer, secret: str) -> str:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=secret, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as refused:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[MESSAGE])
    error = refused.value.body["error"]  # type: ignore[index]
    assert error["type"] == "authentication_error"
    return str(error["message"])


def test_revoked_expired_unknown_and_rotated_keys(sqlite_gateway: GatewayServer) -> None:
    gw = sqlite_gateway
    key = _issue(gw)
    ok = anthropic.Anthropic(base_url=gw.url, api_key=key["key"], max_retries=0)
    ok.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[MESSAGE])
    revoked = httpx.post(f"{gw.url}/api/keys/{key['id']}/revoke").json()
    assert revoked["status"] == "revoked"
    assert "revoked" in _auth_error(gw, key["key"])
    assert "unknown proxy key" in _auth_error(gw, "sg-" + "x" * 43)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    expired = _issue(gw, expires_at=past)
    assert "expired" in _auth_error(gw, expired["key"])

    old = _issue(gw, label="rotating")
    new = _post(gw, f"/api/keys/{old['id']}/rotate", {})
    assert new["key"] != old["key"] and new["label"] == "rotating"
    assert "revoked" in _auth_error(gw, old["key"])
    fresh = anthropic.Anthropic(base_url=gw.url, api_key=new["key"], max_retries=0)
    fresh.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[MESSAGE])
    listed = httpx.get(f"{gw.url}/api/keys").json()
    assert {k["id"]: k["rotated_to"] for k in listed}[old["id"]] == new["id"]


def test_revocation_from_another_process_takes_effect_within_the_ttl(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    db = f"sqlite:///{tmp_path / 'spendgate.db'}"
    settings = gateway_settings(tmp_path, upstream.url, db, key_cache_ttl=0.2)
    with GatewayServer(settings) as gw:
        key = _issue(gw)
        client = anthropic.Anthropic(base_url=gw.url, api_key=key["key"], max_retries=0)
        client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[MESSAGE])
        result = CliRunner().invoke(cli, ["keys", "revoke", key["id"], "--database-url", db])
        assert result.exit_code == 0, result.output
        time.sleep(0.3)
        assert "revoked" in _auth_error(gw, key["key"])


def test_secrets_never_stored_logged_or_returned_in_clear(
    tmp_path: Path, sqlite_gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gw = sqlite_gateway
    key = _issue(gw)
    client = anthropic.Anthropic(base_url=gw.url, api_key=key["key"], max_retries=0)
    client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[MESSAGE])
    revoked = _issue(gw)
    httpx.post(f"{gw.url}/api/keys/{revoked['id']}/revoke")
    _auth_error(gw, revoked["key"])
    _recorded(gw, 2)
    answers = [
        httpx.get(f"{gw.url}{path}").text
        for path in ("/api/keys", f"/api/keys/{key['id']}", "/api/requests", "/health")
    ]
    secrets = [UPSTREAM_KEY, key["key"], revoked["key"]]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "spendgate.db" for p in files)
    for secret in secrets:
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"{secret[:6]}... in {path}"
        for answer in answers:
            assert secret not in answer
        assert secret not in caplog.text
    # What is stored instead: the hash of the proxy key, the credential encrypted.
    listed = {k["id"]: k for k in httpx.get(f"{gw.url}/api/keys").json()}
    assert listed[key["id"]]["hint"] == "sg-..." + key["key"][-4:]
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("spendgate.db*"))  # with the WAL
    assert hash_key(key["key"]).encode() in stored
    key_file = gw.settings.home / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    box = SecretBox.from_settings(gw.settings, create=False)
    assert box.decrypt(box.encrypt(UPSTREAM_KEY)) == UPSTREAM_KEY


def _cli(db: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--database-url", db])
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if "--json" in args or args[1] == "list" else result.output


def test_cli_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPENDGATE_HOME", str(tmp_path / "home"))
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    _cli(db, "teams", "create", "Research", "--json")
    key = _cli(db, "keys", "create", "--label", "bob", "--team", "Research", "--json")
    assert key["key"].startswith("sg-") and key["id"] and key["team"] == "Research"
    budget = _cli(
        db, "budgets", "create", "--key", key["id"], "--limit-usd", "25", "--period", "monthly",
        "--json",
    )  # fmt: skip
    assert (budget["scope"], budget["scope_value"], budget["limit_usd"]) == (
        "key",
        key["id"],
        "25.000000000",
    )
    for flag in (["--team", "Research"], ["--user", "bob"], ["--project", "p"], ["--tag", "t"]):
        made = _cli(db, "budgets", "create", *flag, "--limit-usd", "1", "--json")
        assert made["scope"] == flag[0][2:]
    made = _cli(
        db, "budgets", "create", "--global", "--limit-usd", "9", "--period", "daily", "--json"
    )
    assert made["scope"] == "global" and made["period"] == "daily"
    assert len(_cli(db, "budgets", "list")) == 6
    listed = _cli(db, "keys", "list")
    assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0]
    bad = CliRunner().invoke(cli, ["budgets", "create", "--team", "Nope", "--limit-usd", "1",
                                   "--database-url", db])  # fmt: skip
    assert bad.exit_code != 0 and "spendgate teams list" in bad.output
    for scopes in ([], ["--global", "--user", "x"], ["--team", "Research", "--tag", "t"]):
        none = CliRunner().invoke(
            cli, ["budgets", "create", *scopes, "--limit-usd", "1", "--database-url", db]
        )
        assert none.exit_code == 2, none.output
        assert "give exactly one of --global, --team, --key, --user, --project, --tag" in (
            none.output
        )
    assert len(_cli(db, "budgets", "list")) == 6


def test_cli_updates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPENDGATE_HOME", str(tmp_path / "home"))
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    _cli(db, "teams", "create", "Research", "--json")
    key = _cli(db, "keys", "create", "--label", "bob", "--color", "#123ABC", "--json")
    assert key["color"] == "#123abc"
    team = _cli(db, "teams", "update", "Research", "--name", "R&D", "--color", "#ABCDEF", "--json")
    assert (team["name"], team["color"]) == ("R&D", "#abcdef")
    edited = _cli(
        db, "keys", "update", key["id"], "--label", "bob laptop", "--color", "#00ff00",
        "--team", "R&D", "--owner", "bob", "--project", "apollo", "--tags", "cli, eval",
        "--expires", "2999-01-01", "--json",
    )  # fmt: skip
    assert {k: edited[k] for k in ("label", "color", "team", "user", "project", "tags")} == {
        "label": "bob laptop",
        "color": "#00ff00",
        "team": "R&D",
        "user": "bob",
        "project": "apollo",
        "tags": ["cli", "eval"],
    }
    assert edited["expires_at"].startswith("2999-01-01")
    cleared = _cli(
        db, "keys", "update", key["id"], "--no-expiry", "--no-team", "--no-color", "--user", "",
        "--tags", "", "--json",
    )  # fmt: skip
    assert (cleared["expires_at"], cleared["team"], cleared["color"], cleared["user"]) == (
        (None,) * 4
    )
    assert cleared["tags"] == [] and cleared["label"] == "bob laptop"
    budget = _cli(db, "budgets", "create", "--team", "R&D", "--limit-usd", "5", "--json")
    updated = _cli(
        db, "budgets", "update", budget["id"], "--name", "R&D monthly", "--limit-usd", "7.5",
        "--thresholds", "80,50", "--json",
    )  # fmt: skip
    assert (updated["name"], updated["limit_usd"], updated["thresholds"]) == (
        "R&D monthly",
        "7.500000000",
        [50, 80],
    )
    for args, says in (
        (["keys", "update", key["id"], "--color", "green"], "#rrggbb"),
        (["keys", "update", key["id"], "--color", "#000000", "--no-color"], "not both"),
        (["keys", "update", key["id"]], "nothing to change"),
        (["keys", "update", "nope", "--label", "x"], "spendgate keys list"),
        (["teams", "update", "R&D"], "--name and/or --color"),
        (["teams", "update", "Nope", "--color", "#000000"], "spendgate teams list"),
        (["budgets", "update", budget["id"], "--thresholds", "high"], "e.g. 50,80,100"),
        (["budgets", "update", budget["id"], "--thresholds", "0"], "between 1 and 1000"),
        (["budgets", "update", budget["id"]], "--limit-usd"),
    ):
        bad = CliRunner().invoke(cli, [*args, "--database-url", db])
        assert bad.exit_code != 0 and says in bad.output, (args, bad.output)


async def test_resolver_looks_keys_up_by_their_hash_and_bounds_what_it_keeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryptography.fernet import Fernet

    from spendgate import keys
    from spendgate.proxy.auth import AuthError

    asked: list[str] = []

    class Store:
        def key_by_hash(self, digest: str) -> None:
            asked.append(digest)
            return None  # unknown

    monkeypatch.setattr(keys, "MAX_CACHED", 3)
    box = SecretBox(Fernet.generate_key())
    resolver = keys.KeyResolver(Store(), lambda: box, ttl=0)  # type: ignore[arg-type]
    for i in range(10):
        with pytest.raises(AuthError, match="unknown proxy key"):
            await resolver(f"sg-random-{i}")
        assert resolver._digest.cache_info().currsize <= 3
    assert asked == [hash_key(f"sg-random-{i}") for i in range(10)]
    with pytest.raises(AuthError):
        await resolver("sg-random-9")  # remembered digest, asked again (ttl 0)
    assert asked[-1] == hash_key("sg-random-9")

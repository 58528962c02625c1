"""Accounts and access: sign-in, CSRF, local vs team mode, the authorization matrix, secrets."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import routing
from sqlalchemy import select

from spendgate.accounts import Accounts, LoginThrottle
from spendgate.api.access import Access, classify
from spendgate.app import create_app
from spendgate.cli.main import cli
from spendgate.safety import check_accounts
from spendgate.settings import ConfigError, Settings
from spendgate.storage.accounts_schema import api_tokens, sessions, users
from spendgate.testing.gateway import GatewayServer, gateway_settings

PASSWORD = "correct horse battery staple"
VIEWER_PASSWORD = "viewer-password-9876"
DUMMY = "nonexistent"
SINCE = "2026-10-01T00:00:00Z"


def _accounts(gw: GatewayServer) -> Accounts:
    assert gw.app.accounts is not None
    return gw.app.accounts


def _login(gw: GatewayServer, username: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=gw.url, timeout=30)
    resp = client.post("/api/auth/login", json={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return client, resp.json()["csrf_token"]


def _error(resp: httpx.Response) -> str:
    code: str = resp.json()["error"]["code"]
    return code


def _route_table(app: Any) -> list[tuple[str, str, bool]]:
    """(method, path template, is an API route) for every route of the management app."""
    contexts = routing.iter_route_contexts(app.routes)
    out = []
    for ctx in contexts:
        methods = getattr(ctx, "methods", None)
        if not methods:  # a mount: must stay outside the API
            out.append(("*", ctx.path_format, False))
            continue
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            out.append((method, ctx.path_format, True))
    return out


def test_every_management_route_is_classified(tmp_path: Path) -> None:
    app = create_app(Settings(_env_file=None, home=tmp_path)).management
    table = _route_table(app)
    assert len(table) > 40
    unclassified = [f"{m} {p}" for m, p, api in table if api and classify(m, p) is None]
    assert not unclassified, (
        f"routes without an access rule (admin-only until classified): {unclassified}; "
        "add them to POLICY in src/spendgate/api/access.py"
    )
    mounts = [p for m, p, api in table if not api and p.startswith(("/api", "/v1"))]
    assert not mounts, f"mounts bypass the access dependency: {mounts}"


# -- local mode ----------------------------------------------------------------


def test_local_mode_needs_no_sign_in(gateway: GatewayServer) -> None:
    me = httpx.get(f"{gateway.url}/api/auth/me").json()
    assert me["mode"] == "local"
    assert me["user"] == {
        "id": None,
        "username": "local",
        "role": "admin",
        "teams": None,
        "kind": "local",
    }
    assert me["csrf_token"]
    # Scripts send no Origin and no CSRF token, and keep working.
    assert httpx.post(f"{gateway.url}/api/teams", json={"name": "Red"}).status_code == 201
    assert httpx.get(f"{gateway.url}/api/keys").status_code == 200
    report = httpx.get(f"{gateway.url}/v1/organizations/cost_report", params={"starting_at": SINCE})
    assert report.status_code == 200
    assert httpx.post(f"{gateway.url}/api/auth/logout").json() == {"logged_out": True}


def test_local_mode_refuses_cross_site_browser_requests(sqlite_gateway: GatewayServer) -> None:
    gw = sqlite_gateway
    url = f"{gw.url}/api/teams"
    csrf = httpx.get(f"{gw.url}/api/auth/me").json()["csrf_token"]
    refused = [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:5173", "X-CSRF-Token": csrf},  # another local site
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "X-CSRF-Token": csrf},
        {"Origin": gw.url},  # own origin but no CSRF token
        {"Origin": gw.url, "X-CSRF-Token": "wrong"},
    ]
    for n, headers in enumerate(refused):
        resp = httpx.post(url, json={"name": f"t{n}"}, headers=headers)
        assert resp.status_code == 403, (headers, resp.text)
        assert _error(resp) == "csrf_failed"
    ok = {"Origin": gw.url, "Sec-Fetch-Site": "same-origin", "X-CSRF-Token": csrf}
    assert httpx.post(url, json={"name": "dashboard"}, headers=ok).status_code == 201
    # DNS rebinding (a foreign name pointing at 127.0.0.1) and reverse proxies are not local.
    for headers in ({"Host": "evil.example"}, {"X-Forwarded-For": "203.0.113.9"}):
        resp = httpx.get(f"{gw.url}/api/requests", headers=headers)
        assert resp.status_code == 401, resp.text
        assert "spendgate users create" in resp.json()["error"]["message"]
        me = httpx.get(f"{gw.url}/api/auth/me", headers=headers).json()
        assert me == {"mode": "team", "user": None, "csrf_token": None}
    # The local CSRF token comes from the master key: the same after a restart.
    with GatewayServer(gw.settings.model_copy(update={"port": 0})) as again:
        assert httpx.get(f"{again.url}/api/auth/me").json()["csrf_token"] == csrf


def test_public_bind_without_accounts_is_refused(tmp_path: Path) -> None:
    public = Settings(_env_file=None, host="0.0.0.0", home=tmp_path / "home")
    with pytest.raises(ConfigError, match="spendgate users create NAME --role admin"):
        check_accounts(public, has_accounts=False)
    check_accounts(public, has_accounts=True)
    check_accounts(Settings(_env_file=None, host="127.0.0.1"), has_accounts=False)

    db = f"sqlite:///{tmp_path / 'spendgate.db'}"
    runner = CliRunner()
    env = {"SPENDGATE_HOME": str(tmp_path / "home")}
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--database-url", db], env=env)
    assert result.exit_code != 0
    assert "spendgate users create" in result.output
    # The gateway itself refuses too, however it is started.
    settings = gateway_settings(tmp_path, "http://127.0.0.1:9", db, host="0.0.0.0")
    gateway = create_app(settings)
    with pytest.raises(ConfigError, match="spendgate users create"):
        asyncio.run(gateway.startup())
    assert gateway.store is not None
    gateway.store.close()


# -- sign-in, sessions, CSRF ---------------------------------------------------------


def _cookie_attributes(resp: httpx.Response) -> set[str]:
    (header,) = [h for h in resp.headers.get_list("set-cookie") if "spendgate_session" in h]
    return {part.strip().lower() for part in header.split(";")[1:]}


def test_login_me_csrf_and_logout(gateway: GatewayServer) -> None:
    gw = gateway
    _accounts(gw).create_user("Alice", PASSWORD, role="admin")
    anonymous = httpx.get(f"{gw.url}/api/auth/me").json()
    assert anonymous == {"mode": "team", "user": None, "csrf_token": None}
    assert httpx.get(f"{gw.url}/api/requests").status_code == 401

    login = f"{gw.url}/api/auth/login"
    wrong = httpx.post(login, json={"username": "alice", "password": "nope-nope-nope"})
    unknown = httpx.post(login, json={"username": "mallory", "password": PASSWORD})
    for resp in (wrong, unknown):
        assert resp.status_code == 401
        assert resp.json() == {
            "error": {"code": "invalid_credentials", "message": "wrong username or password"}
        }
        assert "set-cookie" not in resp.headers

    resp = httpx.post(login, json={"username": "ALICE", "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"user", "csrf_token"}
    assert body["user"]["username"] == "alice" and body["user"]["role"] == "admin"
    assert body["user"]["teams"] is None and body["user"]["id"]
    attributes = _cookie_attributes(resp)
    assert {"httponly", "samesite=strict", "path=/", "max-age=43200"} <= attributes
    assert "secure" not in attributes
    behind_tls = httpx.post(
        login,
        json={"username": "alice", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert "secure" in _cookie_attributes(behind_tls)

    session = resp.cookies["spendgate_session"]
    csrf = body["csrf_token"]
    client = httpx.Client(base_url=gw.url, cookies={"spendgate_session": session}, timeout=30)
    me = client.get("/api/auth/me").json()
    assert me == {"mode": "team", "user": body["user"], "csrf_token": csrf}
    assert client.get("/api/teams").status_code == 200  # reads need no CSRF token
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
        refused = client.post("/api/teams", json={"name": "Red"}, headers=headers)
        assert refused.status_code == 403 and _error(refused) == "csrf_failed"
    made = client.post("/api/teams", json={"name": "Red"}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201, made.text
    for path in ("/api/teams/Red", f"/api/keys/{DUMMY}", f"/api/budgets/{DUMMY}"):
        refused = client.patch(path, json={"name": "x"})
        assert refused.status_code == 403 and _error(refused) == "csrf_failed", path
    recoloured = client.patch(
        "/api/teams/Red", json={"color": "#ff0000"}, headers={"X-CSRF-Token": csrf}
    )
    assert recoloured.json()["color"] == "#ff0000", recoloured.text

    # Sessions live in the database: another replica knows them.
    with GatewayServer(gw.settings.model_copy(update={"port": 0})) as replica:
        other = httpx.get(
            f"{replica.url}/api/auth/me", cookies={"spendgate_session": session}
        ).json()
        assert other["user"]["username"] == "alice" and other["csrf_token"] == csrf

    assert _error(client.post("/api/auth/logout")) == "csrf_failed"
    out = client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200 and out.json() == {"logged_out": True}
    assert "max-age=0" in _cookie_attributes(out)
    stale = httpx.Client(base_url=gw.url, cookies={"spendgate_session": session}, timeout=30)
    assert _error(stale.get("/api/requests")) == "unauthenticated"
    assert stale.get("/api/auth/me").json()["user"] is None


def test_password_changes_end_sessions(gateway: GatewayServer) -> None:
    gw = gateway
    accounts = _accounts(gw)
    accounts.create_user("bob", PASSWORD, role="viewer")
    client, csrf = _login(gw, "bob")
    assert client.get("/api/requests").status_code == 200
    # Own password: the current one is checked, a new session is opened.
    bad = client.put(
        "/api/auth/password",
        json={"current_password": "wrong-wrong", "new_password": "new-password-1"},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status_code == 401
    changed = client.put(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "new-password-1"},
        headers={"X-CSRF-Token": csrf},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["csrf_token"] != csrf
    assert client.get("/api/requests").status_code == 200  # the new cookie
    # An admin's reset ends every session of the user.
    accounts.reset_password("bob", "another-password-2")
    assert client.get("/api/requests").status_code == 401
    client, _ = _login(gw, "bob", "another-password-2")
    accounts.create_user("root", PASSWORD, role="admin")
    accounts.delete_user("bob")
    assert client.get("/api/requests").status_code == 401


def test_api_tokens_need_no_csrf_and_stop_when_revoked(gateway: GatewayServer) -> None:
    gw = gateway
    issued = _accounts(gw).create_token("ci", role="admin")
    assert issued.secret.startswith("sgt_") and len(issued.secret) >= 47
    bearer = {"Authorization": f"Bearer {issued.secret}"}
    assert (
        httpx.post(f"{gw.url}/api/teams", json={"name": "Ops"}, headers=bearer).status_code == 201
    )
    me = httpx.get(f"{gw.url}/api/auth/me", headers=bearer).json()
    assert me["user"]["kind"] == "token" and me["user"]["username"] == "ci"
    assert me["csrf_token"] is None
    # Anthropic Admin API clients send x-api-key; the reports accept our token there.
    report = f"{gw.url}/v1/organizations/cost_report"
    ok = httpx.get(report, params={"starting_at": SINCE}, headers={"x-api-key": issued.secret})
    assert ok.status_code == 200, ok.text
    refused = httpx.get(report, params={"starting_at": SINCE})
    assert refused.status_code == 401
    assert refused.json()["type"] == "error"
    assert refused.json()["error"]["type"] == "authentication_error"

    _accounts(gw).create_user("keeper", PASSWORD)  # team mode must outlive the token
    _accounts(gw).revoke_token(issued.row.id)
    resp = httpx.get(f"{gw.url}/api/teams", headers=bearer)
    assert resp.status_code == 401 and "revoked" in resp.json()["error"]["message"]


def test_login_throttle(sqlite_gateway: GatewayServer) -> None:
    gw = sqlite_gateway
    _accounts(gw).throttle = LoginThrottle(limit=3, window=60)
    _accounts(gw).create_user("carol", PASSWORD)
    login = f"{gw.url}/api/auth/login"
    for _ in range(3):
        wrong = httpx.post(login, json={"username": "carol", "password": "wrong-password"})
        assert wrong.status_code == 401
    blocked = httpx.post(login, json={"username": "carol", "password": PASSWORD})
    assert blocked.status_code == 429 and _error(blocked) == "too_many_attempts"
    assert 0 < int(blocked.headers["retry-after"]) <= 61


def test_throttle_window_and_success_reset() -> None:
    now = [0.0]
    throttle = LoginThrottle(limit=2, window=10, clock=lambda: now[0])
    throttle.failed("dave", "10.0.0.1")
    assert throttle.wait("dave", "10.0.0.1") == 0
    throttle.failed("dave", "10.0.0.1")
    assert throttle.wait("dave", None) == pytest.approx(10)
    now[0] = 9.5
    assert throttle.wait("dave", None) == pytest.approx(0.5)
    now[0] = 10.0
    assert throttle.wait("dave", None) == 0
    throttle.failed("dave", "10.0.0.1")
    throttle.succeeded("dave")
    assert throttle.wait("dave", None) == 0
    for n in range(10):  # one address trying many names
        throttle.failed(f"user{n}", "10.0.0.2")
    assert throttle.wait("someone-else", "10.0.0.2") > 0


# -- the authorization matrix ------------------------------------------------------------


@dataclass
class Caller:
    """One way of calling the API, and what it should be allowed."""

    name: str
    headers: dict[str, str]
    cookies: dict[str, str] = field(default_factory=dict)
    # One client per caller: building an httpx client costs far more than a request.
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def __post_init__(self) -> None:
        self.client.cookies.update(self.cookies)


ADMINS = ("admin", "admin_token")
NOBODY = ("anonymous", "revoked_token", "proxy_key", "proxy_key_x_api_key", "revoked_proxy_key")


def _expected(access: Access, who: str) -> int | None:
    """401 or 403 if ``who`` must be refused, None if it must get through."""
    if access is Access.PUBLIC:
        return None
    if who in NOBODY:
        return 401
    if access is Access.SIGNED_IN or who in ADMINS:
        return None
    if access is Access.ADMIN or who == "scoped_viewer":
        return 403
    return None


def _callers(gw: GatewayServer) -> Iterator[Caller]:
    accounts = _accounts(gw)
    admin_token = accounts.create_token("matrix admin", role="admin")
    as_admin = {"Authorization": f"Bearer {admin_token.secret}"}
    key = httpx.post(f"{gw.url}/api/keys", json={"label": "proxy"}, headers=as_admin).json()
    old = httpx.post(f"{gw.url}/api/keys", json={"label": "old"}, headers=as_admin).json()
    revoked_key = httpx.post(f"{gw.url}/api/keys/{old['id']}/revoke", headers=as_admin)
    assert revoked_key.json()["status"] == "revoked"
    revoked = accounts.create_token("revoked admin", role="admin")
    accounts.revoke_token(revoked.row.id)
    viewer_token = accounts.create_token("viewer script", role="viewer")
    for name, user in (("admin", "root"), ("viewer", "vera"), ("scoped_viewer", "sam")):
        client, csrf = _login(gw, user, VIEWER_PASSWORD if user != "root" else PASSWORD)
        session = client.cookies["spendgate_session"]
        yield Caller(name, {"X-CSRF-Token": csrf}, {"spendgate_session": session})
    yield Caller("anonymous", {})
    yield Caller("admin_token", {"Authorization": f"Bearer {admin_token.secret}"})
    yield Caller("viewer_token", {"Authorization": f"Bearer {viewer_token.secret}"})
    yield Caller("revoked_token", {"Authorization": f"Bearer {revoked.secret}"})
    yield Caller("proxy_key", {"Authorization": f"Bearer {key['key']}"})
    yield Caller("proxy_key_x_api_key", {"x-api-key": key["key"]})
    yield Caller("revoked_proxy_key", {"Authorization": f"Bearer {old['key']}"})


def _call(
    gw: GatewayServer, caller: Caller, method: str, path: str, params: dict[str, str]
) -> httpx.Response:
    concrete = "/".join(DUMMY if p.startswith("{") else p for p in path.split("/"))
    url = gw.url + concrete
    body = None if method == "GET" else {}
    return caller.client.request(method, url, headers=caller.headers, params=params, json=body)


def test_authorization_matrix(gateway: GatewayServer) -> None:
    gw = gateway
    accounts = _accounts(gw)
    accounts.create_user("root", PASSWORD, role="admin")
    for team in ("Red", "Blue"):
        accounts.keys.create_team(team)
    accounts.create_user("vera", VIEWER_PASSWORD, role="viewer")
    accounts.create_user("sam", VIEWER_PASSWORD, role="viewer", teams=["Red"])
    callers = list(_callers(gw))
    table = [(m, p) for m, p, api in _route_table(gw.app.management) if api]
    # Sign-out last: it ends the sessions the other rows use.
    table.sort(key=lambda row: row[1] == "/api/auth/logout")
    failures = []
    checked = 0
    for method, path in table:
        access = classify(method, path)
        assert access is not None, f"{method} {path} is not classified"
        for caller in callers:
            resp = _call(gw, caller, method, path, {})
            checked += 1
            expected = _expected(access, caller.name)
            if expected is None:
                ok = resp.status_code not in (401, 403) and resp.status_code < 500
            else:
                ok = resp.status_code == expected
            if not ok:
                failures.append(f"{caller.name} {method} {path}: {resp.status_code} {resp.text}")
            if access is Access.TEAM_READ and caller.name == "scoped_viewer":
                for team, status in (("Red", 200), ("Blue", 403)):
                    resp = _call(gw, caller, method, path, {"team": team})
                    checked += 1
                    if resp.status_code != status:
                        failures.append(f"scoped {path}?team={team}: {resp.status_code}")
    assert not failures, "\n".join(failures)
    assert checked > 400


def test_team_scoped_viewer_sees_only_their_team(sqlite_gateway: GatewayServer) -> None:
    gw = sqlite_gateway
    accounts = _accounts(gw)
    for team in ("Red", "Blue"):
        accounts.keys.create_team(team)
    for n, team in enumerate(("Red", "Blue", "Blue")):
        call = {"model": "claude-sonnet-4-5", "input_tokens": 1000 * (n + 1), "team": team}
        assert httpx.post(f"{gw.url}/api/requests", json=call).status_code == 201
    red_key = httpx.post(f"{gw.url}/api/keys", json={"label": "r", "team": "Red"}).json()["id"]
    blue_key = httpx.post(f"{gw.url}/api/keys", json={"label": "b", "team": "Blue"}).json()["id"]
    for scope, value in (("team", "Red"), ("key", red_key), ("team", "Blue"), ("key", blue_key)):
        budget = {"scope": scope, "value": value, "limit_usd": "10", "name": f"{scope}-{value}"}
        assert httpx.post(f"{gw.url}/api/budgets", json=budget).status_code == 201
    assert httpx.post(f"{gw.url}/api/budgets", json={"scope": "global", "limit_usd": "99"})
    accounts.create_user("sam", VIEWER_PASSWORD, role="viewer", teams=["Red"])
    client, _ = _login(gw, "sam", VIEWER_PASSWORD)
    assert client.get("/api/auth/me").json()["user"]["teams"] == ["Red"]
    # the forecast with team= lists only the team's budgets (on the team or its keys)
    forecast = client.get("/api/analytics/forecast", params={"team": "Red"})
    assert forecast.status_code == 200, forecast.text
    listed = sorted(b["name"] for b in forecast.json()["budgets"])
    assert listed == sorted(["team-Red", f"key-{red_key}"]), listed
    red = {"team": "Red"}
    rows = client.get("/api/requests", params=red).json()["data"]
    assert [r["team"] for r in rows] == ["Red"]
    summary = client.get("/api/analytics/summary", params={**red, "period": "24h"}).json()
    assert summary["calls"] == 1, summary
    breakdown = client.get("/api/analytics/breakdown", params={**red, "by": "team"}).json()
    assert [row["key"] for row in breakdown["data"]] == ["Red"]
    exported = client.get("/api/export", params={**red, "format": "ndjson"}).text
    assert [json.loads(line)["team"] for line in exported.splitlines()] == ["Red"]
    for path, params in (
        ("/api/requests", {}),
        ("/api/requests", {"team": "Blue"}),
        ("/api/analytics/summary", {"team": "Blue"}),
        ("/api/analytics/forecast", {}),
        ("/api/analytics/forecast", {"team": "Blue"}),
        (f"/api/requests/{rows[0]['id']}", {}),
        ("/api/export/chargeback", {"month": "2026-11"}),
        ("/api/teams", {}),
    ):
        resp = client.get(path, params=params)
        assert resp.status_code == 403, (path, params, resp.text)
    # A deleted team leaves the scope empty; it never widens to every team.
    accounts.keys.delete_team("Red")
    assert client.get("/api/auth/me").json()["user"]["teams"] == []
    assert client.get("/api/requests", params=red).status_code == 403


# -- CLI and secrets ---------------------------------------------------------------------


def test_cli_users_and_tokens(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    env = {"SPENDGATE_HOME": str(tmp_path / "home")}

    def run(*args: str, stdin: str | None = None) -> Any:
        result = runner.invoke(cli, [*args, "--database-url", db], input=stdin, env=env)
        assert result.exit_code == 0, result.output
        assert PASSWORD not in result.output and "second-password" not in result.output
        return result

    run("teams", "create", "Research")
    made = run("users", "create", "root", "--password-stdin", stdin=PASSWORD + "\n")
    assert made.output.strip() == "created admin root"
    prompted = run(
        "users", "create", "vic", "--role", "viewer", "--team", "Research", "--json",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert json.loads(prompted.stdout[prompted.stdout.index("{") :])["teams"] == ["Research"]
    listed = json.loads(run("users", "list").output)
    assert [u["username"] for u in listed] == ["root", "vic"]
    assert all("password_hash" not in u and "$argon2" not in json.dumps(u) for u in listed)
    run("users", "reset-password", "vic", "--password-stdin", stdin="second-password\n")
    token = json.loads(run("tokens", "create", "--name", "ci", "--json").output)
    assert token["token"].startswith("sgt_") and token["role"] == "viewer"
    tokens = json.loads(run("tokens", "list").output)
    assert [t["id"] for t in tokens] == [token["id"]] and "token" not in tokens[0]
    assert token["token"] not in json.dumps(tokens)
    assert "revoked" in run("tokens", "revoke", token["id"]).output
    run("users", "delete", "vic")

    for args, stdin, message in (
        (["users", "create", "x", "--password-stdin"], "short\n", "at least 8"),
        (["users", "create", "root", "--password-stdin"], PASSWORD + "\n", "exists already"),
        (["users", "create", "y", "--team", "Research", "--password-stdin"], PASSWORD, "viewers"),
        (["users", "delete", "nobody"], None, "spendgate users list"),
    ):
        bad = runner.invoke(cli, [*args, "--database-url", db], input=stdin, env=env)
        assert bad.exit_code != 0 and message in bad.output, bad.output


def test_last_admin_cannot_be_deleted_while_others_remain(sqlite_gateway: GatewayServer) -> None:
    accounts = _accounts(sqlite_gateway)
    accounts.create_user("root", PASSWORD)
    accounts.create_user("vera", PASSWORD, role="viewer")
    with pytest.raises(ValueError, match="last admin"):
        accounts.delete_user("root")
    accounts.delete_user("vera")
    accounts.delete_user("root")  # the only account: back to local mode
    assert httpx.get(f"{sqlite_gateway.url}/api/auth/me").json()["mode"] == "local"


def test_secrets_never_stored_logged_or_returned_in_clear(
    tmp_path: Path, gateway: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gw = gateway
    admin = httpx.Client(base_url=gw.url, timeout=30)
    # Created over the API while still in local mode (the dashboard's first-run path).
    made = admin.post(
        "/api/users", json={"username": "root", "password": PASSWORD, "role": "admin"}
    )
    assert made.status_code == 201, made.text
    client, csrf = _login(gw, "root")
    headers = {"X-CSRF-Token": csrf}
    viewer = client.post(
        "/api/users",
        json={"username": "vera", "password": VIEWER_PASSWORD, "role": "viewer"},
        headers=headers,
    )
    assert viewer.status_code == 201
    token = client.post("/api/tokens", json={"name": "ci"}, headers=headers).json()
    assert token["created_by"] == "root"
    bearer = {"Authorization": f"Bearer {token['token']}"}
    assert httpx.get(f"{gw.url}/api/requests", headers=bearer).status_code == 200
    failed = httpx.post(
        f"{gw.url}/api/auth/login", json={"username": "root", "password": VIEWER_PASSWORD}
    )
    assert failed.status_code == 401
    session = client.cookies["spendgate_session"]
    answers = [made.text, viewer.text, failed.text] + [
        client.get(path).text
        for path in ("/api/users", "/api/tokens", "/api/auth/me", "/api/requests", "/health")
    ]
    secrets = [PASSWORD, VIEWER_PASSWORD, token["token"], session]
    # The gateway's log lines (the test's own HTTP client logs the Set-Cookie it receives).
    logged = "\n".join(
        f"{r.getMessage()} {r.__dict__}"
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))
    )
    assert "/api/auth/login" in logged
    for secret in secrets:
        for answer in answers:
            assert secret not in answer
        assert secret not in logged
        for path in (p for p in tmp_path.rglob("*") if p.is_file()):
            assert secret.encode() not in path.read_bytes(), f"{secret[:6]}... in {path}"
    # What is stored instead: argon2id hashes, SHA-256 of tokens and session ids.
    engine = _accounts(gw).store.engine
    with engine.connect() as conn:
        rows = [
            *conn.execute(select(users)).all(),
            *conn.execute(select(api_tokens)).all(),
            *conn.execute(select(sessions)).all(),
        ]
        hashes = [r.password_hash for r in conn.execute(select(users)).all()]
        stored_sessions = [r.id_hash for r in conn.execute(select(sessions)).all()]
    dump = repr(rows)
    for secret in secrets:
        assert secret not in dump
    assert all(h.startswith("$argon2id$") for h in hashes) and len(hashes) == 2
    assert hashlib.sha256(session.encode()).hexdigest() in stored_sessions
    assert hashlib.sha256(token["token"].encode()).hexdigest() in dump

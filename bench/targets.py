"""What the bench measures: the upstream itself, nginx in front of it, and spendgate.

Each target is a server on 127.0.0.1 built from a temporary directory, started and
stopped by PID. spendgate runs as ``spendgate serve`` (one uvicorn process, recording
on) with its own home and database; PostgreSQL gets a temporary database that is
dropped afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import litellm
from bench.load import API_KEY, WORKLOADS, headers_for
from bench.processes import Server, free_port

NGINX = Path("/usr/sbin/nginx")
POSTGRES_ENV = ("SPENDGATE_BENCH_POSTGRES_URL", "SPENDGATE_TEST_POSTGRES_URL")

# nginx as the floor for one extra hop: one worker, upstream keepalive, no buffering (SSE).
_NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream fake {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Answer:
    """What one POST got back."""

    status: int
    body: bytes


def post(
    port: int,
    workload: str,
    timeout: float = 10.0,
    *,
    path: str = "/v1/messages",
    api_key: str | None = None,
) -> Answer:
    """One request of ``workload`` (the same bytes wrk sends) to ``127.0.0.1:port``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=WORKLOADS[workload].encode(), headers=headers_for(api_key))
        resp = conn.getresponse()
        return Answer(resp.status, resp.read())
    finally:
        conn.close()


def post_json(port: int, path: str, body: dict[str, Any], timeout: float = 10.0) -> Any:
    """POST a JSON body to spendgate's management API; raises OSError when not 2xx."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            "POST", path, body=json.dumps(body), headers={"content-type": "application/json"}
        )
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise OSError(f"POST {path}: HTTP {resp.status}: {data[:300]!r}")
        return json.loads(data)
    finally:
        conn.close()


def proxy_key_with_budget(port: int) -> str:
    """A spendgate proxy key carrying the bench's upstream key, under a $1B monthly budget,
    so every call goes through the key resolver and the budget's reserve/settle."""
    key = post_json(port, "/api/keys", {"label": "bench", "upstream_key": API_KEY})
    post_json(
        port,
        "/api/budgets",
        {"scope": "key", "value": key["id"], "limit_usd": "1000000000", "period": "monthly"},
    )
    return str(key["key"])


def rate_limits_on_every_key(port: int) -> None:
    """Two rate limits far above any load, so every call takes from two buckets: all
    calls together (requests and output tokens a minute) and each key (requests)."""
    post_json(
        port,
        "/api/limits",
        {
            "scope": "global",
            "value": "",
            "requests_per_minute": 50_000_000,
            "output_tokens_per_minute": 100_000_000,
            "name": "bench global",
        },
    )
    post_json(
        port,
        "/api/limits",
        {"scope": "key", "value": "*", "requests_per_minute": 50_000_000, "name": "bench key"},
    )


def get_json(port: int, path: str, timeout: float = 5.0) -> Any:
    """GET ``path`` and decode the JSON answer; raises OSError when not 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise OSError(f"GET {path}: HTTP {resp.status}")
        return json.loads(body)
    finally:
        conn.close()


def upstream_server(root: Path) -> tuple[Server, Any]:
    """The fake upstream and its readiness check."""
    port = free_port()
    server = Server(
        name="fake upstream",
        argv=[sys.executable, "-m", "bench.upstream", "--port", str(port)],
        port=port,
        log_path=root / "logs" / "upstream.log",
        cwd=Path(__file__).resolve().parent.parent,
    )
    return server, lambda: post(port, "json", timeout=1).status == 200


def nginx_server(root: Path, upstream_port: int) -> tuple[Server, Any]:
    """nginx ``proxy_pass`` to the upstream and its readiness check."""
    prefix = root / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(root=prefix, port=port, upstream_port=upstream_port))
    server = Server(
        name="nginx",
        argv=[
            str(NGINX),
            "-p",
            str(prefix),
            "-e",
            str(prefix / "nginx-error.log"),
            "-c",
            str(conf),
        ],
        port=port,
        log_path=root / "logs" / "nginx.log",
    )
    return server, lambda: post(port, "json", timeout=1).status == 200


def litellm_server(root: Path, upstream_port: int) -> tuple[Server, Any]:
    """LiteLLM's proxy (one worker) in front of the upstream, and its readiness check."""
    port = free_port()
    argv, env = litellm.server_argv(root / "litellm", port, upstream_port)
    server = Server(
        name="litellm",
        argv=argv,
        port=port,
        log_path=root / "logs" / "litellm.log",
        env=env,
        cwd=root / "litellm",
    )

    def ready() -> bool:
        return post(port, "json", timeout=5, path=litellm.PATH).status == 200

    return server, ready


def spendgate_server(
    root: Path,
    name: str,
    upstream_port: int,
    database_url: str,
    *,
    accounting: bool | str = True,
) -> tuple[Server, Any]:
    """spendgate (``bench.gateway``: the server ``spendgate serve`` runs) on its own home
    and database, and its readiness check; ``accounting=False`` turns recording, pricing
    and budget checks off in the same process (bench-only), ``"record"`` or ``"budget"``
    keeps only that part (see ``bench.gateway``)."""
    mode = accounting if isinstance(accounting, str) else ("on" if accounting else "off")
    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SPENDGATE_", "ANTHROPIC_")) and k != "PYTHONPATH"
    }
    env.update(
        {
            "SPENDGATE_UPSTREAM_URL": f"http://127.0.0.1:{upstream_port}",
            "SPENDGATE_DATABASE_URL": database_url,
            "SPENDGATE_HOME": str(home),
            "SPENDGATE_HOST": "127.0.0.1",
            "SPENDGATE_PORT": str(port),
            "SPENDGATE_LOG_LEVEL": "warning",
            "SPENDGATE_ACCESS_LOG": "false",
            "SPENDGATE_CONFIG": str(home / "absent.toml"),
        }
    )
    server = Server(
        name=f"spendgate ({name})",
        argv=[
            sys.executable,
            "-m",
            "bench.gateway",
            "--accounting",
            mode,
        ],
        port=port,
        log_path=root / "logs" / f"spendgate-{name}.log",
        env=env,
        cwd=home,  # no stray .env or spendgate.toml from the working directory
    )
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)

    def ready() -> bool:
        return bool(get_json(port, "/health", timeout=1)["status"] == "ok")

    return server, ready


def postgres_admin_url() -> str | None:
    """The PostgreSQL server to bench on, from the environment, or None."""
    for name in POSTGRES_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _libpq_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return "postgresql://" + rest if scheme.startswith("postgres") else url


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A temporary database on the server of ``admin_url``; dropped on the way out."""
    import psycopg

    name = f"spendgate_bench_{uuid.uuid4().hex[:10]}"
    admin = _libpq_url(admin_url)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class Recorded:
    """What spendgate wrote to its database, counted there."""

    calls: int
    ok: int
    priced: int


def count_recorded(database_url: str) -> Recorded:
    """Rows in ``calls`` for POST /v1/messages: all, status 200 and complete, priced."""
    query = (
        "SELECT COUNT(*), "
        "SUM(CASE WHEN status_code = 200 AND complete THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN cost_nanousd IS NOT NULL AND cost_nanousd > 0 THEN 1 ELSE 0 END) "
        "FROM calls WHERE endpoint = '/v1/messages' AND method = 'POST'"
    )
    if database_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(database_url[len("sqlite:///") :])) as conn:
            row = conn.execute(query).fetchone()
    else:
        import psycopg

        with psycopg.connect(_libpq_url(database_url), connect_timeout=5) as conn:
            row = conn.execute(query).fetchone()
    assert row is not None
    return Recorded(calls=int(row[0] or 0), ok=int(row[1] or 0), priced=int(row[2] or 0))


def upstream_answered(port: int) -> int:
    """How many Messages calls the fake upstream has answered so far."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/bench/count")
        return int(conn.getresponse().read())
    finally:
        conn.close()


def health(port: int) -> dict[str, Any]:
    """spendgate's ``/health`` answer."""
    data: dict[str, Any] = get_json(port, "/health")
    return data


def postgres_server_version(database_url: str) -> str:
    """``SHOW server_version`` of the PostgreSQL server behind ``database_url``."""
    import psycopg

    with psycopg.connect(_libpq_url(database_url), connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "unknown"

"""The container files, linted (Docker cannot run here), and their health check run for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from spendgate.testing.gateway import free_port
from spendgate.testing.process import GatewayProcess
from spendgate.testing.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[1]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: comments dropped, continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        name, _, args = line.partition(" ")
        out.append((name.upper(), args.strip()))
    assert not pending, "a continuation line runs off the end"
    return out


def _stages(steps: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for step in steps:
        if step[0] == "FROM":
            stages.append([])
        assert stages, "the first instruction must be FROM"
        stages[-1].append(step)
    return stages


def test_dockerfile_is_multi_stage_small_and_non_root() -> None:
    steps = instructions(ROOT / "Dockerfile")
    known = {"FROM", "WORKDIR", "COPY", "RUN", "ENV", "ARG", "USER", "EXPOSE", "HEALTHCHECK"}
    known |= {"CMD", "STOPSIGNAL", "VOLUME", "LABEL", "ENTRYPOINT"}
    assert {name for name, _ in steps} <= known
    assert not any(name == "ADD" for name, _ in steps)
    web, build, runtime = _stages(steps)
    assert web[0][1].startswith("node:") and web[0][1].endswith(" AS web")
    assert any("npm ci" in args and "npm run build" in args for name, args in web if name == "RUN")
    assert any(n == "COPY" and a.startswith("--from=web ") for n, a in build)
    assert runtime[0][1].startswith("python:3.11-slim")
    assert all(args.split()[0] != "--from=web" for name, args in runtime if name == "COPY")
    users = [args for name, args in runtime if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = [args for name, args in runtime if name == "HEALTHCHECK"]
    assert len(health) == 1 and "/readyz" in health[0]
    (cmd,) = [args for name, args in runtime if name == "CMD"]
    assert json.loads(cmd) == ["spendgate", "serve"]  # exec form: SIGTERM reaches spendgate
    # An init as PID 1 (tini passes signals on) reaps the writer process a dead worker leaves.
    (entry,) = [args for name, args in runtime if name == "ENTRYPOINT"]
    assert json.loads(entry) == ["/usr/bin/tini", "--"]
    assert any("install" in a and " tini" in a for n, a in runtime if n == "RUN")
    assert ("EXPOSE", "8080") in runtime
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "web/node_modules"} <= set(ignored)


def _healthcheck_command() -> list[str]:
    (args,) = [a for n, a in instructions(ROOT / "Dockerfile") if n == "HEALTHCHECK"]
    command = json.loads(args[args.index("CMD") + 3 :].strip())
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def test_the_image_health_check_passes_only_when_ready(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """The same start-up as the image (migrate, serve), then its HEALTHCHECK command."""
    db = f"sqlite:///{tmp_path / 'sg.db'}"
    check = _healthcheck_command()
    with GatewayProcess(tmp_path / "home", database_url=db, upstream_url=upstream.url) as gw:
        env = {**os.environ, "SPENDGATE_PORT": str(gw.port)}
        ready = subprocess.run(check, env=env, capture_output=True, timeout=30, check=False)
        assert ready.returncode == 0, ready.stderr
    env = {**os.environ, "SPENDGATE_PORT": str(free_port())}
    down = subprocess.run(check, env=env, capture_output=True, timeout=30, check=False)
    assert down.returncode != 0


def test_compose_runs_the_gateway_on_postgres() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    postgres, gateway = services["postgres"], services["spendgate"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert gateway["build"] == "."
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = gateway["environment"]
    assert env["SPENDGATE_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["SPENDGATE_DATABASE_URL"]
    assert "SPENDGATE_SECRET_KEY" in env
    assert all(port.startswith("127.0.0.1:") for port in gateway["ports"])
    grace = int(str(gateway["stop_grace_period"]).rstrip("s"))
    assert grace > int(env["SPENDGATE_SHUTDOWN_TIMEOUT"]) + 30
    assert set(doc["volumes"]) == {"pgdata", "spendgate-home"}

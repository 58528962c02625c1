"""One typed settings object: env, .env, TOML, flags; unsafe combinations refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from spendgate.safety import check_startup
from spendgate.settings import ConfigError, Settings, is_loopback_host, mask_url_password


def test_defaults_are_safe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPENDGATE_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.upstream_url == "https://api.anthropic.com"
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'h' / 'spendgate.db'}"


def test_env_dotenv_and_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ANTHROPIC_API_KEY=sk-ant-api03-from-dotenv\n")
    (tmp_path / "spendgate.toml").write_text('port = 9999\nupstream_url = "http://127.0.0.1:1/"\n')
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("SPENDGATE_PORT", "7000")
    settings = Settings()
    assert settings.port == 7000  # env beats TOML
    assert settings.upstream_url == "http://127.0.0.1:1"  # trailing slash dropped
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-ant-api03-from-dotenv"
    assert "sk-ant" not in repr(settings)
    assert Settings(port=1234).port == 1234  # flags beat env


def test_bad_upstream_url_says_how_to_fix() -> None:
    with pytest.raises(ValueError, match="SPENDGATE_UPSTREAM_URL must start with http"):
        Settings(upstream_url="api.anthropic.com")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_public_bind_with_server_key_is_refused() -> None:
    settings = Settings(host="0.0.0.0", anthropic_api_key="sk-ant-api03-x")
    assert not settings.server_key_usable
    with pytest.raises(ConfigError, match="SPENDGATE_HOST"):
        check_startup(settings)
    check_startup(Settings(host="127.0.0.1", anthropic_api_key="sk-ant-api03-x"))


def test_password_masked() -> None:
    assert mask_url_password("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert mask_url_password("sqlite:///x.db") == "sqlite:///x.db"

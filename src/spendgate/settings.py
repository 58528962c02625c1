"""The one typed settings object.

Everything configurable lives here. It is built once at the edge (the CLI or a
test) and passed down; no other module reads the environment.

Sources, highest priority first: explicit keyword arguments (CLI flags), the
environment (``SPENDGATE_*``, plus ``ANTHROPIC_API_KEY``), a ``.env`` file in the
working directory, a TOML file (``SPENDGATE_CONFIG`` or ``spendgate.toml`` in the
working directory), then the defaults below.
"""

from __future__ import annotations

import ipaddress
import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_UPSTREAM = "https://api.anthropic.com"


def default_home() -> Path:
    """The per-user data directory used when ``SPENDGATE_HOME`` is not set."""
    return Path(platformdirs.user_data_dir("spendgate", appauthor=False))


class ConfigError(ValueError):
    """A setting or a combination of settings is unusable; the message says how to fix it."""


class Settings(BaseSettings):
    """spendgate's configuration. Every field maps to ``SPENDGATE_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="SPENDGATE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    home: Path = Field(
        default_factory=default_home,
        description="Directory for the default SQLite database, the spool file and the key file.",
    )
    host: str = Field(default="127.0.0.1", description="Address to bind. Loopback by default.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port to listen on.")
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the database, e.g. sqlite:///path/to.db or "
            "postgresql://user:pass@host/db. Default: SQLite file spendgate.db in the home "
            "directory."
        ),
    )
    upstream_url: str = Field(
        default=DEFAULT_UPSTREAM, description="Base URL of the Anthropic API to forward to."
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_API_KEY", "SPENDGATE_ANTHROPIC_API_KEY"),
        description=(
            "Server credential injected when a client sends none (ANTHROPIC_API_KEY). "
            "Only used while bound to loopback unless allow_server_key_remote is set."
        ),
    )
    anthropic_admin_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_ADMIN_KEY", "SPENDGATE_ANTHROPIC_ADMIN_KEY"),
        description=(
            "Anthropic Admin API key (sk-ant-admin…, ANTHROPIC_ADMIN_KEY) used only by "
            "`spendgate import anthropic-admin` to pull Anthropic's usage and cost reports."
        ),
    )
    allow_server_key_remote: bool = Field(
        default=False,
        description=(
            "Allow clients on a non-loopback bind to use the server's ANTHROPIC_API_KEY "
            "without a proxy key. Off by default: anyone who can reach the port would spend it."
        ),
    )
    allow_client_credentials: bool = Field(
        default=True,
        description="Forward a client's own Anthropic credential (x-api-key / Bearer) as is.",
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Upstream connect timeout, s.")
    read_timeout: float = Field(
        default=900.0,
        gt=0,
        description=(
            "Longest silence allowed between upstream bytes, s (long generations need minutes)."
        ),
    )
    upstream_client: Literal["lean", "aiohttp"] = Field(
        default="lean",
        description=(
            "HTTP client for forwarded calls: lean (a small HTTP/1.1 client on httptools, "
            "about a quarter of aiohttp's CPU per call; aiohttp still takes streamed "
            "uploads, HEAD and Expect: 100-continue) or aiohttp for every call."
        ),
    )
    http_server: Literal["spendgate", "uvicorn"] = Field(
        default="spendgate",
        description=(
            "HTTP/1.1 protocol the server runs each connection with: spendgate (a lean ASGI "
            "cycle on httptools, less CPU and latency per call: docs/benchmarks.md) or "
            "uvicorn's own httptools protocol. uvicorn runs the process either way."
        ),
    )
    upstream_pool_size: int = Field(
        default=512,
        ge=1,
        description=(
            "Most simultaneous upstream connections per process and client (the lean "
            "client, and aiohttp for uploads); a call waits for a free one at most "
            "SPENDGATE_CONNECT_TIMEOUT."
        ),
    )
    queue_size: int = Field(
        default=100_000, ge=1, description="Records held in memory before they spill to the spool."
    )
    flush_interval: float = Field(
        default=0.02,
        gt=0,
        description=(
            "Longest a record waits in memory before it is written, s. Shorter keeps each "
            "batch's work short, so the proxied calls it shares the process with wait less."
        ),
    )
    batch_size: int = Field(
        default=5000,
        ge=1,
        description=(
            "Most records written per transaction. Batches only grow this large when calls "
            "arrive faster than one flush interval's worth; larger batches write more records "
            "per second but hold the database's write lock longer."
        ),
    )
    writer_process: bool = Field(
        default=True,
        description=(
            "Insert calls and fold rollups in a child process of the gateway instead of a "
            "thread of it: a thread shares the event loop's GIL and costs the proxied calls "
            "more CPU than its own work (docs/benchmarks.md). Pricing, metrics and the spool "
            "stay in the gateway. Ignored for an in-memory SQLite database."
        ),
    )
    writer_slice: float = Field(
        default=0.0002,
        ge=0,
        description=(
            "CPU seconds the writer process spends on a batch at a stretch before it naps "
            "for a moment (~70 µs), so a batch's milliseconds of work do not keep a CPU the "
            "proxied calls are queued for (on a small host every call's hops share it). "
            "0: no naps. Only the writer process naps (see SPENDGATE_WRITER_PROCESS)."
        ),
    )
    spool_dir: Path | None = Field(
        default=None,
        description=(
            "Directory of append-only spool files for records the database could not take "
            "(replayed when it is back). Default: home/spool."
        ),
    )
    price_files: list[Path] = Field(
        default_factory=list,
        description=(
            "User price files (TOML) layered over the built-in price book: negotiated "
            "discounts, private models. See docs/pricing.md."
        ),
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Master key that encrypts upstream Anthropic credentials attached to proxy keys "
            "(SPENDGATE_SECRET_KEY). Default: the key file home/secret.key, created on first "
            "use with 0600 permissions."
        ),
    )
    budget_timezone: str = Field(
        default="UTC",
        description="IANA time zone whose calendar days, weeks and months reset budgets.",
    )
    key_cache_ttl: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Seconds a proxy-key lookup and the budget and rate-limit definitions are cached "
            "per process; a revoked key, a new budget or a new rate limit takes effect within "
            "this time. Copies in use are reloaded in the background once 3/4 of it has "
            "passed, so calls rarely wait for the database."
        ),
    )
    alert_interval: float = Field(
        default=60.0,
        ge=0,
        description=(
            "Seconds between two evaluations of the alert rules (budget thresholds, forecasts, "
            "spend spikes) in the gateway's background task; 0 turns the task off in this "
            "process. See docs/keys-and-budgets.md#alerts."
        ),
    )
    alert_trailing_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description=(
            "Complete days whose mean daily spend is the run rate of budget forecasts and the "
            "average that spend spikes are compared with."
        ),
    )
    alert_spike_factor: float = Field(
        default=3.0,
        gt=1,
        description="A day's spend at least this many times its trailing average is a spike.",
    )
    alert_spike_min_usd: Decimal = Field(
        default=Decimal("1"),
        ge=0,
        description="Days that spent less than this many dollars are never reported as spikes.",
    )
    alert_max_attempts: int = Field(
        default=8,
        ge=1,
        description="Attempts to deliver one alert to one channel before giving up.",
    )
    alert_retry_backoff: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds before a failed alert delivery is retried; doubled after each failure, "
            "at most an hour."
        ),
    )
    session_max_age: float = Field(
        default=43_200.0,
        gt=0,
        description=(
            "Seconds a dashboard sign-in lasts (SPENDGATE_SESSION_MAX_AGE, 12 h); "
            "then the user signs in again."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level of the gateway's own (JSON) log lines."
    )
    access_log: bool = Field(default=False, description="Log one line per HTTP request.")
    # -- operations (docs/deployment.md) --
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Gateway processes sharing the port. Each has its own upstream pool, database pool "
            "and writer; use PostgreSQL when more than one."
        ),
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        description=(
            "PostgreSQL connections kept open per process (as many again may open under "
            "load): budget max_connections >= replicas x workers x 2 x this."
        ),
    )
    shutdown_timeout: float = Field(
        default=30.0,
        ge=0,
        description=(
            "On SIGTERM, seconds in-flight calls (long streams) get to finish before they are "
            "cut; the writer then drains every record."
        ),
    )
    metrics: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    metrics_label_limit: int = Field(
        default=100,
        ge=1,
        description=(
            "Most distinct values per metric label (model, team, key) in one process; later "
            'values are counted under "other".'
        ),
    )
    metrics_dir: Path | None = Field(
        default=None,
        description=(
            "Directory of per-process metric files when workers > 1 (emptied at start). "
            "Default: home/metrics."
        ),
    )
    otel_endpoint: str | None = Field(
        default=None,
        description=(
            "OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces): one span per "
            "proxied call. Needs pip install 'spendgate[otel]'."
        ),
    )
    otel_service_name: str = Field(
        default="spendgate", description="service.name of the exported spans."
    )
    retention_days: int = Field(
        default=0,
        ge=0,
        description=(
            "Delete raw calls older than this many days (rollups stay, so reports keep "
            "them); 0 keeps raw calls forever."
        ),
    )
    retention_interval: float = Field(
        default=3600.0, gt=0, description="Seconds between two retention runs."
    )
    call_log: bool = Field(
        default=False,
        description=(
            "Log one JSON line per proxied call: ids, model, status, tokens, cost, latency "
            "(never bodies or credentials)."
        ),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("SPENDGATE_CONFIG", "spendgate.toml")
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    @field_validator("upstream_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"SPENDGATE_UPSTREAM_URL must start with http:// or https://, got {value!r}"
            )
        return value.rstrip("/")

    @field_validator("budget_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"SPENDGATE_BUDGET_TIMEZONE: unknown time zone {value!r}; use an IANA name "
                "such as UTC or Europe/Berlin"
            ) from None
        return value

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: the configured one or the default SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'spendgate.db'}"

    @property
    def effective_spool_dir(self) -> Path:
        """Where records go when the database cannot take them."""
        return self.spool_dir or self.home / "spool"

    @property
    def effective_metrics_dir(self) -> Path:
        """Where worker processes keep their metric files (``--workers`` > 1)."""
        return self.metrics_dir or self.home / "metrics"

    @property
    def is_loopback(self) -> bool:
        """True when the bind address only accepts local connections."""
        return is_loopback_host(self.host)

    @property
    def server_key_usable(self) -> bool:
        """Whether the server credential may be injected for credential-less clients."""
        return self.anthropic_api_key is not None and (
            self.is_loopback or self.allow_server_key_remote
        )

    def public_summary(self) -> dict[str, Any]:
        """Settings safe to show: no secrets, database password masked."""
        return {
            "host": self.host,
            "port": self.port,
            "upstream_url": self.upstream_url,
            "database": mask_url_password(self.effective_database_url),
            "server_key_loaded": self.anthropic_api_key is not None,
        }


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` and ``::1`` are loopback; anything else is not."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mask_url_password(url: str) -> str:
    """Hide the password part of a database URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, hostpart = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}" if ":" in creds else url

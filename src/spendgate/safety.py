"""Start-up checks that refuse unsafe configurations with a message that says how to fix them."""

from __future__ import annotations

from spendgate.settings import ConfigError, Settings
from spendgate.storage import Store
from spendgate.storage.keys import KeyRow, KeyStore
from spendgate.vault import KEY_FILE_NAME, SecretBox, SecretError


def check_startup(settings: Settings) -> None:
    """Raise :class:`ConfigError` for a configuration that would expose spend or data."""
    if not settings.is_loopback and settings.allow_server_key_remote:
        # Explicitly asked for; nothing to refuse, but it must be a conscious choice.
        return
    if not settings.is_loopback and settings.anthropic_api_key is not None:
        raise ConfigError(
            f"refusing to bind {settings.host} with ANTHROPIC_API_KEY loaded: anyone who can "
            "reach the port could spend it. Bind to 127.0.0.1 (SPENDGATE_HOST), create proxy "
            "keys and set SPENDGATE_ALLOW_SERVER_KEY_REMOTE=true, or unset ANTHROPIC_API_KEY"
        )

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


def check_database(settings: Settings, store: Store) -> None:
    """Refuse what only the database reveals (run after migrations, before serving)."""
    check_credentials(settings, KeyStore(store.engine).list_keys(include_revoked=False))


def check_credentials(settings: Settings, keys: list[KeyRow]) -> None:
    """Refuse to start without the master key that decrypts the stored upstream credentials.

    Without this check a new replica would create a key file of its own and
    fail every call made with those proxy keys.
    """
    encrypted = [key for key in keys if key.upstream_key_enc]
    if not encrypted:
        return
    key_file = settings.home / KEY_FILE_NAME
    if settings.secret_key is None and not key_file.exists():
        raise ConfigError(
            f"the database holds {len(encrypted)} upstream credential(s) encrypted with a master "
            f"key, but this gateway has none: SPENDGATE_SECRET_KEY is not set and {key_file} "
            "does not exist. Set SPENDGATE_SECRET_KEY to the key that encrypted them (the same "
            "value on every replica), or copy secret.key from the host that created them"
        )
    box = SecretBox.from_settings(settings, create=False)
    token = encrypted[0].upstream_key_enc
    assert token is not None
    try:
        box.decrypt(token)
    except SecretError:
        where = "SPENDGATE_SECRET_KEY" if settings.secret_key is not None else str(key_file)
        raise ConfigError(
            f"the master key in {where} does not decrypt the upstream credential of proxy key "
            f"{encrypted[0].id}: every replica needs the key that encrypted them. Set "
            "SPENDGATE_SECRET_KEY to that key, or attach the credentials again with "
            "`spendgate keys set-upstream`"
        ) from None


def check_accounts(settings: Settings, has_accounts: bool) -> None:
    """Refuse a non-loopback bind while no user and no API token exists.

    Without an account the management API runs in local mode (no sign-in),
    which is only safe when nobody else can reach the port.
    """
    if settings.is_loopback or has_accounts:
        return
    raise ConfigError(
        f"refusing to bind {settings.host}: no user and no API token exists, so the management "
        "API and dashboard would be open to anyone who can reach the port. Create an admin "
        "first with `spendgate users create NAME --role admin` (or an API token with "
        "`spendgate tokens create --name NAME --role admin`), or bind to 127.0.0.1 "
        "(SPENDGATE_HOST)"
    )

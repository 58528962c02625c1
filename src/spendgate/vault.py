"""Secrets: proxy keys (hashed) and upstream credentials (encrypted).

Proxy keys are ``sg-`` followed by 43 random URL-safe characters (256 bits).
Only their SHA-256 hash is stored. A fast hash is right here: the key is
random and high-entropy, so there is nothing to brute-force that a slow
password hash (argon2) would protect; and the lookup runs on every call.

Upstream Anthropic credentials attached to keys are encrypted with Fernet
(AES-128-CBC + HMAC-SHA256) under a master key from ``SPENDGATE_SECRET_KEY``
or the key file ``home/secret.key`` (created on first use, mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from spendgate.settings import Settings

PROXY_KEY_PREFIX = "sg-"
KEY_FILE_NAME = "secret.key"


class SecretError(Exception):
    """A secret cannot be read or decrypted; the message says how to fix it."""


def new_proxy_key() -> str:
    """A fresh proxy key: ``sg-`` + 43 URL-safe characters (32 random bytes)."""
    return PROXY_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a proxy key: hex SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_hint(key: str) -> str:
    """A short, non-secret reminder of a key for listings (``sg-...wXyZ``)."""
    return f"{PROXY_KEY_PREFIX}...{key[-4:]}"


def _fernet_key(material: str) -> bytes:
    """Use a Fernet key as given; derive one from any other passphrase."""
    raw = material.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


class SecretBox:
    """Encrypts and decrypts upstream credentials with the master key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive(self, purpose: str) -> str:
        """A stable secret for ``purpose`` derived from the master key (hex HMAC-SHA256)."""
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).hexdigest()

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool = True) -> SecretBox:
        """The box for ``settings``: ``SPENDGATE_SECRET_KEY`` or the key file in home."""
        if settings.secret_key is not None:
            return cls(_fernet_key(settings.secret_key.get_secret_value()))
        path = settings.home / KEY_FILE_NAME
        if not path.exists():
            if not create:
                raise SecretError(
                    f"no master key: {path} does not exist and SPENDGATE_SECRET_KEY is not set; "
                    "set SPENDGATE_SECRET_KEY to the key that encrypted the stored credentials"
                )
            _create_key_file(path)
        return cls(_fernet_key(path.read_text()))

    def encrypt(self, secret: str) -> str:
        """Ciphertext (URL-safe text) of ``secret``."""
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The secret in ``token``; :class:`SecretError` if the master key does not fit."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretError(
                "cannot decrypt a stored upstream credential: the master key changed. Restore "
                "SPENDGATE_SECRET_KEY or home/secret.key, or attach the credential again with "
                "`spendgate keys set-upstream`"
            ) from None


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it first; use theirs
    with os.fdopen(fd, "w") as handle:
        handle.write(Fernet.generate_key().decode() + "\n")

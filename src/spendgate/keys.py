"""Proxy keys: create, rotate, revoke, and resolve them on the hot path.

A key is shown once, when it is created or rotated; only its SHA-256 hash is
kept. :class:`KeyResolver` answers the proxy's "what does this ``sg-`` key
grant?" from a per-process cache keyed by hash (:class:`~spendgate.fresh.Fresh`:
a key in use is reloaded in the background before its copy is ``ttl`` old), so a
revocation made anywhere takes effect everywhere within ``ttl``
(``SPENDGATE_KEY_CACHE_TTL``, 5 s by default) and at once in the process that
made it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from spendgate.fresh import Fresh, Notices
from spendgate.proxy.auth import AuthError, ProxyKeyGrant, fingerprint
from spendgate.records import utcnow
from spendgate.storage.keys import KeyRow, KeyStore, NewKey
from spendgate.vault import SecretBox, SecretError, hash_key, key_hint, new_proxy_key

# Cached answers for unknown keys are bounded so a flood of random keys cannot grow memory.
MAX_CACHED = 10_000


@dataclass(frozen=True)
class IssuedKey:
    """A key as stored plus the secret, which exists only in this object."""

    row: KeyRow
    secret: str

    def to_api(self) -> dict[str, object]:
        """The stored key's JSON with the secret added under ``key`` (shown once)."""
        return {**self.row.to_api(), "key": self.secret}


def create_key(
    store: KeyStore,
    *,
    label: str,
    team_id: str | None = None,
    owner: str | None = None,
    project: str | None = None,
    tags: Sequence[str] = (),
    expires_at: datetime | None = None,
    upstream_key: str | None = None,
    box: SecretBox | None = None,
    color: str | None = None,
) -> IssuedKey:
    """Issue a new proxy key; ``upstream_key`` (if any) is stored encrypted with ``box``."""
    secret = new_proxy_key()
    encrypted = fp = None
    if upstream_key is not None:
        if box is None:
            raise ValueError("an upstream credential needs the master key (SecretBox)")
        encrypted, fp = box.encrypt(upstream_key), fingerprint(upstream_key)
    row = store.create_key(
        NewKey(
            key_hash=hash_key(secret),
            hint=key_hint(secret),
            label=label,
            team_id=team_id,
            owner=owner,
            project=project,
            tags=tuple(tags),
            upstream_key_enc=encrypted,
            upstream_fingerprint=fp,
            expires_at=expires_at,
            color=color,
        )
    )
    return IssuedKey(row, secret)


def rotate_key(store: KeyStore, key_id: str) -> IssuedKey:
    """A new key with the same settings and credential; the old one is revoked."""
    old = store.get_key(key_id)
    secret = new_proxy_key()
    row = store.create_key(
        NewKey(
            key_hash=hash_key(secret),
            hint=key_hint(secret),
            label=old.label,
            team_id=old.team_id,
            owner=old.owner,
            project=old.project,
            tags=old.tags,
            upstream_key_enc=old.upstream_key_enc,
            upstream_fingerprint=old.upstream_fingerprint,
            expires_at=old.expires_at,
            color=old.color,
        )
    )
    store.revoke_key(old.id, rotated_to=row.id)
    return IssuedKey(row, secret)


def grant_for(row: KeyRow, box: Callable[[], SecretBox], now: datetime) -> ProxyKeyGrant:
    """What a stored key grants now; :class:`AuthError` if revoked or expired."""
    status = row.status(now)
    if status == "revoked":
        raise AuthError(f"spendgate: proxy key {row.label!r} ({row.hint}) has been revoked")
    if status == "expired":
        raise AuthError(f"spendgate: proxy key {row.label!r} ({row.hint}) has expired")
    upstream = None
    if row.upstream_key_enc is not None:
        try:
            upstream = box().decrypt(row.upstream_key_enc)
        except SecretError as exc:
            raise AuthError(str(exc), status=500, error_type="api_error") from None
    return ProxyKeyGrant(
        key_id=row.id,
        label=row.label,
        upstream_key=upstream,
        team=row.team,
        user=row.owner,
        project=row.project,
        tags=row.tags,
    )


class KeyResolver:
    """The proxy's :data:`~spendgate.proxy.auth.KeyResolver`, with a short-lived cache."""

    def __init__(
        self,
        store: KeyStore,
        box: Callable[[], SecretBox],
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.box = box
        self.ttl = ttl
        self._clock = clock
        # Per digest: the stored key (None: unknown), reloaded in the background before
        # it is ``ttl`` old, so a busy key's calls do not wait for the database.
        self._cache: dict[str, Fresh[KeyRow | None]] = {}
        # The grant of an active key, built (and its credential decrypted) once per fetch,
        # with the row it was built from.
        self._grants: dict[str, tuple[KeyRow, ProxyKeyGrant]] = {}
        # Entries forgotten by invalidate() while a load of theirs was in flight.
        self._retired: list[Fresh[KeyRow | None]] = []
        # Digests by presented key: a SHA-256 set-up costs a few µs a call (OpenSSL 3).
        # Bounded, so a flood of random keys cannot grow it.
        self._digest = functools.lru_cache(maxsize=MAX_CACHED)(hash_key)
        # One set of log lines for all keys: an outage fails every key's load.
        self._notices = Notices(clock)

    def invalidate(self) -> None:
        """Forget every cached key (after a revocation made in this process)."""
        for entry in self._cache.values():
            entry.invalidate()  # a load in flight for it cannot answer a later call
        self._retired = [e for e in (*self._retired, *self._cache.values()) if e.busy]
        self._cache.clear()
        self._grants.clear()

    async def close(self) -> None:
        """Wait for key loads in flight (gateway shutdown)."""
        for entry in [*self._cache.values(), *self._retired]:
            await entry.close()
        self._retired = []

    def _entry(self, digest: str) -> Fresh[KeyRow | None]:
        entry = self._cache.get(digest)
        if entry is None:
            if len(self._cache) >= MAX_CACHED:
                self.invalidate()
            entry = self._cache[digest] = Fresh(
                functools.partial(self.store.key_by_hash, digest),
                ttl=self.ttl,
                what="proxy key",
                clock=self._clock,
                notices=self._notices,
            )
        return entry

    async def __call__(self, secret: str) -> ProxyKeyGrant:
        """The grant of ``secret``; :class:`AuthError` for unknown, revoked, expired keys."""
        digest = self._digest(secret)
        try:
            row = await self._entry(digest).get()
        except SQLAlchemyError:
            raise AuthError(
                "spendgate: cannot check the proxy key because the database is "
                "unavailable; retry shortly (see GET /health)",
                status=503,
                error_type="api_error",
            ) from None
        if row is None:
            raise AuthError(
                "spendgate: unknown proxy key; ask your administrator for a key "
                "(`spendgate keys create`)"
            )
        kept = self._grants.get(digest)
        # A grant answers only calls that got the row it was built from: a call that
        # waited for an older load (the key revoked meanwhile) leaves nothing to the
        # calls that read the newer row.
        if kept is None or kept[0] is not row:
            # Decrypted once per fetch, not per call; revoked and expired keys raise here.
            grant = grant_for(row, self.box, utcnow())
            self._grants[digest] = (row, grant)
            return grant
        grant = kept[1]
        if row.expires_at is not None and row.expires_at <= utcnow():
            return grant_for(row, self.box, utcnow())  # raises "has expired"
        return grant

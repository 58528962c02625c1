"""Who may use the management API: admin users, API tokens, sessions, roles.

Two roles: ``admin`` may do everything; ``viewer`` may read analytics, the
request log and budgets, and may be scoped to teams (then it sees only calls
attributed to those teams). Users sign in to the dashboard with a password
(argon2id hash); scripts use API tokens (``sgt_`` + 43 random characters,
stored as a SHA-256 hash, shown once). A sign-in opens a server-side session
(its id stored hashed, with an expiry) so replicas sharing a database share
sessions; the session's CSRF token is derived from its id and never stored.

No web framework here: the HTTP layer (``spendgate.api.access``) and the CLI
call these functions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine

from spendgate.records import utcnow
from spendgate.safety import check_accounts
from spendgate.settings import Settings
from spendgate.storage.accounts import AccountStore, NewToken, TokenRow, UserRow
from spendgate.storage.keys import KeyStore

ROLES = ("admin", "viewer")
Role = Literal["admin", "viewer"]
TOKEN_PREFIX = "sgt_"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,63}$")


class AccountError(ValueError):
    """A user or token cannot be created or changed as asked; the message says why."""


class InvalidCredentials(Exception):
    """Wrong username or password (deliberately not saying which)."""


class Throttled(Exception):
    """Too many failed sign-ins; ``retry_after`` seconds until the next attempt counts."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed sign-ins; try again in {int(retry_after) + 1} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """Whoever a management request acts as."""

    kind: Literal["local", "user", "token"]
    id: str | None
    name: str
    role: str
    teams: tuple[str, ...] | None = None  # team names; None: every team

    @property
    def is_admin(self) -> bool:
        """Whether this principal may change things and manage keys, users and tokens."""
        return self.role == "admin"

    def to_api(self) -> dict[str, Any]:
        """The ``user`` object of ``/api/auth/me`` and ``/api/auth/login``."""
        return {
            "id": self.id,
            "username": self.name,
            "role": self.role,
            "teams": None if self.teams is None else list(self.teams),
            "kind": self.kind,
        }


LOCAL = Principal(kind="local", id=None, name="local", role="admin")


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token_for(session_secret: str) -> str:
    """The CSRF token of a session: an HMAC of its id, so it needs no storage."""
    return hmac.new(session_secret.encode(), b"spendgate-csrf", hashlib.sha256).hexdigest()


def new_api_token() -> str:
    """A fresh API token: ``sgt_`` + 43 URL-safe characters (32 random bytes)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hint(token: str) -> str:
    """A short, non-secret reminder of a token for listings (``sgt_...wXyZ``)."""
    return f"{TOKEN_PREFIX}...{token[-4:]}"


def normalize_username(username: str) -> str:
    """Usernames are case-insensitive: stored and compared in lower case."""
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise AccountError(
            f"invalid username {username!r}: use 1-64 letters, digits and . _ @ + - "
            "(starting with a letter or digit)"
        )
    return name


def check_password(password: str) -> None:
    """Refuse passwords that are too short or absurdly long."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"password too long: use at most {MAX_PASSWORD} characters")


def _check_role(role: str, teams: Sequence[str]) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; use admin or viewer")
    if role == "admin" and teams:
        raise AccountError("an admin sees every team; give teams only to viewers")


@dataclass
class LoginThrottle:
    """Counts failed sign-ins per username and per client address, in this process.

    ``limit`` failures within ``window`` seconds block further attempts for that
    username (or address, at ``5 * limit``) until the oldest failure ages out.
    """

    limit: int = 10
    window: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> deque[float]:
        seen = self._failures.get(key)
        if seen is None:
            return deque()
        while seen and now - seen[0] >= self.window:
            seen.popleft()
        return seen

    def wait(self, username: str, client: str | None) -> float:
        """Seconds to wait before another attempt counts (0: go ahead)."""
        now = self.clock()
        longest = 0.0
        for key, limit in self._keys(username, client):
            seen = self._recent(key, now)
            if len(seen) >= limit:
                longest = max(longest, self.window - (now - seen[-limit]))
        return longest

    def failed(self, username: str, client: str | None) -> None:
        """Count one failed attempt."""
        if len(self._failures) > 100_000:  # a flood of names must not grow memory
            self._failures.clear()
        now = self.clock()
        for key, _ in self._keys(username, client):
            self._failures.setdefault(key, deque(maxlen=self.limit * 5)).append(now)

    def succeeded(self, username: str) -> None:
        """Forget the username's failures after a successful sign-in."""
        self._failures.pop(f"user:{username}", None)

    def _keys(self, username: str, client: str | None) -> list[tuple[str, int]]:
        keys = [(f"user:{username}", self.limit)]
        if client:
            keys.append((f"addr:{client}", self.limit * 5))
        return keys


@dataclass(frozen=True)
class IssuedToken:
    """A token as stored plus the secret, which exists only in this object."""

    row: TokenRow
    secret: str

    def to_api(self) -> dict[str, Any]:
        """The stored token's JSON with the secret under ``token`` (shown once)."""
        return {**self.row.to_api(), "token": self.secret}


@dataclass(frozen=True)
class SignedIn:
    """A new session: the cookie value, its CSRF token, who it is, when it ends."""

    secret: str
    csrf_token: str
    principal: Principal
    expires_at: datetime


def _principal(row: UserRow | TokenRow) -> Principal:
    if isinstance(row, UserRow):
        return Principal("user", row.id, row.username, row.role, row.teams)
    return Principal("token", row.id, row.name, row.role, row.teams)


class Accounts:
    """Users, API tokens and sign-in over an :class:`AccountStore`."""

    def __init__(
        self,
        store: AccountStore,
        keys: KeyStore,
        *,
        session_max_age: float = 43_200.0,
        hasher: PasswordHasher | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.session_max_age = session_max_age
        self.hasher = hasher or PasswordHasher()
        self.throttle = throttle or LoginThrottle()
        self._dummy_hash: str | None = None

    def _team_ids(self, teams: Sequence[str]) -> list[str]:
        return [self.keys.find_team(team).id for team in dict.fromkeys(teams)]

    # -- users -----------------------------------------------------------------

    def create_user(
        self, username: str, password: str, *, role: str = "admin", teams: Sequence[str] = ()
    ) -> UserRow:
        """A new user with an argon2id password hash; viewers may be scoped to ``teams``."""
        name = normalize_username(username)
        _check_role(role, teams)
        check_password(password)
        team_ids = self._team_ids(teams) if teams else None
        return self.store.create_user(name, self.hasher.hash(password), role, team_ids)

    def list_users(self) -> list[UserRow]:
        """Every user, by name."""
        return self.store.list_users()

    def delete_user(self, username: str) -> None:
        """Delete a user; refuses to remove the last admin while other accounts remain."""
        user = self.store.get_user(normalize_username(username))
        if user.role == "admin" and self.store.count_admins() == 1:
            others = len(self.store.list_users()) > 1 or bool(
                self.store.list_tokens(include_revoked=False)
            )
            if others:
                raise AccountError(
                    f"{user.username} is the last admin; create another admin first "
                    "(`spendgate users create NAME --role admin`)"
                )
        self.store.delete_user(user.username)

    def reset_password(self, username: str, password: str) -> UserRow:
        """Set a new password; every session of the user ends."""
        name = normalize_username(username)
        check_password(password)
        return self.store.set_password_hash(name, self.hasher.hash(password))

    def change_password(self, user_id: str, username: str, current: str, new: str) -> UserRow:
        """A user changing their own password (the current one is checked first)."""
        user = self.store.get_user(username)
        if user.id != user_id or not self._verify(user.password_hash, current):
            raise InvalidCredentials
        return self.reset_password(username, new)

    # -- API tokens --------------------------------------------------------------

    def create_token(
        self,
        name: str,
        *,
        role: str = "admin",
        teams: Sequence[str] = (),
        expires_at: datetime | None = None,
        created_by: str | None = None,
    ) -> IssuedToken:
        """Issue an API token for scripts; the secret is in the answer only."""
        if not name.strip():
            raise AccountError("give the token a name (what or who it is for)")
        _check_role(role, teams)
        if expires_at is not None and expires_at.tzinfo is None:
            raise AccountError("expires_at: give a time zone, e.g. 2026-12-31T00:00:00Z")
        secret = new_api_token()
        row = self.store.create_token(
            NewToken(
                name=name.strip(),
                token_hash=_sha256(secret),
                hint=token_hint(secret),
                role=role,
                team_ids=self._team_ids(teams) if teams else None,
                created_by=created_by,
                expires_at=expires_at,
            )
        )
        return IssuedToken(row, secret)

    def list_tokens(self, *, include_revoked: bool = True) -> list[TokenRow]:
        """API tokens, newest first (never the secrets)."""
        return self.store.list_tokens(include_revoked=include_revoked)

    def revoke_token(self, token_id: str) -> TokenRow:
        """Revoke a token; it stops working at once on every replica."""
        return self.store.revoke_token(token_id)

    # -- authentication ------------------------------------------------------------

    def has_accounts(self) -> bool:
        """Whether any user or unrevoked API token exists (local mode ends then)."""
        return self.store.has_accounts()

    def dummy_hash(self) -> str:
        """A hash of a random password: what an unknown username is checked against."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(password_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    def login(self, username: str, password: str, *, client: str | None = None) -> SignedIn:
        """Check a password and open a session.

        :class:`InvalidCredentials` for an unknown user or a wrong password alike
        (an unknown user costs the same argon2 verification, so timing does not
        tell them apart); :class:`Throttled` after too many failures.
        """
        name = username.strip().lower()
        wait = self.throttle.wait(name, client)
        if wait > 0:
            raise Throttled(wait)
        user = self.store.find_user(name) if _USERNAME.match(name) else None
        if user is None:
            self._verify(self.dummy_hash(), password)
            self.throttle.failed(name, client)
            raise InvalidCredentials
        if not self._verify(user.password_hash, password):
            self.throttle.failed(name, client)
            raise InvalidCredentials
        self.throttle.succeeded(name)
        if self.hasher.check_needs_rehash(user.password_hash):
            self.store.rehash_password(user.id, self.hasher.hash(password))
        secret = secrets.token_urlsafe(32)
        expires_at = utcnow() + timedelta(seconds=self.session_max_age)
        self.store.create_session(_sha256(secret), user.id, expires_at)
        return SignedIn(secret, csrf_token_for(secret), _principal(user), expires_at)

    def session(self, secret: str) -> Principal | None:
        """Who an unexpired session belongs to (role and teams as they are now), or None."""
        user = self.store.session_user(_sha256(secret), utcnow())
        return None if user is None else _principal(user)

    def logout(self, secret: str) -> None:
        """End a session."""
        self.store.delete_session(_sha256(secret))

    def token(self, secret: str) -> Principal | None:
        """Who an active API token acts as, or None (unknown, revoked, expired, not a token)."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        row = self.store.token_by_hash(_sha256(secret))
        if row is None or row.status(utcnow()) != "active":
            return None
        return _principal(row)


def open_accounts(settings: Settings, engine: Engine) -> Accounts:
    """The accounts of a starting gateway; refuses a public bind while none exists."""
    accounts = Accounts(
        AccountStore(engine), KeyStore(engine), session_max_age=settings.session_max_age
    )
    check_accounts(settings, accounts.has_accounts())
    accounts.dummy_hash()  # so the first unknown username takes no longer than later ones
    return accounts

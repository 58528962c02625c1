"""Admin users, API tokens and dashboard sessions: one typed method per question."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError

from spendgate.records import new_id, utcnow
from spendgate.storage.accounts_schema import api_tokens, sessions, users
from spendgate.storage.keys import Conflict, NotFound
from spendgate.storage.keys_schema import teams as teams_table


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def _team_ids(raw: str | None) -> tuple[str, ...] | None:
    return None if raw is None else tuple(orjson.loads(raw))


def _dump_teams(team_ids: Sequence[str] | None) -> str | None:
    return None if team_ids is None else orjson.dumps(list(team_ids)).decode()


@dataclass(frozen=True)
class UserRow:
    """A stored user. ``teams`` are team names (None: every team); the hash never leaves."""

    id: str
    username: str
    password_hash: str
    role: str
    teams: tuple[str, ...] | None
    created_at: datetime
    password_changed_at: datetime

    def to_api(self) -> dict[str, Any]:
        """The public JSON shape (no password hash)."""
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "teams": None if self.teams is None else list(self.teams),
            "created_at": _iso(self.created_at),
            "password_changed_at": _iso(self.password_changed_at),
        }


@dataclass(frozen=True)
class TokenRow:
    """A stored API token (its hash and a hint, never the token)."""

    id: str
    name: str
    token_hash: str
    hint: str
    role: str
    teams: tuple[str, ...] | None
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_api(self) -> dict[str, Any]:
        """The public JSON shape: no hash, no token."""
        return {
            "id": self.id,
            "name": self.name,
            "hint": self.hint,
            "role": self.role,
            "teams": None if self.teams is None else list(self.teams),
            "status": self.status(utcnow()),
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
        }


@dataclass(frozen=True)
class NewToken:
    """What a new API token is stored as."""

    name: str
    token_hash: str
    hint: str
    role: str
    team_ids: Sequence[str] | None = None
    created_by: str | None = None
    expires_at: datetime | None = None


class AccountStore:
    """Users, tokens and sessions in the database. Thread-safe: each method takes a connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _team_names(self, conn: Connection, ids: tuple[str, ...] | None) -> tuple[str, ...] | None:
        # A deleted team drops out of a scope; the scope stays (never widens to "all").
        if ids is None:
            return None
        if not ids:
            return ()
        rows = conn.execute(select(teams_table.c.name).where(teams_table.c.id.in_(ids)))
        return tuple(sorted(r[0] for r in rows))

    def _user(self, conn: Connection, row: Any) -> UserRow:
        m = row._mapping
        return UserRow(
            id=m["id"],
            username=m["username"],
            password_hash=m["password_hash"],
            role=m["role"],
            teams=self._team_names(conn, _team_ids(m["teams"])),
            created_at=m["created_at"],
            password_changed_at=m["password_changed_at"],
        )

    def _token(self, conn: Connection, row: Any) -> TokenRow:
        m = row._mapping
        return TokenRow(
            id=m["id"],
            name=m["name"],
            token_hash=m["token_hash"],
            hint=m["hint"],
            role=m["role"],
            teams=self._team_names(conn, _team_ids(m["teams"])),
            created_by=m["created_by"],
            created_at=m["created_at"],
            expires_at=m["expires_at"],
            revoked_at=m["revoked_at"],
        )

    # -- who exists ----------------------------------------------------------

    def has_accounts(self) -> bool:
        """Whether any user or any unrevoked API token exists (team mode)."""
        stmt = select(
            exists().select_from(users),
            exists().where(api_tokens.c.revoked_at.is_(None)),
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).one()
        return bool(row[0] or row[1])

    # -- users -----------------------------------------------------------------

    def create_user(
        self, username: str, password_hash: str, role: str, team_ids: Sequence[str] | None
    ) -> UserRow:
        """A new user; :class:`Conflict` if the name is taken."""
        now = utcnow()
        user_id = new_id()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    users.insert().values(
                        id=user_id,
                        username=username,
                        password_hash=password_hash,
                        role=role,
                        teams=_dump_teams(team_ids),
                        created_at=now,
                        password_changed_at=now,
                    )
                )
        except IntegrityError:
            raise Conflict(f"a user named {username!r} exists already") from None
        return self.get_user(username)

    def find_user(self, username: str) -> UserRow | None:
        """The user with this name, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
            return None if row is None else self._user(conn, row)

    def get_user(self, username: str) -> UserRow:
        """The user with this name; :class:`NotFound` otherwise."""
        found = self.find_user(username)
        if found is None:
            raise NotFound(f"no user {username!r}; see `spendgate users list`")
        return found

    def list_users(self) -> list[UserRow]:
        """Every user, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).all()
            return [self._user(conn, r) for r in rows]

    def count_admins(self) -> int:
        """How many users have the admin role."""
        stmt = select(func.count()).select_from(users).where(users.c.role == "admin")
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def delete_user(self, username: str) -> None:
        """Delete a user and end their sessions."""
        user = self.get_user(username)
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.user_id == user.id))
            conn.execute(delete(users).where(users.c.id == user.id))

    def set_password_hash(self, username: str, password_hash: str) -> UserRow:
        """Replace a user's password hash and end every session they have."""
        user = self.get_user(username)
        with self.engine.begin() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == user.id)
                .values(password_hash=password_hash, password_changed_at=utcnow())
            )
            conn.execute(delete(sessions).where(sessions.c.user_id == user.id))
        return self.get_user(username)

    def rehash_password(self, user_id: str, password_hash: str) -> None:
        """Store a stronger hash of the same password (argon2 parameters changed)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(users).where(users.c.id == user_id).values(password_hash=password_hash)
            )

    # -- API tokens ------------------------------------------------------------

    def create_token(self, new: NewToken) -> TokenRow:
        """Store a new token (by hash) and return it as stored."""
        token_id = new_id()
        with self.engine.begin() as conn:
            conn.execute(
                api_tokens.insert().values(
                    id=token_id,
                    name=new.name,
                    token_hash=new.token_hash,
                    hint=new.hint,
                    role=new.role,
                    teams=_dump_teams(new.team_ids),
                    created_by=new.created_by,
                    created_at=utcnow(),
                    expires_at=new.expires_at,
                )
            )
        return self.get_token(token_id)

    def get_token(self, token_id: str) -> TokenRow:
        """The token with this id; :class:`NotFound` otherwise."""
        with self.engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
            if row is None:
                raise NotFound(f"no API token {token_id!r}; see `spendgate tokens list`")
            return self._token(conn, row)

    def token_by_hash(self, token_hash: str) -> TokenRow | None:
        """The token whose secret hashes to ``token_hash`` (any status), or None."""
        with self.engine.connect() as conn:
            stmt = select(api_tokens).where(api_tokens.c.token_hash == token_hash)
            row = conn.execute(stmt).first()
            return None if row is None else self._token(conn, row)

    def list_tokens(self, *, include_revoked: bool = True) -> list[TokenRow]:
        """API tokens, newest first."""
        stmt = select(api_tokens).order_by(api_tokens.c.created_at.desc())
        if not include_revoked:
            stmt = stmt.where(api_tokens.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [self._token(conn, r) for r in conn.execute(stmt).all()]

    def revoke_token(self, token_id: str) -> TokenRow:
        """Mark a token revoked (idempotent)."""
        self.get_token(token_id)
        with self.engine.begin() as conn:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return self.get_token(token_id)

    # -- sessions --------------------------------------------------------------

    def create_session(self, id_hash: str, user_id: str, expires_at: datetime) -> None:
        """Remember a signed-in session; expired sessions are swept at the same time."""
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
            conn.execute(
                sessions.insert().values(
                    id_hash=id_hash, user_id=user_id, created_at=now, expires_at=expires_at
                )
            )

    def session_user(self, id_hash: str, now: datetime) -> UserRow | None:
        """The user of an unexpired session, or None."""
        stmt = (
            select(users)
            .select_from(sessions.join(users, sessions.c.user_id == users.c.id))
            .where(sessions.c.id_hash == id_hash, sessions.c.expires_at > now)
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
            return None if row is None else self._user(conn, row)

    def delete_session(self, id_hash: str) -> None:
        """End one session (sign-out)."""
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.id_hash == id_hash))

    def count_sessions(self, username: str) -> int:
        """Open sessions of a user (expired ones included until swept)."""
        user = self.get_user(username)
        stmt = select(func.count()).select_from(sessions).where(sessions.c.user_id == user.id)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

"""Teams and proxy keys: one typed method per question."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

import orjson
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from spendgate.colors import check_color
from spendgate.records import new_id, utcnow
from spendgate.storage.keys_schema import budgets, proxy_keys, teams
from spendgate.storage.limits_schema import rate_limits


class NotFound(LookupError):
    """No such team or key."""


class Conflict(ValueError):
    """The name is taken, or the object is in a state that forbids the change."""


@dataclass(frozen=True)
class Team:
    """A team: keys and budgets hang off it."""

    id: str
    name: str
    color: str | None
    created_at: datetime

    def to_api(self) -> dict[str, Any]:
        """The public JSON shape."""
        return {
            "id": self.id,
            "name": self.name,
            "color": self.color,
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True)
class KeyRow:
    """A stored proxy key (never the key itself: only its hash and a hint)."""

    id: str
    key_hash: str
    hint: str
    label: str
    color: str | None
    team_id: str | None
    team: str | None
    owner: str | None
    project: str | None
    tags: tuple[str, ...]
    upstream_key_enc: str | None
    upstream_fingerprint: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_to: str | None

    def status(self, now: datetime) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_api(self) -> dict[str, Any]:
        """The public JSON shape: no hash, no credential, only whether one is attached."""
        return {
            "id": self.id,
            "hint": self.hint,
            "label": self.label,
            "color": self.color,
            "team": self.team,
            "team_id": self.team_id,
            "user": self.owner,
            "project": self.project,
            "tags": list(self.tags),
            "upstream": "own" if self.upstream_key_enc else "server",
            "upstream_fingerprint": self.upstream_fingerprint,
            "status": self.status(utcnow()),
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "rotated_to": self.rotated_to,
        }


@dataclass(frozen=True)
class NewKey:
    """What a new key is created with (the hash, not the key)."""

    key_hash: str
    hint: str
    label: str
    team_id: str | None = None
    owner: str | None = None
    project: str | None = None
    tags: Sequence[str] = field(default_factory=tuple)
    upstream_key_enc: str | None = None
    upstream_fingerprint: str | None = None
    expires_at: datetime | None = None
    color: str | None = None


class KeyChanges(TypedDict, total=False):
    """What :meth:`KeyStore.update_key` changes: only the fields given (None clears)."""

    label: str
    color: str | None
    team_id: str | None
    owner: str | None
    project: str | None
    tags: Sequence[str]
    expires_at: datetime | None


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


_KEY_COLUMNS = (*proxy_keys.c, teams.c.name.label("team"))


def _key(row: Any) -> KeyRow:
    m = row._mapping
    return KeyRow(
        id=m["id"],
        key_hash=m["key_hash"],
        hint=m["hint"],
        label=m["label"],
        color=m["color"],
        team_id=m["team_id"],
        team=m["team"],
        owner=m["owner"],
        project=m["project"],
        tags=tuple(orjson.loads(m["tags"])) if m["tags"] else (),
        upstream_key_enc=m["upstream_key_enc"],
        upstream_fingerprint=m["upstream_fingerprint"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        rotated_to=m["rotated_to"],
    )


def _team(row: Any) -> Team:
    m = row._mapping
    return Team(id=m["id"], name=m["name"], color=m["color"], created_at=m["created_at"])


class KeyStore:
    """Teams and proxy keys in the database. Thread-safe: each method takes a connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- teams -------------------------------------------------------------

    def create_team(self, name: str, color: str | None = None) -> Team:
        """A new team; :class:`Conflict` if the name is taken, ``ValueError`` for a bad colour."""
        color = None if color is None else check_color(color)
        team = Team(id=new_id(), name=name, color=color, created_at=utcnow())
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    teams.insert().values(
                        id=team.id, name=name, color=color, created_at=team.created_at
                    )
                )
        except IntegrityError:
            raise Conflict(f"a team named {name!r} exists already") from None
        return team

    def list_teams(self) -> list[Team]:
        """Every team, by name."""
        with self.engine.connect() as conn:
            return [_team(r) for r in conn.execute(select(teams).order_by(teams.c.name))]

    def find_team(self, name_or_id: str) -> Team:
        """The team with this name or id; :class:`NotFound` otherwise."""
        stmt = select(teams).where((teams.c.name == name_or_id) | (teams.c.id == name_or_id))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise NotFound(f"no team {name_or_id!r}; see `spendgate teams list`")
        return _team(row)

    def update_team(
        self, name_or_id: str, *, name: str | None = None, color: str | None = None
    ) -> Team:
        """Rename or recolour a team; :class:`Conflict` if the new name is taken.

        Budgets and rate limits name their team, so a rename carries them along
        in the same transaction (viewer scopes hold the team's id). Calls
        already recorded keep the name they were recorded under.
        """
        team = self.find_team(name_or_id)
        values: dict[str, str] = {}
        if name is not None:
            if not name.strip():
                raise ValueError("a team name cannot be empty")
            values["name"] = name
        if color is not None:
            values["color"] = check_color(color)
        if not values:
            return team
        try:
            with self.engine.begin() as conn:
                conn.execute(update(teams).where(teams.c.id == team.id).values(**values))
                if name is not None and name != team.name:
                    for table in (budgets, rate_limits):
                        conn.execute(
                            update(table)
                            .where(table.c.scope == "team", table.c.scope_value == team.name)
                            .values(scope_value=name)
                        )
        except IntegrityError:
            raise Conflict(f"a team named {name!r} exists already") from None
        return self.find_team(team.id)

    def delete_team(self, name_or_id: str) -> None:
        """Delete a team; its keys stay, without a team."""
        team = self.find_team(name_or_id)
        with self.engine.begin() as conn:
            conn.execute(delete(teams).where(teams.c.id == team.id))

    # -- keys --------------------------------------------------------------

    def create_key(self, new: NewKey) -> KeyRow:
        """Store a new key (by hash) and return it as stored."""
        key_id = new_id()
        with self.engine.begin() as conn:
            conn.execute(
                proxy_keys.insert().values(
                    id=key_id,
                    key_hash=new.key_hash,
                    hint=new.hint,
                    label=new.label,
                    color=None if new.color is None else check_color(new.color),
                    team_id=new.team_id,
                    owner=new.owner,
                    project=new.project,
                    tags=orjson.dumps(list(new.tags)).decode() if new.tags else None,
                    upstream_key_enc=new.upstream_key_enc,
                    upstream_fingerprint=new.upstream_fingerprint,
                    created_at=utcnow(),
                    expires_at=new.expires_at,
                )
            )
        return self.get_key(key_id)

    def _select_keys(self) -> Any:
        return select(*_KEY_COLUMNS).select_from(
            proxy_keys.outerjoin(teams, proxy_keys.c.team_id == teams.c.id)
        )

    def get_key(self, key_id: str) -> KeyRow:
        """The key with this id; :class:`NotFound` otherwise."""
        with self.engine.connect() as conn:
            row = conn.execute(self._select_keys().where(proxy_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"no proxy key {key_id!r}; see `spendgate keys list`")
        return _key(row)

    def key_by_hash(self, key_hash: str) -> KeyRow | None:
        """The key whose secret hashes to ``key_hash`` (any status), or None."""
        stmt = self._select_keys().where(proxy_keys.c.key_hash == key_hash)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _key(row)

    def list_keys(
        self, *, team_id: str | None = None, include_revoked: bool = True
    ) -> list[KeyRow]:
        """Keys, newest first, optionally of one team or only the unrevoked."""
        stmt = self._select_keys().order_by(proxy_keys.c.created_at.desc())
        if team_id is not None:
            stmt = stmt.where(proxy_keys.c.team_id == team_id)
        if not include_revoked:
            stmt = stmt.where(proxy_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_key(r) for r in conn.execute(stmt)]

    def update_key(self, key_id: str, changes: KeyChanges) -> KeyRow:
        """Change a key's label, colour, team, owner, project, tags or expiry.

        Only the fields in ``changes`` are written; None clears one (not the label).
        """
        self.get_key(key_id)
        values: dict[str, Any] = {}
        if "label" in changes:
            if not changes["label"].strip():
                raise ValueError("a key's label cannot be empty")
            values["label"] = changes["label"]
        if "color" in changes:
            color = changes["color"]
            values["color"] = None if color is None else check_color(color)
        if "tags" in changes:
            tags = list(changes["tags"])
            values["tags"] = orjson.dumps(tags).decode() if tags else None
        if "team_id" in changes:
            values["team_id"] = changes["team_id"]
        if "owner" in changes:
            values["owner"] = changes["owner"]
        if "project" in changes:
            values["project"] = changes["project"]
        if "expires_at" in changes:
            values["expires_at"] = changes["expires_at"]
        if values:
            with self.engine.begin() as conn:
                conn.execute(update(proxy_keys).where(proxy_keys.c.id == key_id).values(**values))
        return self.get_key(key_id)

    def revoke_key(self, key_id: str, *, rotated_to: str | None = None) -> KeyRow:
        """Mark a key revoked (idempotent); returns it as stored."""
        self.get_key(key_id)
        with self.engine.begin() as conn:
            conn.execute(
                update(proxy_keys)
                .where(proxy_keys.c.id == key_id, proxy_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow(), rotated_to=rotated_to)
            )
        return self.get_key(key_id)

    def set_upstream(self, key_id: str, encrypted: str | None, fingerprint: str | None) -> KeyRow:
        """Attach (or with None, detach) an encrypted upstream credential."""
        self.get_key(key_id)
        with self.engine.begin() as conn:
            conn.execute(
                update(proxy_keys)
                .where(proxy_keys.c.id == key_id)
                .values(upstream_key_enc=encrypted, upstream_fingerprint=fingerprint)
            )
        return self.get_key(key_id)

"""``/api/teams`` and ``/api/keys``: teams and proxy keys.

A key's secret appears in exactly one response: the one that creates (or
rotates) it. Listings carry a hint (``sg-...wXyZ``), never the key or its hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from spendgate.api.errors import ApiError, reject_nulls
from spendgate.api.governance import governance, translated
from spendgate.keys import create_key, rotate_key
from spendgate.proxy.auth import fingerprint
from spendgate.storage.keys import KeyChanges

router = APIRouter(prefix="/api", tags=["keys"])


class TeamIn(BaseModel):
    """A new team."""

    name: str = Field(min_length=1, max_length=200, examples=["Engineering"])
    color: str | None = Field(default=None, max_length=16, examples=["#3b82f6"])


class TeamPatch(BaseModel):
    """A new name and/or colour for a team (fields left out stay as they are)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    color: str | None = Field(default=None, max_length=16, examples=["#3b82f6"])


class KeyIn(BaseModel):
    """A new proxy key. ``upstream_key`` is stored encrypted and never returned."""

    label: str = Field(min_length=1, max_length=200, examples=["alice laptop"])
    team: str | None = Field(default=None, description="Team name or id")
    user: str | None = Field(default=None, max_length=200)
    project: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=20)
    expires_at: datetime | None = None
    upstream_key: SecretStr | None = Field(
        default=None, description="Anthropic credential for this key (default: the server's)"
    )
    color: str | None = Field(default=None, max_length=16, examples=["#10b981"])


class KeyPatch(BaseModel):
    """Changes to a key. Fields left out stay as they are; null clears one (not the label)."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, min_length=1, max_length=200)
    color: str | None = Field(default=None, max_length=16, description="#rrggbb, or null")
    team: str | None = Field(default=None, description="Team name or id, or null for none")
    user: str | None = Field(default=None, max_length=200)
    project: str | None = Field(default=None, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=20)
    expires_at: datetime | None = Field(default=None, description="With a time zone; null: never")


class UpstreamIn(BaseModel):
    """An Anthropic credential to attach, or null to use the server's."""

    upstream_key: SecretStr | None = None


@router.get("/teams")
def list_teams(request: Request) -> list[dict[str, Any]]:
    """Every team."""
    return [t.to_api() for t in governance(request).keys.list_teams()]


@router.post("/teams", status_code=201)
def create_team(request: Request, body: TeamIn) -> dict[str, Any]:
    """Create a team (409 if the name is taken)."""
    keys = governance(request).keys
    with translated():
        return keys.create_team(body.name, body.color).to_api()


@router.patch("/teams/{team}")
def update_team(request: Request, team: str, body: TeamPatch) -> dict[str, Any]:
    """Rename or recolour a team (by name or id). Its budgets and rate limits follow a
    rename; calls already recorded keep the name they were recorded under."""
    h = governance(request)
    reject_nulls(body)
    with translated():
        updated = h.keys.update_team(team, name=body.name, color=body.color)
    h.gov.changed()
    return updated.to_api()


@router.delete("/teams/{team}")
def delete_team(request: Request, team: str) -> dict[str, Any]:
    """Delete a team by name or id; its keys stay, without a team."""
    keys = governance(request).keys
    with translated():
        keys.delete_team(team)
    return {"deleted": team}


@router.get("/keys")
def list_keys(
    request: Request, team: str | None = None, active: bool = False
) -> list[dict[str, Any]]:
    """Proxy keys, newest first (``active=true`` hides revoked ones). Never the secrets."""
    keys = governance(request).keys
    with translated():
        team_id = keys.find_team(team).id if team else None
        return [r.to_api() for r in keys.list_keys(team_id=team_id, include_revoked=not active)]


@router.post("/keys", status_code=201)
def create_proxy_key(request: Request, body: KeyIn) -> dict[str, Any]:
    """Issue a proxy key. The answer's ``key`` is the only time the secret is shown."""
    h = governance(request)
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise ApiError(400, "invalid_time", "expires_at: give a time zone, e.g. ...T00:00:00Z")
    upstream = body.upstream_key.get_secret_value() if body.upstream_key else None
    with translated():
        team_id = h.keys.find_team(body.team).id if body.team else None
        issued = create_key(
            h.keys,
            label=body.label,
            team_id=team_id,
            owner=body.user,
            project=body.project,
            tags=body.tags,
            expires_at=body.expires_at,
            upstream_key=upstream,
            box=h.gov.box() if upstream else None,
            color=body.color,
        )
    return issued.to_api()


@router.get("/keys/{key_id}")
def get_key(request: Request, key_id: str) -> dict[str, Any]:
    """One proxy key (never its secret)."""
    keys = governance(request).keys
    with translated():
        return keys.get_key(key_id).to_api()


@router.patch("/keys/{key_id}")
def update_key(request: Request, key_id: str, body: KeyPatch) -> dict[str, Any]:
    """Change a key's label, colour, team, user, project, tags or expiry (never its secret).

    Fields left out stay as they are; ``null`` clears one (``expires_at: null``: never
    expires). This gateway uses the new attribution at once, other replicas within
    the key cache TTL.
    """
    h = governance(request)
    given = body.model_fields_set
    if "label" in given and body.label is None:
        raise ApiError(
            400, "invalid_request", "label: a key needs a label; leave it out to keep it"
        )
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise ApiError(400, "invalid_time", "expires_at: give a time zone, e.g. ...T00:00:00Z")
    changes = KeyChanges()
    if body.label is not None:
        changes["label"] = body.label
    if "color" in given:
        changes["color"] = body.color
    if "user" in given:
        changes["owner"] = body.user
    if "project" in given:
        changes["project"] = body.project
    if "tags" in given:
        changes["tags"] = body.tags or []
    if "expires_at" in given:
        changes["expires_at"] = body.expires_at
    with translated():
        if "team" in given:
            changes["team_id"] = h.keys.find_team(body.team).id if body.team else None
        row = h.keys.update_key(key_id, changes)
    h.gov.changed()
    return row.to_api()


@router.post("/keys/{key_id}/revoke")
def revoke_key(request: Request, key_id: str) -> dict[str, Any]:
    """Revoke a key. This gateway refuses it at once, other replicas within the cache TTL."""
    h = governance(request)
    with translated():
        row = h.keys.revoke_key(key_id)
    h.gov.changed()
    return row.to_api()


@router.post("/keys/{key_id}/rotate", status_code=201)
def rotate_proxy_key(request: Request, key_id: str) -> dict[str, Any]:
    """Issue a replacement key with the same settings and revoke the old one."""
    h = governance(request)
    with translated():
        issued = rotate_key(h.keys, key_id)
    h.gov.changed()
    return issued.to_api()


@router.put("/keys/{key_id}/upstream")
def set_upstream(request: Request, key_id: str, body: UpstreamIn) -> dict[str, Any]:
    """Attach an Anthropic credential (stored encrypted), or detach it with null."""
    h = governance(request)
    secret = body.upstream_key.get_secret_value() if body.upstream_key else None
    with translated():
        if secret is None:
            row = h.keys.set_upstream(key_id, None, None)
        else:
            row = h.keys.set_upstream(key_id, h.gov.box().encrypt(secret), fingerprint(secret))
    h.gov.changed()
    return row.to_api()

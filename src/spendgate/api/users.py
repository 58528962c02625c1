"""``/api/users`` and ``/api/tokens``: dashboard users and API tokens (admins only).

A token's secret appears in exactly one response, the one that creates it;
passwords never appear in any.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, SecretStr

from spendgate.api.access import current_identity, gateway_accounts
from spendgate.api.governance import translated

router = APIRouter(prefix="/api", tags=["users"])


class UserIn(BaseModel):
    """A new user. Viewers may be limited to teams (names or ids)."""

    username: str = Field(min_length=1, max_length=64, examples=["alice"])
    password: SecretStr = Field(max_length=1024)
    role: Literal["admin", "viewer"] = "viewer"
    teams: list[str] = Field(default_factory=list, max_length=100)


class PasswordIn(BaseModel):
    """A new password."""

    password: SecretStr = Field(max_length=1024)


class TokenIn(BaseModel):
    """A new API token for scripts."""

    name: str = Field(min_length=1, max_length=200, examples=["nightly export"])
    role: Literal["admin", "viewer"] = "viewer"
    teams: list[str] = Field(default_factory=list, max_length=100)
    expires_at: datetime | None = None


@router.get("/users")
def list_users(request: Request) -> list[dict[str, Any]]:
    """Every dashboard user (never a password or its hash)."""
    return [u.to_api() for u in gateway_accounts(request).list_users()]


@router.post("/users", status_code=201)
def create_user(request: Request, body: UserIn) -> dict[str, Any]:
    """Create a user (409 if the name is taken). The password is stored as an argon2 hash."""
    accounts = gateway_accounts(request)
    with translated():
        user = accounts.create_user(
            body.username, body.password.get_secret_value(), role=body.role, teams=body.teams
        )
    return user.to_api()


@router.delete("/users/{username}")
def delete_user(request: Request, username: str) -> dict[str, Any]:
    """Delete a user and end their sessions (the last admin cannot go while others remain)."""
    with translated():
        gateway_accounts(request).delete_user(username)
    return {"deleted": username}


@router.put("/users/{username}/password")
def reset_password(request: Request, username: str, body: PasswordIn) -> dict[str, Any]:
    """Set a user's password; every session of that user ends."""
    with translated():
        user = gateway_accounts(request).reset_password(username, body.password.get_secret_value())
    return user.to_api()


@router.get("/tokens")
def list_tokens(request: Request, active: bool = False) -> list[dict[str, Any]]:
    """API tokens, newest first (``active=true`` hides revoked ones). Never the secrets."""
    rows = gateway_accounts(request).list_tokens(include_revoked=not active)
    return [r.to_api() for r in rows]


@router.post("/tokens", status_code=201)
def create_token(request: Request, body: TokenIn) -> dict[str, Any]:
    """Issue an API token. The answer's ``token`` is the only time the secret is shown."""
    principal = current_identity(request).principal
    with translated():
        issued = gateway_accounts(request).create_token(
            body.name,
            role=body.role,
            teams=body.teams,
            expires_at=body.expires_at,
            created_by=None if principal is None else principal.name,
        )
    return issued.to_api()


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: str) -> dict[str, Any]:
    """Revoke a token; every replica refuses it from the next request on."""
    with translated():
        return gateway_accounts(request).revoke_token(token_id).to_api()

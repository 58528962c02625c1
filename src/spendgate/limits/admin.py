"""Creating rate limits with their scope checked (shared by the CLI and the API)."""

from __future__ import annotations

from spendgate.limits.model import EACH, SCOPES, RateLimit, Scope
from spendgate.storage.keys import KeyStore
from spendgate.storage.limits import LimitStore


def check_scope(keys: KeyStore, scope: str, value: str | None) -> tuple[Scope, str]:
    """A valid (scope, value): ``*`` means each value; a team becomes its name; a key must
    exist."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
    if scope == "global":
        return "global", ""
    if not value:
        raise ValueError(f"a {scope} rate limit needs a value (which {scope}? or * for each)")
    if value == EACH:
        return scope, EACH  # type: ignore[return-value]  # checked against SCOPES above
    if scope == "team":
        return "team", keys.find_team(value).name
    if scope == "key":
        return "key", keys.get_key(value).id
    return scope, value  # type: ignore[return-value]  # checked against SCOPES above


def create_limit(
    keys: KeyStore,
    limits: LimitStore,
    *,
    scope: str,
    value: str | None,
    requests_per_minute: int | None = None,
    input_tokens_per_minute: int | None = None,
    output_tokens_per_minute: int | None = None,
    name: str | None = None,
) -> RateLimit:
    """Validate and store a rate limit; :class:`ValueError` or ``NotFound`` says what is wrong."""
    checked_scope, checked_value = check_scope(keys, scope, value)
    return limits.create_limit(
        scope=checked_scope,
        scope_value=checked_value,
        requests_per_minute=requests_per_minute,
        input_tokens_per_minute=input_tokens_per_minute,
        output_tokens_per_minute=output_tokens_per_minute,
        name=name,
    )

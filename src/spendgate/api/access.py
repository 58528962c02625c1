"""Who may call which management endpoint: the policy table and the FastAPI dependency.

Every route of the management app is classified in :data:`POLICY` by method and
path template. A route that is not classified is treated as admin-only (fail
closed), and ``tests/test_accounts.py`` fails until it is classified.

Modes:

* **local** -- no user and no unrevoked API token exists, the gateway is bound
  to loopback and the request names a loopback host (not a DNS-rebound name,
  not through a reverse proxy): everything is allowed without signing in, as
  the single local admin. Browser mutations must still come from the gateway's
  own origin and carry the local CSRF token from ``GET /api/auth/me``.
* **team** -- otherwise: a session cookie (dashboard; mutations need the
  ``X-CSRF-Token`` header) or an API token (``Authorization: Bearer sgt_...``,
  or ``x-api-key`` as Anthropic's Admin API clients send it; no CSRF).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError

from spendgate.accounts import LOCAL, Accounts, Principal, csrf_token_for
from spendgate.api.errors import ApiError
from spendgate.settings import is_loopback_host

if TYPE_CHECKING:
    from spendgate.app import Gateway

SESSION_COOKIE = "spendgate_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A request carrying any of these came through a proxy: never local mode.
_FORWARDED = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip")
_LOCAL_CSRF_PURPOSE = "spendgate-local-csrf"


class Access(StrEnum):
    """What a route requires in team mode."""

    PUBLIC = "public"  # anyone: health, sign-in, who-am-I
    SIGNED_IN = "signed_in"  # any user or token: sign-out, API docs
    READ = "read"  # admins and viewers scoped to no team
    TEAM_READ = "team_read"  # admins and viewers; a team-scoped viewer passes team=<its team>
    ADMIN = "admin"  # admins only


_A = Access
POLICY: dict[tuple[str, str], Access] = {
    ("GET", "/health"): _A.PUBLIC,
    # operations (api/operations.py): probes are public, metrics carry spend by team and key
    ("GET", "/livez"): _A.PUBLIC,
    ("GET", "/readyz"): _A.PUBLIC,
    ("GET", "/metrics"): _A.READ,
    # sign-in (api/auth.py)
    ("POST", "/api/auth/login"): _A.PUBLIC,
    ("GET", "/api/auth/me"): _A.PUBLIC,
    ("POST", "/api/auth/logout"): _A.SIGNED_IN,
    ("PUT", "/api/auth/password"): _A.SIGNED_IN,
    ("GET", "/api/openapi.json"): _A.SIGNED_IN,
    ("GET", "/api/docs"): _A.SIGNED_IN,
    # users and API tokens (api/users.py)
    ("GET", "/api/users"): _A.ADMIN,
    ("POST", "/api/users"): _A.ADMIN,
    ("DELETE", "/api/users/{username}"): _A.ADMIN,
    ("PUT", "/api/users/{username}/password"): _A.ADMIN,
    ("GET", "/api/tokens"): _A.ADMIN,
    ("POST", "/api/tokens"): _A.ADMIN,
    ("POST", "/api/tokens/{token_id}/revoke"): _A.ADMIN,
    # the request log (api/requests.py); one call by id has no team filter
    ("GET", "/api/requests"): _A.TEAM_READ,
    ("GET", "/api/requests/{call_id}"): _A.READ,
    ("POST", "/api/requests"): _A.ADMIN,
    ("DELETE", "/api/requests"): _A.ADMIN,
    # analytics (api/analytics.py); with team=, the forecast lists only that team's budgets
    ("GET", "/api/analytics/summary"): _A.TEAM_READ,
    ("GET", "/api/analytics/timeseries"): _A.TEAM_READ,
    ("GET", "/api/analytics/breakdown"): _A.TEAM_READ,
    ("GET", "/api/analytics/forecast"): _A.TEAM_READ,
    # exports (api/exports.py); chargeback and FOCUS cover every team
    ("GET", "/api/export"): _A.TEAM_READ,
    ("GET", "/api/export/chargeback"): _A.READ,
    ("GET", "/api/export/focus"): _A.READ,
    # Anthropic Admin API compatible reports (api/admin.py)
    ("GET", "/v1/organizations/usage_report/messages"): _A.READ,
    ("GET", "/v1/organizations/cost_report"): _A.READ,
    # teams and proxy keys (api/keys.py): key management is for admins
    ("GET", "/api/teams"): _A.READ,
    ("POST", "/api/teams"): _A.ADMIN,
    ("PATCH", "/api/teams/{team}"): _A.ADMIN,
    ("DELETE", "/api/teams/{team}"): _A.ADMIN,
    ("GET", "/api/keys"): _A.ADMIN,
    ("POST", "/api/keys"): _A.ADMIN,
    ("GET", "/api/keys/{key_id}"): _A.ADMIN,
    ("PATCH", "/api/keys/{key_id}"): _A.ADMIN,
    ("POST", "/api/keys/{key_id}/revoke"): _A.ADMIN,
    ("POST", "/api/keys/{key_id}/rotate"): _A.ADMIN,
    ("PUT", "/api/keys/{key_id}/upstream"): _A.ADMIN,
    # budgets (api/budgets.py)
    ("GET", "/api/budgets"): _A.READ,
    ("GET", "/api/budgets/{budget_id}"): _A.READ,
    ("POST", "/api/budgets"): _A.ADMIN,
    ("PUT", "/api/budgets/{budget_id}/limit"): _A.ADMIN,
    ("PATCH", "/api/budgets/{budget_id}"): _A.ADMIN,
    ("DELETE", "/api/budgets/{budget_id}"): _A.ADMIN,
    # imports (api/imports.py)
    ("POST", "/api/import/claude-code"): _A.ADMIN,
    # rate limits (api/limits.py)
    ("GET", "/api/limits"): _A.READ,
    ("GET", "/api/limits/{limit_id}"): _A.READ,
    ("POST", "/api/limits"): _A.ADMIN,
    ("DELETE", "/api/limits/{limit_id}"): _A.ADMIN,
    # alerts (api/alerts.py): the history is readable; channels hold recipients and secrets
    ("GET", "/api/alerts"): _A.READ,
    ("POST", "/api/alerts/evaluate"): _A.ADMIN,
    ("GET", "/api/alerts/channels"): _A.ADMIN,
    ("POST", "/api/alerts/channels"): _A.ADMIN,
    ("DELETE", "/api/alerts/channels/{channel}"): _A.ADMIN,
    ("POST", "/api/alerts/channels/{channel}/test"): _A.ADMIN,
}


def classify(method: str, path: str) -> Access | None:
    """The access a route requires, or None if the policy does not name it."""
    if method in ("HEAD", "OPTIONS"):
        method = "GET"
    return POLICY.get((method, path))


def required_access(method: str, path: str) -> Access:
    """What a route requires; an unclassified route is admin-only."""
    return classify(method, path) or Access.ADMIN


@dataclass(frozen=True)
class Identity:
    """What a request is authenticated as (``principal`` None: nobody)."""

    mode: Literal["local", "team"]
    principal: Principal | None
    via: Literal["local", "session", "token"] | None
    csrf_token: str | None
    problem: str = ""  # why the request is not authenticated


class AdminApiDenied(ApiError):
    """A refusal under ``/v1/organizations``, in Anthropic's error shape."""

    def body(self) -> dict[str, Any]:
        """Anthropic's ``authentication_error`` / ``permission_error`` body."""
        kind = "authentication_error" if self.status == 401 else "permission_error"
        return {"type": "error", "error": {"type": kind, "message": self.message}}


def _denied(request: Request, status: int, code: str, message: str) -> ApiError:
    if request.url.path.startswith("/v1/"):
        return AdminApiDenied(status, code, message)
    return ApiError(status, code, message)


def gateway_accounts(request: Request) -> Accounts:
    """The running gateway's accounts, or a 503 while it starts."""
    gateway: Gateway = request.app.state.gateway
    if gateway.accounts is None:
        raise ApiError(503, "not_ready", "the gateway is still starting; retry in a moment")
    return gateway.accounts


def local_csrf_token(gateway: Gateway) -> str:
    """The CSRF token of local mode: derived from the master key, stable across restarts."""
    assert gateway.governance is not None
    return gateway.governance.box().derive(_LOCAL_CSRF_PURPOSE)


def presented_token(request: Request) -> str | None:
    """An API token from ``Authorization: Bearer`` or ``x-api-key``, if one was sent."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = request.headers.get("x-api-key", "").strip()
    return api_key or None


def _is_local_request(request: Request) -> bool:
    if any(name in request.headers for name in _FORWARDED):
        return False
    hostname = urlsplit("//" + request.headers.get("host", "")).hostname
    return hostname is not None and is_loopback_host(hostname)


NOBODY_YET = (
    "no user or API token exists yet and this request is not local; create an admin with "
    "`spendgate users create NAME --role admin` on the gateway's host"
)
SIGN_IN = (
    "sign in (POST /api/auth/login) or send an API token as Authorization: Bearer sgt_... "
    "(create one with `spendgate tokens create`)"
)


def identify(request: Request) -> Identity:
    """Who the request is: local mode, a session, an API token, or nobody."""
    gateway: Gateway = request.app.state.gateway
    accounts = gateway_accounts(request)
    try:
        if not accounts.has_accounts():
            if gateway.settings.is_loopback and _is_local_request(request):
                return Identity("local", LOCAL, "local", local_csrf_token(gateway))
            return Identity("team", None, None, None, NOBODY_YET)
        token = presented_token(request)
        if token is not None:
            principal = accounts.token(token)
            if principal is None:
                problem = "invalid, revoked or expired API token; " + SIGN_IN
                return Identity("team", None, None, None, problem)
            return Identity("team", principal, "token", None)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal = accounts.session(cookie)
            if principal is None:
                return Identity("team", None, None, None, "your session has ended; sign in again")
            return Identity("team", principal, "session", csrf_token_for(cookie))
    except SQLAlchemyError as exc:
        raise ApiError(
            503,
            "database_unavailable",
            f"cannot check credentials: the database is unavailable ({type(exc).__name__}); "
            "retry shortly (see GET /health)",
        ) from exc
    return Identity("team", None, None, None, SIGN_IN)


def current_identity(request: Request) -> Identity:
    """The identity :func:`authorize` established, or a fresh one for public routes."""
    found = getattr(request.state, "identity", None)
    if isinstance(found, Identity):
        return found
    identity = identify(request)
    request.state.identity = identity
    return identity


def _same(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(str(given), str(expected))


def _check_local_browser(request: Request, identity: Identity) -> None:
    # Scripts (curl, httpx, the SDKs) send neither header and need nothing more.
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    if origin is None and site is None:
        return
    own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    if origin is not None and origin.lower() != own:
        raise _denied(request, 403, "csrf_failed", f"cross-origin request from {origin} refused")
    if site is not None and site.lower() not in ("same-origin", "none"):
        raise _denied(request, 403, "csrf_failed", f"{site} request refused")
    _require_csrf(request, identity.csrf_token)


def _require_csrf(request: Request, expected: str | None) -> None:
    if not _same(request.headers.get(CSRF_HEADER), expected):
        raise _denied(
            request,
            403,
            "csrf_failed",
            "missing or wrong X-CSRF-Token header; take it from GET /api/auth/me",
        )


def _check_team_scope(request: Request, principal: Principal, access: Access) -> None:
    teams = principal.teams or ()
    shown = ", ".join(teams) or "none"
    if access is Access.READ:
        raise _denied(
            request,
            403,
            "forbidden",
            f"this endpoint covers every team; {principal.name} may see only teams: {shown}",
        )
    asked = request.query_params.getlist("team")
    if len(asked) != 1 or asked[0] not in teams:
        raise _denied(
            request,
            403,
            "forbidden",
            f"{principal.name} may see only teams {shown}: add team=<one of them> to the query",
        )


def authorize(request: Request) -> None:
    """The dependency on every management route: authenticate, then apply :data:`POLICY`."""
    route = request.scope.get("route")
    path = getattr(route, "path_format", None) or request.url.path
    access = required_access(request.method, path)
    mutating = request.method not in SAFE_METHODS
    if mutating and request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise _denied(request, 403, "csrf_failed", "cross-site request refused")
    if access is Access.PUBLIC:
        return
    identity = current_identity(request)
    if identity.mode == "local":
        if mutating:
            _check_local_browser(request, identity)
        return
    principal = identity.principal
    if principal is None:
        raise _denied(request, 401, "unauthenticated", identity.problem)
    if identity.via == "session" and mutating:
        _require_csrf(request, identity.csrf_token)
    if access is Access.SIGNED_IN or principal.is_admin:
        return
    if access is Access.ADMIN:
        raise _denied(
            request, 403, "forbidden", f"this needs the admin role; {principal.name} is a viewer"
        )
    if principal.teams is not None:
        _check_team_scope(request, principal, access)

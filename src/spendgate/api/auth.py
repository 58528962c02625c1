"""``/api/auth``: dashboard sign-in, sign-out, who-am-I, own password; the API docs.

The dashboard's contract: it calls ``GET /api/auth/me`` first; in team mode
without a user it shows the sign-in form, which posts to ``/api/auth/login``.
The session lives in an HttpOnly, SameSite=Strict cookie; every mutation
carries ``X-CSRF-Token`` with the ``csrf_token`` of the latest answer of
``/api/auth/me`` or ``/api/auth/login``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, SecretStr

from spendgate.accounts import AccountError, InvalidCredentials, Principal, SignedIn, Throttled
from spendgate.api.access import SESSION_COOKIE, current_identity, gateway_accounts
from spendgate.api.errors import ApiError

router = APIRouter(prefix="/api/auth", tags=["auth"])
docs_router = APIRouter(prefix="/api", include_in_schema=False)


class LoginIn(BaseModel):
    """Username and password."""

    username: str = Field(max_length=200, examples=["alice"])
    password: SecretStr = Field(max_length=1024)


class PasswordChangeIn(BaseModel):
    """The current password and the new one."""

    current_password: SecretStr = Field(max_length=1024)
    new_password: SecretStr = Field(max_length=1024)


class UserOut(BaseModel):
    """Who is signed in. ``teams`` null: every team; ``kind`` is user, token or local."""

    id: str | None
    username: str
    role: Literal["admin", "viewer"]
    teams: list[str] | None
    kind: Literal["local", "user", "token"]


class LoginOut(BaseModel):
    """A new session: who it is and the CSRF token to send as ``X-CSRF-Token``."""

    user: UserOut
    csrf_token: str


class MeOut(BaseModel):
    """The mode, who the request is (null: nobody) and its CSRF token (null: none needed)."""

    mode: Literal["local", "team"]
    user: UserOut | None
    csrf_token: str | None


def _user(principal: Principal) -> UserOut:
    return UserOut.model_validate(principal.to_api())


def _is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _start_session(request: Request, response: Response, signed: SignedIn) -> LoginOut:
    max_age = int(request.app.state.gateway.settings.session_max_age)
    response.set_cookie(
        SESSION_COOKIE,
        signed.secret,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_is_https(request),
    )
    return LoginOut(user=_user(signed.principal), csrf_token=signed.csrf_token)


def _end_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_is_https(request)
    )


def _throttled(exc: Throttled) -> JSONResponse:
    error = ApiError(429, "too_many_attempts", str(exc))
    return JSONResponse(
        error.body(), status_code=429, headers={"Retry-After": str(int(exc.retry_after) + 1)}
    )


_LOGIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "invalid_credentials: wrong username or password"},
    429: {"description": "too_many_attempts: too many failed sign-ins (Retry-After)"},
}


@router.post("/login", response_model=LoginOut, responses=_LOGIN_ERRORS)
def login(request: Request, response: Response, body: LoginIn) -> LoginOut | JSONResponse:
    """Sign in with a username and password. Sets the HttpOnly session cookie and answers
    the user and the CSRF token. A wrong password and an unknown user get the same 401
    ``invalid_credentials``; repeated failures get 429 ``too_many_attempts``."""
    accounts = gateway_accounts(request)
    client = request.client.host if request.client else None
    try:
        signed = accounts.login(body.username, body.password.get_secret_value(), client=client)
    except Throttled as exc:
        return _throttled(exc)
    except InvalidCredentials:
        raise ApiError(401, "invalid_credentials", "wrong username or password") from None
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        accounts.logout(previous)
    return _start_session(request, response, signed)


@router.post("/logout")
def logout(request: Request, response: Response) -> dict[str, bool]:
    """Sign out: the session ends on every replica and the cookie is cleared."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and current_identity(request).via == "session":
        gateway_accounts(request).logout(cookie)
    _end_session(request, response)
    return {"logged_out": True}


@router.get("/me", response_model=MeOut)
def me(request: Request) -> MeOut:
    """Who this request is. ``mode`` is ``local`` (no accounts exist, loopback: no sign-in
    needed) or ``team``; ``user`` is null when nobody is signed in; ``csrf_token`` is what
    mutations must send as ``X-CSRF-Token`` (null for API tokens, which need none)."""
    identity = current_identity(request)
    user = None if identity.principal is None else _user(identity.principal)
    return MeOut(mode=identity.mode, user=user, csrf_token=identity.csrf_token)


@router.put("/password", response_model=LoginOut, responses=_LOGIN_ERRORS)
def change_password(
    request: Request, response: Response, body: PasswordChangeIn
) -> LoginOut | JSONResponse:
    """Change your own password. Every session of yours ends; this answer opens a new one."""
    principal = current_identity(request).principal
    if principal is None or principal.kind != "user" or principal.id is None:
        raise ApiError(
            400, "not_a_user", "only a signed-in user has a password; use `spendgate users`"
        )
    accounts = gateway_accounts(request)
    new = body.new_password.get_secret_value()
    try:
        accounts.change_password(
            principal.id, principal.name, body.current_password.get_secret_value(), new
        )
        signed = accounts.login(principal.name, new)
    except InvalidCredentials:
        raise ApiError(401, "invalid_credentials", "the current password is wrong") from None
    except Throttled as exc:
        return _throttled(exc)
    except AccountError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    return _start_session(request, response, signed)


@docs_router.get("/openapi.json")
def openapi_schema(request: Request) -> JSONResponse:
    """The OpenAPI description of this API."""
    return JSONResponse(request.app.openapi())


@docs_router.get("/docs")
def api_docs(request: Request) -> HTMLResponse:
    """The interactive API documentation (Swagger UI)."""
    return get_swagger_ui_html(openapi_url="/api/openapi.json", title="spendgate API")

"""The web dashboard's files: the built single-page app, served with strict security headers.

An ASGI middleware in front of the management app answers ``GET``/``HEAD`` for
the bundle's files and for the dashboard's client routes (``/``, ``/requests/...``),
and passes everything else on untouched. It never answers under ``/api``,
``/health`` or ``/v1``, so routes added to the API later are never shadowed.

The bundle is built from ``web/`` by ``make web`` into ``spendgate/static``; when
it is missing, ``/`` says how to build it instead.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# The dashboard's client-side routes (web/src/router.tsx); deep links to them load the app.
CLIENT_ROUTES = ("/requests", "/keys", "/budgets", "/log", "/data", "/login")
# Never answered from the bundle, whatever it contains.
RESERVED_PREFIXES = ("/api/", "/v1/", "/health")

# No inline script or style, nothing from another origin, never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)

MISSING_BUNDLE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spendgate: dashboard not built</title></head>
<body>
<h1>spendgate is running; the dashboard is not built</h1>
<p>The gateway, the proxy (<code>/v1/messages</code>) and the JSON API
(<a href="/api/docs">/api/docs</a>) work without it.</p>
<p>To build the dashboard (needs Node.js 20.19+ and npm), run <code>make web</code>
in a checkout of spendgate, or <code>make run</code> to build it and start the gateway.
Then reload this page.</p>
</body></html>
"""


def is_client_route(path: str) -> bool:
    """True for the paths the single-page app routes itself (``/``, ``/keys``, ``/requests/x``)."""
    if path == "/":
        return True
    return any(path == route or path.startswith(route + "/") for route in CLIENT_ROUTES)


class DashboardFiles:
    """ASGI middleware: the dashboard's files and routes, else the wrapped app."""

    def __init__(self, app: ASGIApp, static_dir: Path = STATIC_DIR) -> None:
        self.app = app
        self.static_dir = static_dir.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(RESERVED_PREFIXES):
            await self.app(scope, receive, send)
            return
        asset = self._asset(path)
        if asset is not None:
            await self._file(scope, send, asset, immutable=path.startswith("/assets/"))
        elif is_client_route(path):
            index = self.static_dir / "index.html"
            if index.is_file():
                await self._file(scope, send, index, immutable=False)
            else:
                await _respond(scope, send, 200, MISSING_BUNDLE, b"text/html; charset=utf-8")
        else:
            await self.app(scope, receive, send)

    def _asset(self, path: str) -> Path | None:
        """The bundle file for ``path``, or None; never a file outside the bundle."""
        if path == "/" or path.endswith("/") or path == "/index.html":
            return None
        candidate = (self.static_dir / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.static_dir) or not candidate.is_file():
            return None
        return candidate

    async def _file(self, scope: Scope, send: Send, file: Path, *, immutable: bool) -> None:
        kind, _ = mimetypes.guess_type(file.name)
        content_type = kind or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript",):
            content_type += "; charset=utf-8"
        # Hashed asset names never change content; index.html must always be revalidated.
        cache = b"public, max-age=31536000, immutable" if immutable else b"no-cache"
        await _respond(scope, send, 200, file.read_bytes(), content_type.encode(), cache)


async def _respond(
    scope: Scope,
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    cache: bytes = b"no-cache",
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", cache),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

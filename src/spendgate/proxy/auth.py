"""Who is calling, with which upstream credential, charged to whom.

Three ways in (see docs/proxy.md):

1. the client sends its own Anthropic credential: forwarded as is, the call
   attributed to a fingerprint of it (the secret is never stored);
2. the client sends nothing: the server's ``ANTHROPIC_API_KEY`` is injected
   (loopback only, unless explicitly allowed);
3. the client sends a spendgate proxy key (``sg-…``): resolved by a
   :class:`KeyResolver` (the keys module) to an upstream credential and defaults.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from spendgate.records import Attribution

PROXY_KEY_PREFIX = "sg-"

# Headers of ours: read for attribution, never forwarded upstream.
OUR_HEADERS = frozenset(
    {b"x-spendgate-user", b"x-spendgate-project", b"x-spendgate-tags", b"x-spendgate-team"}
)
MAX_ATTRIBUTE = 200
MAX_TAGS = 20
_MAX_FINGERPRINTS = 10_000


def fingerprint(secret: str) -> str:
    """A stable, non-reversible name for a credential (first 16 hex of SHA-256)."""
    return "fp_" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def credential_kind(secret: str) -> str:
    """What sort of Anthropic credential a secret looks like."""
    if secret.startswith("sk-ant-oat"):
        return "oauth"
    if secret.startswith("sk-ant-admin"):
        return "admin"
    if secret.startswith("sk-ant-"):
        return "api_key"
    return "bearer"


class AuthError(Exception):
    """The call cannot be let through; answered as Anthropic's ``authentication_error``."""

    def __init__(
        self, message: str, *, status: int = 401, error_type: str = "authentication_error"
    ):
        super().__init__(message)
        self.status = status
        self.error_type = error_type


@dataclass
class Resolved:
    """The outcome of authentication for one call."""

    # Headers to set upstream instead of the client's credential headers, or
    # None to forward the client's credential headers untouched.
    upstream_auth: list[tuple[bytes, bytes]] | None
    attribution: Attribution = field(default_factory=Attribution)
    budget_scopes: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ProxyKeyGrant:
    """What a valid proxy key grants: its upstream credential and its defaults."""

    key_id: str
    label: str
    upstream_key: str | None  # None: use the server credential
    team: str | None = None
    user: str | None = None
    project: str | None = None
    tags: tuple[str, ...] = ()


KeyResolver = Callable[[str], Awaitable[ProxyKeyGrant]]


def _clean(value: bytes) -> str | None:
    text = value.decode("utf-8", "replace").strip()
    return text[:MAX_ATTRIBUTE] or None


def read_client_credential(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The credential the client sent: (x-api-key value, bearer token)."""
    api_key = bearer = None
    for name, value in headers:
        if name == b"x-api-key":
            api_key = value.decode("latin-1").strip()
        elif name == b"authorization":
            text = value.decode("latin-1").strip()
            if text[:7].lower() == "bearer ":
                bearer = text[7:].strip()
    return api_key or None, bearer or None


def read_attribution(headers: list[tuple[bytes, bytes]], attribution: Attribution) -> None:
    """Fill user, project, tags, session and agent from headers (they override key defaults)."""
    for name, value in headers:
        if name == b"x-spendgate-user":
            attribution.user = _clean(value) or attribution.user
        elif name == b"x-spendgate-project":
            attribution.project = _clean(value) or attribution.project
        elif name == b"x-spendgate-tags":
            extra = [t.strip()[:MAX_ATTRIBUTE] for t in value.decode("utf-8", "replace").split(",")]
            merged = list(dict.fromkeys([*attribution.tags, *(t for t in extra if t)]))
            attribution.tags = merged[:MAX_TAGS]
        elif name == b"x-claude-code-session-id":
            attribution.session_id = _clean(value)
        elif name == b"x-claude-code-agent-id":
            attribution.agent_id = _clean(value)


class Authenticator:
    """Decides, per call, which credential goes upstream and who is charged."""

    def __init__(
        self,
        *,
        server_key: str | None,
        server_key_usable: bool,
        allow_client_credentials: bool,
        key_resolver: KeyResolver | None = None,
    ) -> None:
        self._server_key = server_key
        self._server_key_usable = server_key_usable
        self._allow_client = allow_client_credentials
        self._resolver = key_resolver
        self._server_fp = fingerprint(server_key) if server_key else None
        # Fingerprints by credential: a SHA-256 per call adds up. Bounded, so a
        # flood of random credentials cannot grow it.
        self._fingerprints: dict[str, str] = {}

    def _fingerprint(self, secret: str) -> str:
        found = self._fingerprints.get(secret)
        if found is None:
            if len(self._fingerprints) >= _MAX_FINGERPRINTS:
                self._fingerprints.clear()
            found = self._fingerprints[secret] = fingerprint(secret)
        return found

    def _server_headers(self) -> list[tuple[bytes, bytes]]:
        assert self._server_key is not None
        return [(b"x-api-key", self._server_key.encode("latin-1"))]

    async def resolve(self, headers: list[tuple[bytes, bytes]]) -> Resolved:
        """Authenticate one call; raises :class:`AuthError` to refuse it."""
        api_key, bearer = read_client_credential(headers)
        secret = api_key or bearer
        if secret and secret.startswith(PROXY_KEY_PREFIX):
            resolved = await self._proxy_key(secret)
        elif secret:
            if not self._allow_client:
                raise AuthError(
                    "spendgate: this gateway does not forward client Anthropic credentials; "
                    "use a spendgate proxy key (sg-...) from your administrator"
                )
            resolved = Resolved(
                upstream_auth=None,
                attribution=Attribution(
                    credential_fingerprint=self._fingerprint(secret),
                    credential_kind=credential_kind(secret),
                ),
            )
        else:
            resolved = self._server_credential()
        read_attribution(headers, resolved.attribution)
        return resolved

    def _server_credential(self) -> Resolved:
        if self._server_key is None:
            raise AuthError(
                "spendgate: no credential. Send your Anthropic API key (x-api-key or "
                "Authorization: Bearer), a spendgate proxy key, or start the gateway with "
                "ANTHROPIC_API_KEY set"
            )
        if not self._server_key_usable:
            raise AuthError(
                "spendgate: the server's ANTHROPIC_API_KEY is only used for clients without "
                "a credential while bound to loopback; send a proxy key (sg-...) or set "
                "SPENDGATE_ALLOW_SERVER_KEY_REMOTE=true"
            )
        return Resolved(
            upstream_auth=self._server_headers(),
            attribution=Attribution(
                credential_fingerprint=self._server_fp, credential_kind="server"
            ),
        )

    async def _proxy_key(self, secret: str) -> Resolved:
        if self._resolver is None:
            raise AuthError("spendgate: unknown proxy key")
        grant = await self._resolver(secret)
        fp: str | None
        if grant.upstream_key is not None:
            upstream = [(b"x-api-key", grant.upstream_key.encode("latin-1"))]
            fp = self._fingerprint(grant.upstream_key)
        elif self._server_key is not None:
            upstream, fp = self._server_headers(), self._server_fp
        else:
            raise AuthError(
                f"spendgate: proxy key {grant.label!r} has no Anthropic credential and the "
                "gateway has no ANTHROPIC_API_KEY; attach one with `spendgate keys set-upstream`",
                status=500,
                error_type="api_error",
            )
        attribution = Attribution(
            credential_fingerprint=fp,
            credential_kind="proxy_key",
            key_id=grant.key_id,
            key_label=grant.label,
            team=grant.team,
            user=grant.user,
            project=grant.project,
            tags=list(grant.tags),
        )
        return Resolved(upstream_auth=upstream, attribution=attribution)

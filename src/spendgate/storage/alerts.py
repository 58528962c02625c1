"""Alert channels, the alert history and deliveries.

Firing is an ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING``: of several
gateways evaluating the same rule, exactly one inserts the alert, and in the
same transaction one pending delivery per channel that wants it. Deliveries
are claimed before they are attempted (an ``UPDATE`` that moves
``next_attempt_at`` a lease ahead, conditional on the value the claimer saw),
so each attempt is made by one gateway; a gateway that dies mid-attempt leaves
the delivery to be picked up again when the lease ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from spendgate.alerts.model import (
    ALERT_KINDS,
    CHANNEL_KINDS,
    SMTP_SECURITY,
    Alert,
    Channel,
    ChannelSecrets,
    Delivery,
)
from spendgate.records import new_id, utcnow
from spendgate.storage.alerts_schema import alert_channels, alert_deliveries, alerts
from spendgate.storage.keys import Conflict, NotFound
from spendgate.vault import SecretBox


def _url_hint(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/..."


def _check_url(url: str | None, kind: str) -> str:
    if not url or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ValueError(f"a {kind} channel needs an http:// or https:// URL (--url)")
    return url


def _email_settings(settings: dict[str, Any]) -> dict[str, Any]:
    host, sender = settings.get("host"), settings.get("sender")
    recipients = [r.strip() for r in settings.get("recipients") or [] if r.strip()]
    if not host or not sender or not recipients:
        raise ValueError("an e-mail channel needs --smtp-host, --from and at least one --to")
    security = settings.get("security") or "starttls"
    if security not in SMTP_SECURITY:
        raise ValueError(f"SMTP security is one of {', '.join(SMTP_SECURITY)}, not {security!r}")
    default_port = {"starttls": 587, "ssl": 465, "none": 25}[security]
    return {
        "host": host,
        "port": int(settings.get("port") or default_port),
        "security": security,
        "username": settings.get("username") or None,
        "sender": sender,
        "recipients": recipients,
    }


def _channel(row: Any) -> Channel:
    m = row._mapping
    kinds = orjson.loads(m["kinds"]) if m["kinds"] else None
    return Channel(
        id=m["id"],
        name=m["name"],
        kind=m["kind"],
        target=m["target"],
        settings=orjson.loads(m["settings"]),
        kinds=tuple(kinds) if kinds is not None else None,
        created_at=m["created_at"],
    )


def _alert(row: Any) -> Alert:
    m = row._mapping
    return Alert(
        kind=m["kind"],
        dedupe_key=m["dedupe_key"],
        subject=m["subject"],
        period_key=m["period_key"],
        message=m["message"],
        details=orjson.loads(m["details"]),
        id=m["id"],
        created_at=m["created_at"],
    )


def _delivery(row: Any) -> Delivery:
    m = row._mapping
    return Delivery(
        alert_id=m["alert_id"],
        channel_id=m["channel_id"],
        channel_name=m["channel_name"],
        status=m["status"],
        attempts=int(m["attempts"]),
        next_attempt_at=m["next_attempt_at"],
        last_error=m["last_error"],
        sent_at=m["sent_at"],
    )


class AlertStore:
    """Channels, fired alerts and deliveries. Thread-safe: each method takes its own
    connection. ``box`` encrypts and decrypts channel secrets."""

    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box
        self.dialect = engine.dialect.name

    # -- channels ------------------------------------------------------------

    def create_channel(
        self,
        *,
        name: str,
        kind: str,
        url: str | None = None,
        signing_secret: str | None = None,
        email: dict[str, Any] | None = None,
        password: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Channel:
        """Store a channel; its URL, signing secret and password are encrypted."""
        if kind not in CHANNEL_KINDS:
            kinds_text = ", ".join(CHANNEL_KINDS)
            raise ValueError(f"unknown channel kind {kind!r}; use one of {kinds_text}")
        if kinds is not None and (bad := [k for k in kinds if k not in ALERT_KINDS]):
            raise ValueError(f"unknown alert kind {bad[0]!r}; use {', '.join(ALERT_KINDS)}")
        settings: dict[str, Any] = {}
        if kind == "email":
            settings = _email_settings(email or {})
            target = f"{settings['host']}:{settings['port']} -> {', '.join(settings['recipients'])}"
            secrets = ChannelSecrets(password=password or None)
        else:
            target = _url_hint(_check_url(url, kind))
            secrets = ChannelSecrets(url=url, signing_secret=signing_secret or None)
        sealed = self.box.encrypt(orjson.dumps(asdict(secrets)).decode())
        channel_id = new_id()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    alert_channels.insert().values(
                        id=channel_id,
                        name=name,
                        kind=kind,
                        target=target[:300],
                        settings=orjson.dumps(settings).decode(),
                        secret_enc=sealed,
                        kinds=orjson.dumps(list(kinds)).decode() if kinds else None,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            raise Conflict(f"an alert channel named {name!r} exists already") from None
        return self.get_channel(channel_id)

    def get_channel(self, ident: str) -> Channel:
        """The channel with this id or name; :class:`NotFound` otherwise."""
        c = alert_channels.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(alert_channels).where(or_(c.id == ident, c.name == ident))
            ).first()
        if row is None:
            raise NotFound(f"no alert channel {ident!r}; see `spendgate alerts channels list`")
        return _channel(row)

    def list_channels(self) -> list[Channel]:
        """Every channel, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(alert_channels).order_by(alert_channels.c.id))
            return [_channel(r) for r in rows]

    def delete_channel(self, ident: str) -> Channel:
        """Delete a channel (its past deliveries stay in the history)."""
        channel = self.get_channel(ident)
        with self.engine.begin() as conn:
            conn.execute(delete(alert_channels).where(alert_channels.c.id == channel.id))
        return channel

    def secrets(self, channel: Channel) -> ChannelSecrets:
        """A channel's decrypted secrets (for delivery only; never returned by the API)."""
        with self.engine.connect() as conn:
            sealed = conn.execute(
                select(alert_channels.c.secret_enc).where(alert_channels.c.id == channel.id)
            ).scalar_one()
        values = orjson.loads(self.box.decrypt(sealed))
        return ChannelSecrets(**values)

    # -- firing and history ------------------------------------------------------

    def fire(self, alert: Alert, channels: Sequence[Channel], at: datetime) -> Alert | None:
        """Store ``alert`` with a pending delivery per channel that wants it, unless an
        alert with its dedupe key exists already (then None: fired before, maybe
        by another gateway)."""
        alert_id = new_id()
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(alerts)
            .values(
                id=alert_id,
                dedupe_key=alert.dedupe_key,
                kind=alert.kind,
                subject=alert.subject,
                period_key=alert.period_key,
                message=alert.message,
                details=orjson.dumps(alert.details).decode(),
                created_at=at,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(alerts.c.id)
        )
        with self.engine.begin() as conn:
            if conn.execute(stmt).first() is None:
                return None
            wanted = [c for c in channels if c.wants(alert)]
            if wanted:
                conn.execute(
                    alert_deliveries.insert(),
                    [
                        {
                            "alert_id": alert_id,
                            "channel_id": c.id,
                            "channel_name": c.name,
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": at,
                        }
                        for c in wanted
                    ],
                )
        return self.get_alert(alert_id)

    def fired(self, dedupe_keys: Sequence[str]) -> set[str]:
        """Which of ``dedupe_keys`` have fired already."""
        if not dedupe_keys:
            return set()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(alerts.c.dedupe_key).where(alerts.c.dedupe_key.in_(list(dedupe_keys)))
            )
            return {r[0] for r in rows}

    def get_alert(self, alert_id: str) -> Alert:
        """One fired alert; :class:`NotFound` otherwise."""
        with self.engine.connect() as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound(f"no alert {alert_id!r}; see `spendgate alerts history`")
        return _alert(row)

    def history(
        self, *, limit: int = 100, kind: str | None = None
    ) -> list[tuple[Alert, list[Delivery]]]:
        """Fired alerts, newest first, each with its deliveries."""
        stmt = select(alerts).order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
        if kind is not None:
            stmt = stmt.where(alerts.c.kind == kind)
        with self.engine.connect() as conn:
            fired = [_alert(r) for r in conn.execute(stmt.limit(limit))]
            ids = [a.id for a in fired]
            rows = conn.execute(
                select(alert_deliveries)
                .where(alert_deliveries.c.alert_id.in_(ids))
                .order_by(alert_deliveries.c.channel_name)
            ).all()
        by_alert: dict[str, list[Delivery]] = {}
        for row in rows:
            delivery = _delivery(row)
            by_alert.setdefault(delivery.alert_id, []).append(delivery)
        return [(a, by_alert.get(cast(str, a.id), [])) for a in fired]

    # -- deliveries ------------------------------------------------------------------

    def due(self, now: datetime, *, limit: int = 50) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, oldest first."""
        d = alert_deliveries.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(alert_deliveries)
                .where(d.status == "pending", d.next_attempt_at <= now)
                .order_by(d.next_attempt_at)
                .limit(limit)
            ).all()
        return [_delivery(r) for r in rows]

    def claim(self, delivery: Delivery, until: datetime) -> bool:
        """Take the next attempt of ``delivery`` for this gateway until ``until``; False
        if another gateway took it first."""
        d = alert_deliveries.c
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(alert_deliveries)
                .where(
                    d.alert_id == delivery.alert_id,
                    d.channel_id == delivery.channel_id,
                    d.status == "pending",
                    d.next_attempt_at == delivery.next_attempt_at,
                )
                .values(next_attempt_at=until, attempts=d.attempts + 1)
            )
        return claimed.rowcount == 1

    def finish(
        self,
        delivery: Delivery,
        *,
        status: str,
        error: str | None = None,
        sent_at: datetime | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Record the outcome of an attempt: sent, failed for good, or pending a retry."""
        d = alert_deliveries.c
        values: dict[str, Any] = {"status": status, "last_error": error, "sent_at": sent_at}
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        with self.engine.begin() as conn:
            conn.execute(
                update(alert_deliveries)
                .where(d.alert_id == delivery.alert_id, d.channel_id == delivery.channel_id)
                .values(values)
            )

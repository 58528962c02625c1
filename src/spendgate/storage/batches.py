"""Message Batches the gateway has seen created: their creator and their reservation.

Every change to a reservation is a compare-and-set (``... WHERE reserved_nanousd
= :seen``), so when several processes settle, release or sweep the same batch
at once exactly one of them moves the budget counters. The methods taking a
``Connection`` run inside the caller's transaction (the budget ledger's), so a
row and the budget counters it holds always change together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, delete, or_, select, update

from spendgate.records import Attribution
from spendgate.storage.batches_schema import batches


@dataclass(frozen=True)
class BatchRow:
    """One batch as the gateway remembers it."""

    id: str
    batch_id: str | None
    created_at: datetime
    attribution: Attribution
    requests: int
    claims: tuple[tuple[str, str], ...]  # (budget id, period key) the reservation sits on
    reserved_nanousd: int
    spent_nanousd: int | None = None
    settled_at: datetime | None = None


def _row(row: Any) -> BatchRow:
    m = row._mapping
    return BatchRow(
        id=m["id"],
        batch_id=m["batch_id"],
        created_at=m["created_at"],
        attribution=Attribution(
            credential_fingerprint=m["credential_fingerprint"],
            credential_kind=m["credential_kind"],
            key_id=m["key_id"],
            key_label=m["key_label"],
            team=m["team"],
            user=m["user"],
            project=m["project"],
            tags=list(orjson.loads(m["tags"])) if m["tags"] else [],
        ),
        requests=int(m["requests"]),
        claims=tuple((c[0], c[1]) for c in orjson.loads(m["claims"] or "[]")),
        reserved_nanousd=int(m["reserved_nanousd"]),
        spent_nanousd=None if m["spent_nanousd"] is None else int(m["spent_nanousd"]),
        settled_at=m["settled_at"],
    )


class BatchStore:
    """The ``batches`` table. Thread-safe: each method without a connection opens its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def insert(conn: Connection, row: BatchRow) -> None:
        """Remember a batch about to be created (``batch_id`` is named later)."""
        who = row.attribution
        conn.execute(
            batches.insert().values(
                id=row.id,
                batch_id=row.batch_id,
                created_at=row.created_at,
                key_id=who.key_id,
                key_label=who.key_label,
                team=who.team,
                user=who.user,
                project=who.project,
                tags=orjson.dumps(who.tags).decode() if who.tags else None,
                credential_fingerprint=who.credential_fingerprint,
                credential_kind=who.credential_kind,
                requests=row.requests,
                claims=orjson.dumps([list(c) for c in row.claims]).decode(),
                reserved_nanousd=row.reserved_nanousd,
            )
        )

    def name(self, row_id: str, batch_id: str) -> None:
        """Attach Anthropic's batch id to a remembered creation."""
        with self.engine.begin() as conn:
            conn.execute(update(batches).where(batches.c.id == row_id).values(batch_id=batch_id))

    def get(self, row_id: str) -> BatchRow | None:
        """A remembered creation by the gateway's own row id."""
        with self.engine.connect() as conn:
            found = conn.execute(select(batches).where(batches.c.id == row_id)).first()
        return None if found is None else _row(found)

    def owner(self, batch_id: str) -> BatchRow | None:
        """The batch with Anthropic's id ``batch_id``, if it was created through the gateway."""
        with self.engine.connect() as conn:
            found = conn.execute(select(batches).where(batches.c.batch_id == batch_id)).first()
        return None if found is None else _row(found)

    @staticmethod
    def take_reservation(
        conn: Connection, row_id: str, at: datetime, *, settle_spent: int | None = None
    ) -> BatchRow | None:
        """Zero a batch's reservation and return the row as it was, or None if another
        process got there first. With ``settle_spent`` it is settled too (once only)."""
        c = batches.c
        found = conn.execute(select(batches).where(c.id == row_id)).first()
        if found is None:
            return None
        row = _row(found)
        conditions = [c.id == row_id, c.reserved_nanousd == row.reserved_nanousd]
        values: dict[str, Any] = {"reserved_nanousd": 0}
        if settle_spent is not None:
            conditions.append(c.settled_at.is_(None))
            values.update(settled_at=at, spent_nanousd=settle_spent)
        elif row.reserved_nanousd == 0:
            return None
        else:
            values["released_at"] = at
        if conn.execute(update(batches).where(*conditions).values(**values)).rowcount != 1:
            return None
        return row

    @staticmethod
    def forget(conn: Connection, row_id: str) -> None:
        """Drop a remembered creation that Anthropic did not accept."""
        conn.execute(delete(batches).where(batches.c.id == row_id))

    def holding(self, *, unnamed_before: datetime, created_before: datetime) -> list[BatchRow]:
        """Batches still holding a reservation that should go: never named by Anthropic
        since ``unnamed_before`` (the gateway died mid-create) or older than
        ``created_before`` (their results are gone)."""
        c = batches.c
        stmt = select(batches).where(
            c.reserved_nanousd > 0,
            or_(
                and_(c.batch_id.is_(None), c.created_at < unnamed_before),
                c.created_at < created_before,
            ),
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(stmt)]

    def many(self, batch_ids: Sequence[str]) -> list[BatchRow]:
        """The remembered batches among ``batch_ids``."""
        if not batch_ids:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(batches).where(batches.c.batch_id.in_(list(batch_ids))))
            return [_row(r) for r in rows]

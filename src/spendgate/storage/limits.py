"""Rate limits and their token buckets: definitions, atomic take, settlement.

Each (limit, subject) has one bucket row. A bucket is Anthropic's own model: a
capacity of one minute's worth of the limit, drained continuously at the
limit's rate, so a full bucket has room again after ``1/rate`` of a minute,
not at the next minute boundary. Levels are integers in units x microseconds
(a call taking ``c`` units adds ``c * 60e6``; a limit of ``L`` per minute
drains ``L`` per microsecond and holds ``L * 60e6``), so the arithmetic is exact
and identical on SQLite and PostgreSQL.

Taking from a bucket is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE fits
RETURNING`` statement: it creates the bucket, or drains it to now and adds the
call only if every rate of the limit still fits. The upsert holds the row's
write lock, so check and increment are one atomic step across processes. All
buckets of one call are taken in one transaction, in (limit, subject) order so
two calls never lock in opposite orders; if one refuses, the transaction rolls
back and nothing is taken.

Durability: on PostgreSQL these transactions commit with ``synchronous_commit``
off. They stay atomic and isolated; only a database crash can lose the last
fraction of a second of bucket updates, which lets a few more calls through in
the minute after a crash. In exchange a take costs a round trip, not a WAL
flush (8 ms -> well under 1 ms per call on a modest disk; see bench/limits.py).

Leases: a busy gateway process takes a little more than one call's worth at a time
(``take(..., leases=...)``, :meth:`LimitStore.rebalance`) and hands it out from
memory (see :mod:`spendgate.limits.guard`); what it holds is counted in the bucket
like any call, and what it gives back is subtracted (``returns``).

Clocks: "now" is the gateway's wall clock. A bucket never moves backwards, so a
replica whose clock lags only drains a little less; keep replicas on NTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, TextClause, delete, select, text
from sqlalchemy import update as sql_update

from spendgate.limits.model import MAX_PER_MINUTE, METRICS, Metric, RateLimit, Scope
from spendgate.records import new_id, utcnow
from spendgate.storage.keys import NotFound
from spendgate.storage.limits_schema import rate_limit_buckets, rate_limits

MINUTE_US = 60_000_000
# A lease is taken only where the bucket keeps this many more of it free behind it.
LEASE_HEADROOM = 4
# Longest idle time drained in one step; with MAX_PER_MINUTE it keeps products in 64 bits.
MAX_ELAPSED_US = 86_400_000_000


class Charge(NamedTuple):
    """What one call takes from one bucket, in units (requests, tokens). A named tuple:
    several are built for every call."""

    limit: RateLimit
    subject: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def amounts(self) -> tuple[int, int, int]:
        """The units of each metric, in ``METRICS`` order."""
        return (self.requests, self.input_tokens, self.output_tokens)

    def cost(self, metric: Metric) -> int:
        """The units of ``metric`` this charge takes."""
        return int(getattr(self, metric))

    @property
    def order(self) -> tuple[str, str]:
        """The lock order."""
        return (self.limit.id, self.subject)

    def plus(self, other: Charge) -> Charge:
        """This charge and ``other`` (on the same bucket) taken together."""
        return Charge(
            self.limit,
            self.subject,
            self.requests + other.requests,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
        )

    def times(self, factor: int) -> Charge:
        """``factor`` times this charge."""
        return Charge(
            self.limit,
            self.subject,
            self.requests * factor,
            self.input_tokens * factor,
            self.output_tokens * factor,
        )


@dataclass(frozen=True)
class Level:
    """A bucket's levels (units x microseconds) as of ``at_us``."""

    at_us: int
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    refused: int = 0

    def of(self, metric: Metric) -> int:
        """The level of ``metric``."""
        return int(getattr(self, metric))

    def drained(self, limit: RateLimit, now_us: int) -> Level:
        """The levels at ``now_us`` (never earlier than ``at_us``)."""
        elapsed = min(max(now_us - self.at_us, 0), MAX_ELAPSED_US)
        values = {}
        for metric in METRICS:
            rate = limit.per_minute(metric)
            values[metric] = 0 if rate is None else max(self.of(metric) - elapsed * rate, 0)
        return Level(max(self.at_us, now_us), refused=self.refused, **values)

    def fullness(self, limit: RateLimit) -> float:
        """How full the bucket is for its fullest rate: 1.0 is a whole minute's worth."""
        shares = [
            self.of(metric) / (rate * MINUTE_US)
            for metric in limit.metrics
            if (rate := limit.per_minute(metric)) is not None
        ]
        return max(shares, default=0.0)

    def used(self, metric: Metric) -> int:
        """Units of ``metric`` counted in the bucket, rounded up."""
        return -(-self.of(metric) // MINUTE_US)


def wait_us(level: int, cost: int, per_minute: int) -> int:
    """Microseconds until ``cost`` more units fit in a drained bucket at ``level``."""
    excess = level + cost * MINUTE_US - per_minute * MINUTE_US
    return max(0, -(-excess // per_minute))


class RateLimited(Exception):
    """A bucket has no room for a call."""

    def __init__(self, charge: Charge, level: Level, metric: Metric, wait: int) -> None:
        super().__init__(charge.limit.name)
        self.charge = charge
        self.level = level
        self.metric = metric
        self.wait_us = wait


class _NoRoom(Exception):
    def __init__(self, charge: Charge) -> None:
        super().__init__(charge.limit.id)
        self.charge = charge


def _limit(row: Any) -> RateLimit:
    m = row._mapping
    return RateLimit(
        id=m["id"],
        name=m["name"],
        scope=m["scope"],
        scope_value=m["scope_value"],
        requests_per_minute=m["requests_per_minute"],
        input_tokens_per_minute=m["input_tokens_per_minute"],
        output_tokens_per_minute=m["output_tokens_per_minute"],
        created_at=m["created_at"],
    )


def _statements(dialect: str) -> tuple[TextClause, TextClause]:
    """The take (conditional upsert) and settle statements, written once per dialect.

    A metric the limit does not cover is passed with rate 0: its level stays 0
    and its check passes. (Plain SQL rather than Core: building the statement
    per call cost more than running it.)
    """
    most, least = ("GREATEST", "LEAST") if dialect == "postgresql" else ("max", "min")
    b = "rate_limit_buckets"
    elapsed = f"{least}({most}(:now - {b}.at_us, 0), {MAX_ELAPSED_US})"

    def drained(m: str) -> str:
        return f"{most}({b}.{m} - {elapsed} * :rate_{m}, 0)"

    sets = ", ".join(f"{m} = {drained(m)} + :add_{m}" for m in METRICS)
    fits = " AND ".join(f"(:rate_{m} = 0 OR {drained(m)} + :add_{m} <= :cap_{m})" for m in METRICS)
    take = text(
        f"INSERT INTO {b} (limit_id, subject, at_us, requests, input_tokens, output_tokens, "
        "refused) SELECT id, :subject, :now, :add_requests, :add_input_tokens, "
        ":add_output_tokens, 0 FROM rate_limits WHERE id = :limit_id "
        f"ON CONFLICT (limit_id, subject) DO UPDATE SET at_us = {most}({b}.at_us, :now), {sets} "
        f"WHERE {fits} RETURNING limit_id"
    )
    settled = ", ".join(f"{m} = {most}({drained(m)} + :delta_{m}, 0)" for m in METRICS)
    settle = text(
        f"UPDATE {b} SET at_us = {most}({b}.at_us, :now), {settled} "
        "WHERE limit_id = :limit_id AND subject = :subject"
    )
    return take, settle


class LimitStore:
    """Rate limit definitions and buckets. Thread-safe: each method takes its own connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._take_sql, self._settle_sql = _statements(self.dialect)

    # -- definitions -------------------------------------------------------

    def create_limit(
        self,
        *,
        scope: Scope,
        scope_value: str,
        requests_per_minute: int | None = None,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        name: str | None = None,
    ) -> RateLimit:
        """Store a new rate limit and return it."""
        rates = (requests_per_minute, input_tokens_per_minute, output_tokens_per_minute)
        if all(rate is None for rate in rates):
            raise ValueError(
                "a rate limit needs at least one of requests, input tokens or output tokens "
                "per minute (--rpm, --input-tpm, --output-tpm)"
            )
        if any(rate is not None and not 0 < rate <= MAX_PER_MINUTE for rate in rates):
            raise ValueError(f"rates per minute are whole numbers from 1 to {MAX_PER_MINUTE:,}")
        limit_id = new_id()
        if name is None:
            name = scope if scope == "global" else f"{scope}:{scope_value}"
        with self.engine.begin() as conn:
            conn.execute(
                rate_limits.insert().values(
                    id=limit_id,
                    name=name,
                    scope=scope,
                    scope_value=scope_value,
                    requests_per_minute=requests_per_minute,
                    input_tokens_per_minute=input_tokens_per_minute,
                    output_tokens_per_minute=output_tokens_per_minute,
                    created_at=utcnow(),
                )
            )
        return self.get_limit(limit_id)

    def get_limit(self, limit_id: str) -> RateLimit:
        """The limit with this id; :class:`NotFound` otherwise."""
        with self.engine.connect() as conn:
            row = conn.execute(select(rate_limits).where(rate_limits.c.id == limit_id)).first()
        if row is None:
            raise NotFound(f"no rate limit {limit_id!r}; see `spendgate limits list`")
        return _limit(row)

    def list_limits(self) -> list[RateLimit]:
        """Every rate limit, ordered by id."""
        with self.engine.connect() as conn:
            return [_limit(r) for r in conn.execute(select(rate_limits).order_by(rate_limits.c.id))]

    def delete_limit(self, limit_id: str) -> None:
        """Delete a rate limit and its buckets."""
        self.get_limit(limit_id)
        with self.engine.begin() as conn:
            conn.execute(delete(rate_limits).where(rate_limits.c.id == limit_id))
            conn.execute(
                delete(rate_limit_buckets).where(rate_limit_buckets.c.limit_id == limit_id)
            )

    def levels(self, limit: RateLimit, now_us: int, *, top: int = 20) -> list[tuple[str, Level]]:
        """The fullest buckets of ``limit`` at ``now_us``: (subject, drained levels)."""
        b = rate_limit_buckets.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(b.subject, b.at_us, b.requests, b.input_tokens, b.output_tokens, b.refused)
                .where(b.limit_id == limit.id)
                .order_by(b.at_us.desc())
                .limit(1000)
            ).all()
        found = [(r[0], Level(*(int(v) for v in r[1:])).drained(limit, now_us)) for r in rows]
        found.sort(key=lambda item: item[1].fullness(limit), reverse=True)
        return found[:top]

    # -- taking and settling -------------------------------------------------

    def _relaxed(self, conn: Connection) -> None:
        if self.dialect == "postgresql":
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")

    @staticmethod
    def _params(charge: Charge, now_us: int) -> dict[str, Any]:
        """The statements' parameters naming ``charge``'s bucket and its limit's rates (0:
        a metric the limit does not cover)."""
        params: dict[str, Any] = {
            "limit_id": charge.limit.id,
            "subject": charge.subject,
            "now": now_us,
        }
        for metric in METRICS:
            params[f"rate_{metric}"] = charge.limit.per_minute(metric) or 0
        return params

    def _take_one(
        self, conn: Connection, charge: Charge, now_us: int, keep: Charge | None = None
    ) -> bool:
        """Take ``charge`` if it fits, leaving ``keep`` free behind it as well."""
        params = self._params(charge, now_us)
        for metric in METRICS:
            rate = params[f"rate_{metric}"]
            params[f"add_{metric}"] = min(charge.cost(metric), rate) * MINUTE_US
            free = 0 if keep is None else keep.cost(metric)
            params[f"cap_{metric}"] = (rate - free) * MINUTE_US
        return conn.execute(self._take_sql, params).first() is not None

    def _take_lease(self, conn: Connection, charge: Charge, lease: Charge, now_us: int) -> bool:
        """Take ``charge`` and ``lease`` if the bucket keeps ``LEASE_HEADROOM`` leases free
        behind them (an empty bucket is always created: the guard sizes leases far below
        a minute's worth)."""
        return self._take_one(conn, charge.plus(lease), now_us, lease.times(LEASE_HEADROOM))

    def _give_back(self, conn: Connection, held: Charge, now_us: int) -> None:
        """Subtract what a process held and did not use (a negative amount: what it owes)."""
        params = self._params(held, now_us)
        for metric in METRICS:
            rate = params[f"rate_{metric}"]
            params[f"delta_{metric}"] = -held.cost(metric) * MINUTE_US if rate else 0
        if any(params[f"delta_{m}"] for m in METRICS):
            conn.execute(self._settle_sql, params)

    def take(
        self,
        charges: Sequence[Charge],
        now_us: int,
        *,
        leases: Sequence[Charge | None] | None = None,
        returns: Sequence[Charge] = (),
    ) -> tuple[bool, ...]:
        """Take every charge from its bucket, or none of them.

        Raises :class:`RateLimited` for a bucket without room (the charges are
        then not taken; the bucket's ``refused`` count goes up). A charge on a
        limit deleted meanwhile is skipped.

        ``leases`` (one per charge, or None): more to take with the charge for the
        caller to hand out later, taken only where the bucket keeps
        ``LEASE_HEADROOM`` times as much free behind it; otherwise the charge alone.
        ``returns``: what the caller held and gives back, in the same transaction
        (before a take on the same bucket). Every bucket is written in (limit,
        subject) order, so two processes never lock in opposite orders. Returns, per
        charge, whether its lease was taken.
        """
        wanted = list(leases) if leases is not None else [None] * len(charges)
        pending = list(zip(charges, wanted, strict=True))
        while True:
            steps = sorted(
                [(held.order, 0, held, None) for held in returns]
                + [(charge.order, 1, charge, lease) for charge, lease in pending],
                key=lambda step: step[:2],
            )
            granted: dict[int, bool] = {}
            try:
                with self.engine.begin() as conn:
                    self._relaxed(conn)
                    for _, kind, charge, lease in steps:
                        if kind == 0:
                            self._give_back(conn, charge, now_us)
                        elif lease is not None and self._take_lease(conn, charge, lease, now_us):
                            granted[id(charge)] = True
                        elif self._take_one(conn, charge, now_us):
                            granted[id(charge)] = False
                        else:
                            raise _NoRoom(charge)  # rolls the whole transaction back
                return tuple(granted.get(id(c), False) for c in charges)
            except _NoRoom as no_room:
                refused = no_room.charge
            level = self._count_refusal(refused)
            if level is not None:
                raise self._limited(refused, level, now_us)
            # No bucket and no room: the limit was deleted after it was cached.
            pending = [p for p in pending if p[0] is not refused]

    def rebalance(
        self, returns: Sequence[Charge], leases: Sequence[Charge], now_us: int
    ) -> tuple[bool, ...]:
        """In one transaction, give back ``returns`` (see :meth:`take`) and take each of
        ``leases`` where the bucket keeps ``LEASE_HEADROOM`` times it free behind it.
        Returns, per lease, whether it was taken; nothing is refused or counted."""
        steps = sorted(
            [(held.order, 0, held) for held in returns]
            + [(lease.order, 1, lease) for lease in leases],
            key=lambda step: step[:2],
        )
        granted = {}
        with self.engine.begin() as conn:  # in lock order, as take()
            self._relaxed(conn)
            for _, kind, charge in steps:
                if kind == 0:
                    self._give_back(conn, charge, now_us)
                else:
                    keep = charge.times(LEASE_HEADROOM)
                    granted[id(charge)] = self._take_one(conn, charge, now_us, keep)
        return tuple(granted[id(lease)] for lease in leases)

    def _count_refusal(self, charge: Charge) -> Level | None:
        b = rate_limit_buckets.c
        with self.engine.begin() as conn:
            self._relaxed(conn)
            row = conn.execute(
                sql_update(rate_limit_buckets)
                .where(b.limit_id == charge.limit.id, b.subject == charge.subject)
                .values(refused=b.refused + 1)
                .returning(b.at_us, b.requests, b.input_tokens, b.output_tokens, b.refused)
            ).first()
        return None if row is None else Level(*(int(v) for v in row))

    @staticmethod
    def _limited(charge: Charge, level: Level, now_us: int) -> RateLimited:
        limit = charge.limit
        drained = level.drained(limit, now_us)
        waits = []
        for metric in limit.metrics:
            rate = limit.per_minute(metric)
            assert rate is not None
            cost = min(charge.cost(metric), rate)
            waits.append((wait_us(drained.of(metric), cost, rate), metric))
        wait, metric = max(waits)
        return RateLimited(charge, drained, metric, wait)

    def settle(self, charges: Sequence[Charge], actual: Sequence[Charge], now_us: int) -> None:
        """Replace what ``charges`` took with what the calls really used (``actual``, same
        order), clamped at zero. Returning all of it (``actual`` at zero) releases a call."""
        pairs = sorted(zip(charges, actual, strict=True), key=lambda p: p[0].order)
        updates = []
        for taken, used in pairs:
            params = self._params(taken, now_us)
            for metric in METRICS:
                rate = params[f"rate_{metric}"]
                delta = used.cost(metric) - min(taken.cost(metric), rate) if rate else 0
                params[f"delta_{metric}"] = delta * MINUTE_US
            if any(params[f"delta_{m}"] for m in METRICS):
                updates.append(params)
        if not updates:
            return
        with self.engine.begin() as conn:
            self._relaxed(conn)
            for params in updates:
                conn.execute(self._settle_sql, params)

    def bucket(self, limit: RateLimit, subject: str) -> Level | None:
        """One bucket's stored levels (not drained), or None if it has none yet."""
        b = rate_limit_buckets.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(b.at_us, b.requests, b.input_tokens, b.output_tokens, b.refused).where(
                    b.limit_id == limit.id, b.subject == subject
                )
            ).first()
        return None if row is None else Level(*(int(v) for v in row))

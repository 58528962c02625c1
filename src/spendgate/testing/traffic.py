"""Random call records and raw-SQL sums, to cross-check rollups and reports in tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from spendgate.money import format_usd
from spendgate.records import Attribution, CallRecord
from spendgate.storage import CallFilter, Store
from spendgate.storage.schema import calls
from spendgate.usage import Usage

T0 = datetime(2026, 10, 1, tzinfo=UTC)
MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"]
TEAMS = ["Engineering", "Sales", None]


def random_record(rng: random.Random, span_hours: int = 72) -> CallRecord:
    """A call with random usage, cost, attribution and outcome."""
    at = T0 + timedelta(microseconds=rng.randrange(span_hours * 3_600_000_000))
    inp, out = rng.randrange(0, 5000), rng.randrange(0, 2000)
    read, w5, w1 = rng.randrange(0, 300_000), rng.randrange(0, 3000), rng.randrange(0, 100)
    parts = {
        "input": inp * 3000,
        "output": out * 15000,
        "cache_read": read * 300,
        "cache_write_5m": w5 * 3750,
        "cache_write_1h": w1 * 6000,
    }
    priced = rng.random() > 0.05
    status = rng.choice([200] * 8 + [429, 529])
    return CallRecord(
        created_at=at,
        status_code=status,
        error_type=None if status == 200 else "overloaded_error",
        model=rng.choice(MODELS),
        endpoint=rng.choice(["/v1/messages", "/v1/messages/count_tokens"]),
        usage=Usage.manual(
            input_tokens=inp,
            output_tokens=out,
            cache_read_input_tokens=read,
            cache_creation_5m_input_tokens=w5,
            cache_creation_1h_input_tokens=w1,
        ),
        cost_nanousd=sum(parts.values()) + 7 if priced else None,
        cost_breakdown=parts if priced else None,
        cache_savings_nanousd=read * 2700 if priced else None,
        pricing_status="priced" if priced else "unpriced",
        latency_ms=rng.choice([None, rng.uniform(10, 90_000)]),
        ttft_ms=rng.choice([None, rng.uniform(5, 5000)]),
        attribution=Attribution(
            key_id=rng.choice(["k1", "k2", None]),
            key_label="label",
            team=rng.choice(TEAMS),
            user=rng.choice(["ann", "bob", None]),
            project=rng.choice(["app", "site"]),
            tags=rng.sample(["prod", "batch", "eval"], rng.randrange(0, 3)),
            session_id=rng.choice([None, "s1", "s2"]),
        ),
    )


def raw_sums(store: Store, flt: CallFilter) -> dict[str, Any]:
    """The same figures summed over raw calls, straight from SQL."""
    c = calls.c
    stmt = select(
        func.count(),
        func.coalesce(func.sum(c.cost_nanousd), 0),
        func.coalesce(func.sum(c.input_tokens), 0),
        func.coalesce(func.sum(c.output_tokens), 0),
        func.coalesce(func.sum(c.cache_read_input_tokens), 0),
        func.coalesce(
            func.sum(c.cache_creation_5m_input_tokens + c.cache_creation_1h_input_tokens), 0
        ),
    ).where(*flt.clauses())
    with store.engine.connect() as conn:
        row = conn.execute(stmt).one()
    return {
        "calls": int(row[0]),
        "cost_usd": format_usd(int(row[1])),
        "input_tokens": int(row[2]),
        "output_tokens": int(row[3]),
        "cache_read_input_tokens": int(row[4]),
        "cache_creation_input_tokens": int(row[5]),
    }


KEYS = [
    "calls",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
]

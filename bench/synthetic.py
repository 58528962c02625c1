"""Synthetic call records for the analytics benchmark: many, fast, realistic cardinality.

An organisation of six teams, 60 people, 24 proxy keys, 18 projects, five current
models, 2 % errors, prompt caching, streaming with time-to-first-token, tags and
Claude Code sessions, spread evenly (with a daily rhythm) over a time span and
yielded oldest first, as a recorder would see them.

Costs come from the real price book: a few hundred usage shapes per model are
priced once with :func:`spendgate.pricing.apply_cost` and each record takes one
of them, so generating ten million records costs seconds of pricing, not hours.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from spendgate.pricing import PriceBook, apply_cost
from spendgate.records import Attribution, CallRecord
from spendgate.usage import Usage

TEAMS = ("Engineering", "Sales", "Legal", "Marketing", "HR", "Finance")
TEAM_WEIGHTS = (0.45, 0.15, 0.08, 0.14, 0.08, 0.10)
MODELS = (
    ("claude-sonnet-4-6", 0.45),
    ("claude-opus-4-8", 0.15),
    ("claude-haiku-4-5", 0.25),
    ("claude-sonnet-5", 0.10),
    ("claude-opus-5", 0.05),
)
SHAPES_PER_MODEL = 256


@dataclass(frozen=True)
class Person:
    """One user: their team, key and projects."""

    name: str
    team: str
    key_id: str
    key_label: str
    projects: tuple[str, ...]
    coder: bool


@dataclass(frozen=True)
class Shape:
    """A priced usage shape."""

    usage: Usage
    cost_nanousd: int | None
    cache_savings_nanousd: int | None
    cost_breakdown: dict[str, object] | None
    pricing_status: str
    price_book_version: str | None


def people(rng: random.Random) -> list[Person]:
    """60 users over six teams, 4 keys per team, 3 projects per team."""
    out = []
    for t, team in enumerate(TEAMS):
        projects = tuple(f"{team.lower()}-p{i}" for i in range(3))
        for u in range(10):
            k = u % 4
            out.append(
                Person(
                    name=f"{team.lower()}-user{u}",
                    team=team,
                    key_id=f"key-{t}-{k}",
                    key_label=f"{team} key {k}",
                    projects=tuple(rng.sample(projects, 2)),
                    coder=team == "Engineering" and u < 7,
                )
            )
    return out


def shapes(book: PriceBook, at: datetime, rng: random.Random) -> dict[str, list[Shape]]:
    """Per model, usage shapes priced once with the real pricing engine."""
    out: dict[str, list[Shape]] = {}
    for model, _ in MODELS:
        priced = []
        for _ in range(SHAPES_PER_MODEL):
            prompt = max(200, int(rng.lognormvariate(math.log(8000), 1.0)))
            cached = int(prompt * rng.uniform(0.3, 0.9)) if rng.random() < 0.7 else 0
            writes = int((prompt - cached) * 0.3) if cached else 0
            w1h = writes if rng.random() < 0.1 else 0
            usage = Usage.manual(
                input_tokens=max(prompt - cached - writes, 1),
                output_tokens=max(1, int(rng.lognormvariate(math.log(700), 0.8))),
                cache_read_input_tokens=cached,
                cache_creation_5m_input_tokens=writes - w1h,
                cache_creation_1h_input_tokens=w1h,
                web_search_requests=1 if rng.random() < 0.03 else 0,
            )
            record = CallRecord(created_at=at, model=model, status_code=200, usage=usage)
            apply_cost(book, record)
            priced.append(
                Shape(
                    usage,
                    record.cost_nanousd,
                    record.cache_savings_nanousd,
                    record.cost_breakdown,
                    record.pricing_status,
                    record.price_book_version,
                )
            )
        out[model] = priced
    return out


_ERROR = Usage()


def _pace(hour: float) -> float:
    return 0.35 + 1.3 * math.exp(-(((hour - 14) / 4.5) ** 2))


def records(
    n: int, start: datetime, end: datetime, *, book: PriceBook, seed: int = 1
) -> Iterator[CallRecord]:
    """``n`` call records between ``start`` and ``end``, oldest first."""
    rng = random.Random(seed)
    staff = people(rng)
    weights = [TEAM_WEIGHTS[TEAMS.index(p.team)] / 10 for p in staff]
    priced = shapes(book, end, rng)
    model_names = [m for m, _ in MODELS]
    model_weights = [w for _, w in MODELS]
    span = (end - start).total_seconds()
    # Calls follow a daily rhythm: the gap to the next call is shorter in the afternoon.
    # The call rate is pace / step, so step = span x mean(pace) / n fills the span.
    step = span * sum(_pace(h / 10) for h in range(240)) / 240 / n
    t = 0.0
    for i in range(n):
        t = min(t + step * rng.expovariate(1.0) / _pace((t / 3600) % 24), span - 1e-3)
        at = start + timedelta(seconds=t)
        person = rng.choices(staff, weights)[0]
        model = rng.choices(model_names, model_weights)[0]
        roll = rng.random()
        status, error = 200, None
        if roll < 0.012:
            status, error = 529, "overloaded_error"
        elif roll < 0.02:
            status, error = 429, "rate_limit_error"
        coding = person.coder and rng.random() < 0.8
        stream = coding or rng.random() < 0.5
        shape = rng.choice(priced[model])
        ok = status == 200
        latency = (
            300 + shape.usage.output_tokens * rng.uniform(8, 25) if ok else rng.uniform(50, 400)
        )
        session = f"{person.name}-{at:%m%d}-{int(t) % 3}" if coding else None
        tags = ["claude-code"] if coding else [rng.choice(("prod", "prod", "prod", "eval"))]
        yield CallRecord(
            id=f"bench-{seed:04d}-{i:012d}",
            created_at=at,
            stream=stream,
            status_code=status,
            error_type=error,
            request_id=f"req_bench{i:012d}",
            message_id=f"msg_bench{i:012d}" if ok else None,
            model_requested=model,
            model=model,
            stop_reason="end_turn" if ok else None,
            latency_ms=round(latency, 1),
            ttft_ms=round(rng.uniform(200, 1500), 1) if ok and stream else None,
            usage=shape.usage if ok else _ERROR,
            cost_nanousd=shape.cost_nanousd if ok else 0,
            cache_savings_nanousd=shape.cache_savings_nanousd if ok else 0,
            cost_breakdown=shape.cost_breakdown if ok else None,
            pricing_status=shape.pricing_status if ok else "not_billable",  # type: ignore[arg-type]
            price_book_version=shape.price_book_version,
            user_agent="claude-cli/2.1.0 (external, cli)" if coding else "anthropic-python/0.121",
            attribution=Attribution(
                credential_fingerprint=f"fp-{person.key_id}",
                credential_kind="proxy_key",
                key_id=person.key_id,
                key_label=person.key_label,
                team=person.team,
                user=person.name,
                project=rng.choice(person.projects),
                tags=tags,
                session_id=session,
            ),
        )

"""Demo data: ~90 days of realistic traffic for six departments, through the real recording path.

Each call is built as a :class:`CallRecord`, priced with the price book
(:func:`spendgate.pricing.apply_cost`) and written with ``Store.insert_calls``,
which maintains the rollups; nothing is written to the rollups directly.
Deterministic for a given seed.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from spendgate.pricing import PriceBook, apply_cost
from spendgate.records import Attribution, CallRecord
from spendgate.storage import Store
from spendgate.usage import Usage

# Deterministic ids so running the demo twice adds nothing (inserts are idempotent).
_ID_NAMESPACE = uuid.UUID("5e9d0000-de30-4000-8000-000000000000")


@dataclass(frozen=True)
class Department:
    """One team's traffic profile."""

    team: str
    users: tuple[str, ...]
    projects: tuple[str, ...]
    models: tuple[tuple[str, float], ...]  # model, weight
    share: float  # of all calls
    prompt: int  # typical prompt tokens
    output: int  # typical output tokens
    cache_share: float  # part of the prompt read from cache
    claude_code: float  # part of calls that are Claude Code sessions
    zone: str


DEPARTMENTS: tuple[Department, ...] = (
    Department(
        "Engineering",
        ("alice", "bram", "chen", "dana", "emeka", "farah"),
        ("checkout-api", "mobile-app", "infra"),
        (("claude-sonnet-5-5", 0.55), ("claude-opus-4-7", 0.25), ("claude-haiku-5-5", 0.2)),
        0.45, 24_000, 900, 0.7, 0.6, "Europe/Berlin",
    ),
    Department(
        "Sales",
        ("gina", "hugo", "ines"),
        ("crm-assistant", "outreach"),
        (("claude-haiku-5-5", 0.6), ("claude-sonnet-5-5", 0.4)),
        0.15, 3_000, 500, 0.3, 0.0, "America/New_York",
    ),
    Department(
        "Legal",
        ("jules", "kofi"),
        ("contract-review",),
        (("claude-opus-4-7", 0.7), ("claude-sonnet-5-5", 0.3)),
        0.08, 60_000, 1_500, 0.5, 0.0, "Europe/London",
    ),
    Department(
        "Marketing",
        ("lena", "mateo", "nour"),
        ("campaigns", "seo"),
        (("claude-sonnet-5-5", 0.7), ("claude-haiku-5-5", 0.3)),
        0.14, 4_000, 1_200, 0.2, 0.0, "America/Los_Angeles",
    ),
    Department(
        "HR",
        ("oren", "priya"),
        ("hr-helpdesk",),
        (("claude-haiku-5-5", 0.9), ("claude-sonnet-5-5", 0.1)),
        0.08, 2_500, 400, 0.4, 0.0, "Europe/Paris",
    ),
    Department(
        "Finance",
        ("quinn", "rosa"),
        ("forecasting", "invoices"),
        (("claude-sonnet-5-5", 0.6), ("claude-haiku-5-5", 0.4)),
        0.10, 8_000, 700, 0.3, 0.0, "America/Chicago",
    ),
)  # fmt: skip


# Used for calls dated before the newer model existed.
PREDECESSORS = {"claude-sonnet-5-5": "claude-sonnet-4-6", "claude-haiku-5-5": "claude-haiku-4-5"}


def _diurnal(local_hour: float) -> float:
    """Office-hours curve: low at night, peak mid-afternoon."""
    return 0.08 + math.exp(-(((local_hour - 14.0) / 3.5) ** 2))


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    names = [n for n, _ in weighted]
    return rng.choices(names, weights=[w for _, w in weighted])[0]


def _record(
    rng: random.Random, dept: Department, at: datetime, index: int, seed: int
) -> CallRecord:
    user = rng.choice(dept.users)
    coding = rng.random() < dept.claude_code
    prompt = max(200, int(rng.lognormvariate(math.log(dept.prompt), 0.6)))
    cached = int(prompt * dept.cache_share * rng.uniform(0.6, 1.1)) if rng.random() < 0.8 else 0
    writes = int((prompt - cached) * 0.3) if cached else 0
    output = max(1, int(rng.lognormvariate(math.log(dept.output), 0.7)))
    failure = rng.random()
    status, error = (200, None)
    if failure < 0.012:
        status, error = 529, "overloaded_error"
    elif failure < 0.02:
        status, error = 429, "rate_limit_error"
    stream = coding or rng.random() < 0.5
    ok = status == 200
    latency = 400 + output * rng.uniform(8, 25) + prompt * 0.004 if ok else rng.uniform(80, 400)
    usage = Usage.manual(
        input_tokens=max(prompt - cached - writes, 1) if ok else 0,
        output_tokens=output if ok else 0,
        cache_read_input_tokens=cached if ok else 0,
        cache_creation_5m_input_tokens=writes if ok else 0,
        web_search_requests=1 if ok and dept.team == "Marketing" and rng.random() < 0.1 else 0,
    )
    session = f"{user}-{at:%Y%m%d}-{rng.randrange(3)}" if coding else None
    tags = ["claude-code"] if coding else [rng.choice(["prod", "prod", "prod", "eval"])]
    key_no = 1 + (sum(map(ord, user)) % 2 if dept.team == "Engineering" else 0)
    return CallRecord(
        id=str(uuid.uuid5(_ID_NAMESPACE, f"{seed}:{index}")),
        created_at=at,
        source="proxy",
        stream=stream,
        status_code=status,
        error_type=error,
        request_id=f"req_demo{index:012d}",
        message_id=f"msg_demo{index:012d}" if ok else None,
        model_requested=(model := _pick(rng, dept.models)),
        model=model,
        stop_reason="end_turn" if ok else None,
        latency_ms=round(latency, 1),
        ttft_ms=round(rng.uniform(250, 1400), 1) if ok and stream else None,
        usage=usage,
        user_agent="claude-cli/2.1.0 (external, cli)" if coding else "anthropic-python/0.121.0",
        attribution=Attribution(
            key_id=f"demo-{dept.team.lower()}-{key_no}",
            key_label=f"{dept.team} key {key_no}",
            team=dept.team,
            user=user,
            project=rng.choice(dept.projects),
            tags=tags,
            session_id=session,
        ),
    )


def generate(
    *, days: int = 90, calls_per_day: int = 300, end: datetime | None = None, seed: int = 42
) -> Iterator[CallRecord]:
    """Unpriced demo records, oldest first: weekly and daily rhythm, slow growth, noise."""
    rng = random.Random(seed)
    end = (end or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    index = 0
    for hour in range(days * 24):
        at = start + timedelta(hours=hour)
        growth = 0.75 + 0.5 * hour / (days * 24)
        for dept in DEPARTMENTS:
            local = at.astimezone(ZoneInfo(dept.zone))
            weekday = 1.0 if local.weekday() < 5 else 0.15
            mean = calls_per_day * dept.share * growth * weekday * _diurnal(local.hour) / 7.0
            for _ in range(_poisson(rng, mean)):
                index += 1
                moment = at + timedelta(seconds=rng.uniform(0, 3599))
                yield _record(rng, dept, moment, index, seed)


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def fill(
    store: Store,
    book: PriceBook,
    *,
    days: int = 90,
    calls_per_day: int = 300,
    end: datetime | None = None,
    seed: int = 42,
    batch: int = 2000,
) -> int:
    """Price and record demo traffic into ``store``; returns how many calls were new."""
    written = 0
    pending: list[CallRecord] = []
    for record in generate(days=days, calls_per_day=calls_per_day, end=end, seed=seed):
        apply_cost(book, record)
        if record.pricing_status == "unpriced" and record.model in PREDECESSORS:
            # Before a model's release the department used the one it replaced.
            record.model = record.model_requested = PREDECESSORS[record.model]
            apply_cost(book, record)
        pending.append(record)
        if len(pending) >= batch:
            written += store.insert_calls(pending)
            pending = []
    return written + store.insert_calls(pending)

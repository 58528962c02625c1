"""Reading a ``/metrics`` page back with the Prometheus text parser (tests, smoke checks)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    """One sample line: name, labels, value."""

    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """Every sample of a text exposition."""
    return [
        Sample(sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def scrape(base_url: str, timeout: float = 10.0) -> list[Sample]:
    """GET ``/metrics`` of a gateway and parse it."""
    resp = httpx.get(f"{base_url}/metrics", timeout=timeout)
    resp.raise_for_status()
    return parse(resp.text)


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )

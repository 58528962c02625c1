"""Bounded label values, so a metric's series count cannot grow without limit."""

from __future__ import annotations

OTHER = "other"
NONE = "none"


class LabelCap:
    """Keeps the first ``limit`` distinct values of one label; later ones become ``other``.

    Per process: two workers may fold different values once both are full,
    which only moves counts between series, never loses them.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if not value:
            return NONE
        if value in self._seen:
            return value
        if len(self._seen) < self.limit:
            self._seen.add(value)
            return value
        return OTHER

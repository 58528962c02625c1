"""The effective-dated price book: built-in Anthropic list prices plus user price files.

Files are layers. Layer 0 is the built-in book shipped in ``pricing/data``; each
user file given to :meth:`PriceBook.load` is the next layer up. For a model, a
speed and a moment, the row from the highest layer that covers the moment wins,
so a user file can correct one date range without restating the rest.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from spendgate.pricing.parse import ModelDecl, ParsedFile, PriceBookError, parse_file
from spendgate.pricing.rows import Discount, ModelEntry, ModelSummary, PriceRow, Problem, Speed

__all__ = ["PriceBook", "PriceBookError"]

_BUILTIN = "anthropic.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PriceBookError(
            f"{path}: price file not found. Fix: correct the path in SPENDGATE_PRICE_FILES "
            "or create the file (see docs/pricing.md)"
        ) from None
    except OSError as exc:
        raise PriceBookError(f"{path}: cannot read price file ({exc.strerror}).") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PriceBookError(f"{path}: not valid TOML ({exc}). Fix the syntax there.") from None


def _digest(documents: Iterable[Mapping[str, Any]]) -> str:
    """A content hash of parsed documents, blind to comments and layout."""
    canonical = json.dumps(list(documents), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _as_utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


_T = TypeVar("_T")
# A looked-up answer and the moments it holds for: [start, end), None unbounded.
_Span = tuple[datetime | None, datetime | None, _T]


def _span(moment: datetime, edges: Iterable[datetime | None], answer: _T) -> _Span[_T]:
    """The widest [start, end) around ``moment`` that crosses none of ``edges``."""
    start: datetime | None = None
    end: datetime | None = None
    for edge in edges:
        if edge is None:
            continue
        if edge <= moment:
            start = edge if start is None or edge > start else start
        elif end is None or edge < end:
            end = edge
    return start, end, answer


def _within(span: _Span[Any], moment: datetime) -> bool:
    start, end = span[0], span[1]
    return (start is None or start <= moment) and (end is None or moment < end)


class PriceBook:
    """Prices by model and moment. Build it with :meth:`load`; it never changes afterwards."""

    def __init__(self, files: Sequence[ParsedFile], version: str) -> None:
        """Merge parsed files (layer order) into one book; prefer :meth:`load`."""
        self._version = version
        self._models: dict[str, ModelEntry] = {}
        self._aliases: dict[str, str] = {}
        self._rows: dict[str, list[PriceRow]] = {}
        self._discounts: list[Discount] = []
        self.web_search_per_request = Decimal("0.01")
        for parsed in files:
            self._merge(parsed)
        # Answers of row_at and discount_at with the span of moments each holds for:
        # every recorded call is priced, and the answer changes only at a row's or
        # a discount's start or end. The book never changes once built.
        self._row_memo: dict[tuple[str, Speed], _Span[PriceRow | None]] = {}
        self._discount_memo: dict[str | None, _Span[Discount | None]] = {}
        # The cost engine's per-model plans (spendgate.pricing.engine), kept with the book
        # they were computed from.
        self.plans: dict[tuple[Any, ...], Any] = {}

    @classmethod
    def load(cls, override_paths: Sequence[Path] = ()) -> PriceBook:
        """The built-in book with each user price file layered on top, in order.

        Raises :class:`PriceBookError` naming the file, the row and the fix when
        a file is missing or invalid.
        """
        builtin_file = resources.files("spendgate.pricing").joinpath("data", _BUILTIN)
        builtin = tomllib.loads(builtin_file.read_text(encoding="utf-8"))
        documents = [(Path(p), _read_toml(Path(p))) for p in override_paths]
        return cls.from_documents(builtin, [(str(path), data) for path, data in documents])

    @classmethod
    def from_documents(
        cls, builtin: Mapping[str, Any], overrides: Sequence[tuple[str, Mapping[str, Any]]] = ()
    ) -> PriceBook:
        """A book from already-parsed TOML documents (``origin`` names each in errors)."""
        files = [parse_file(builtin, "builtin", 0)]
        for layer, (origin, data) in enumerate(overrides, start=1):
            files.append(parse_file(data, origin, layer))
        version = files[0].version or "builtin-" + _digest([builtin])
        if overrides:
            version += "+sha256:" + _digest(data for _, data in overrides)
        return cls(files, version)

    # -- merging --------------------------------------------------------------------------

    def _merge(self, parsed: ParsedFile) -> None:
        if parsed.web_search_per_request is not None:
            self.web_search_per_request = parsed.web_search_per_request
        for decl in parsed.models:
            model_id = self._declare(decl, parsed)
            self._rows.setdefault(model_id, []).extend(
                replace(row, model=model_id) for row in decl.rows
            )
        for discount in parsed.discounts:
            if discount.model == "*":
                self._discounts.append(discount)
                continue
            target = self.resolve(discount.model)
            if target is None:
                raise PriceBookError(
                    f"{parsed.origin}: discount for unknown model {discount.model!r}. Fix: use a "
                    "model ID or alias from `spendgate prices list`, or '*' for every model"
                )
            self._discounts.append(replace(discount, model=target))

    def _declare(self, decl: ModelDecl, parsed: ParsedFile) -> str:
        """Add or extend a model entry; returns its canonical ID."""
        existing = self.resolve(decl.id)
        if existing is None:
            entry = decl.entry(parsed.origin, private=parsed.layer > 0)
            if entry.id in self._models:
                raise PriceBookError(f"{parsed.origin}: model {entry.id!r} declared twice")
        else:
            old = self._models[existing]
            entry = replace(
                old,
                aliases=old.aliases + tuple(a for a in decl.aliases if a not in old.aliases),
                display_name=decl.display_name or old.display_name,
                family=decl.family or old.family,
                status=decl.status or old.status,
                inference_geo=old.inference_geo
                if decl.inference_geo is None
                else decl.inference_geo,
                retired=decl.retired or old.retired,
                note=decl.note or old.note,
            )
        for alias in entry.aliases:
            owner = self.resolve(alias)
            if owner is not None and owner != entry.id:
                raise PriceBookError(
                    f"{parsed.origin}: model {decl.id!r}: alias {alias!r} already names "
                    f"{owner!r}. Fix: remove the alias or declare the rows under {owner!r}"
                )
        self._models[entry.id] = entry
        for alias in entry.aliases:
            self._aliases[alias] = entry.id
        return entry.id

    # -- lookups --------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """Version of the built-in book, plus a content hash of the user files if any."""
        return self._version

    def resolve(self, model: str | None) -> str | None:
        """The canonical model ID for an ID or alias, or ``None`` if the book does not know it."""
        if not model:
            return None
        name = model.strip()
        if name in self._models:
            return name
        return self._aliases.get(name)

    def model(self, model: str | None) -> ModelEntry | None:
        """The entry for a model ID or alias."""
        canonical = self.resolve(model)
        return None if canonical is None else self._models[canonical]

    def row_at(self, model: str | None, at: datetime, speed: Speed = "standard") -> PriceRow | None:
        """The row pricing ``model`` at ``at``: the highest layer wins, then the latest start."""
        canonical = self.resolve(model)
        if canonical is None:
            return None
        moment = _as_utc(at)
        memo = self._row_memo.get((canonical, speed))
        if memo is not None and _within(memo, moment):
            return memo[2]
        rows = [row for row in self._rows.get(canonical, ()) if row.speed == speed]
        candidates = [row for row in rows if row.covers(moment)]
        found = max(candidates, key=lambda row: (row.layer, row.effective_from), default=None)
        edges = [edge for row in rows for edge in (row.effective_from, row.effective_until)]
        self._row_memo[(canonical, speed)] = _span(moment, edges, found)
        return found

    def discount_at(self, model: str | None, at: datetime) -> Discount | None:
        """The discount in effect: one for the model beats one for '*'; a later file wins a tie."""
        canonical = self.resolve(model)
        moment = _as_utc(at)
        memo = self._discount_memo.get(canonical)
        if memo is not None and _within(memo, moment):
            return memo[2]
        mine = [d for d in self._discounts if d.model in ("*", canonical)]
        matches = [d for d in mine if d.covers(moment)]
        found = max(matches, key=lambda d: (d.model != "*", d.layer), default=None)
        edges = [edge for d in mine for edge in (d.effective_from, d.effective_until)]
        self._discount_memo[canonical] = _span(moment, edges, found)
        return found

    def models(self, at: datetime | None = None) -> list[ModelSummary]:
        """Every known model with its rows in effect at ``at`` (default now): ``prices list``."""
        moment = _as_utc(at) if at is not None else datetime.now(UTC)
        return [
            ModelSummary(
                model=entry,
                standard=self.row_at(entry.id, moment),
                fast=self.row_at(entry.id, moment, "fast"),
            )
            for entry in sorted(self._models.values(), key=lambda e: (e.family, e.id))
        ]

    def rows_for(self, model: str) -> list[PriceRow]:
        """Every row of a model (all layers, both speeds), oldest first, for ``prices show``.

        Raises :class:`PriceBookError` if the book does not know the model.
        """
        canonical = self.resolve(model)
        if canonical is None:
            raise PriceBookError(
                f"unknown model {model!r}. Fix: see `spendgate prices list`, or add it in a "
                "price file (docs/pricing.md)"
            )
        rows = self._rows.get(canonical, [])
        return sorted(rows, key=lambda r: (r.speed != "standard", r.effective_from, r.layer))

    def discounts(self) -> list[Discount]:
        """Every discount from user files, in file order."""
        return list(self._discounts)

    def check(self) -> list[Problem]:
        """Problems to look at: rows overlapping in one file, gaps, models with no rows."""
        problems: list[Problem] = []
        for model_id in sorted(self._models):
            rows = self._rows.get(model_id, [])
            if not rows:
                problems.append(Problem("warning", model_id, "no price rows; calls stay unpriced"))
                continue
            for speed in ("standard", "fast"):
                problems.extend(_check_rows(model_id, [r for r in rows if r.speed == speed]))
        return problems


def _check_rows(model_id: str, rows: list[PriceRow]) -> list[Problem]:
    """Overlaps inside one layer (ambiguous) and gaps in the merged timeline (unpriced)."""
    problems: list[Problem] = []
    by_layer: dict[int, list[PriceRow]] = {}
    for row in rows:
        by_layer.setdefault(row.layer, []).append(row)
    for layer_rows in by_layer.values():
        ordered = sorted(layer_rows, key=lambda r: r.effective_from)
        for before, after in itertools.pairwise(ordered):
            if before.effective_until is None or before.effective_until > after.effective_from:
                problems.append(
                    Problem(
                        "error",
                        model_id,
                        f"{after.speed} rows overlap in {after.origin}: one from "
                        f"{before.effective_from.date()} and one from "
                        f"{after.effective_from.date()}; end the first with effective_until",
                    )
                )
    ordered = sorted(rows, key=lambda r: r.effective_from)
    covered_until: datetime | None = None
    open_ended = False
    for row in ordered:
        if covered_until is not None and not open_ended and row.effective_from > covered_until:
            problems.append(
                Problem(
                    "warning",
                    model_id,
                    f"no {row.speed} price from {covered_until.date()} to "
                    f"{row.effective_from.date()}; calls then stay unpriced",
                )
            )
        if row.effective_until is None:
            open_ended = True
        elif covered_until is None or row.effective_until > covered_until:
            covered_until = row.effective_until
    return problems

"""The price book: built-in data, user price files layered on top, validation, check()."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from spendgate.money import format_usd, parse_usd, to_nanos
from spendgate.pricing import PriceBook, PriceBookError, price_usage, whatif
from spendgate.testing.prices import HAIKU_CONTRACT_FEBRUARY
from spendgate.usage import Usage


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load()


@pytest.fixture
def price_file(tmp_path: Path) -> Path:
    return tmp_path / "prices.toml"


def load_with(path: Path, text: str) -> PriceBook:
    path.write_text(text)
    return PriceBook.load([path])


# Every model ID and alias named in the research, §1a-1c.
KNOWN_IDS = [
    "claude-fable-5-2",
    "claude-mythos-5-2",
    "claude-fable-5-1",
    "claude-mythos-5-1",
    "claude-fable-5",
    "claude-mythos-5",
    "claude-mythos-preview",
    "claude-opus-5-5",
    "claude-opus-5",
    "claude-opus-4-8",
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-opus-4-5",
    "claude-opus-4-5-20251101",
    "claude-opus-4-1",
    "claude-opus-4-1-20250805",
    "claude-opus-4-0",
    "claude-opus-4-20250514",
    "claude-4-opus-20250514",
    "claude-3-opus-20240229",
    "claude-3-opus-latest",
    "claude-sonnet-5-5",
    "claude-sonnet-5",
    "claude-sonnet-4-6",
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
    "claude-sonnet-4-0",
    "claude-sonnet-4-20250514",
    "claude-4-sonnet-20250514",
    "claude-3-7-sonnet-20250219",
    "claude-3-7-sonnet-latest",
    "claude-3-5-sonnet-20240620",
    "claude-3-5-sonnet-20241022",
    "claude-haiku-5-5",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
    "claude-3-5-haiku-20241022",
    "claude-3-5-haiku-latest",
    "claude-3-haiku-20240307",
]


@pytest.mark.parametrize("model_id", KNOWN_IDS)
def test_every_researched_model_id_is_known(book: PriceBook, model_id: str) -> None:
    assert book.resolve(model_id) is not None


def test_builtin_book_is_consistent(book: PriceBook) -> None:
    assert book.version == "builtin-2026-11-22"
    problems = book.check()
    assert [p.severity for p in problems] == ["warning"]
    assert problems[0].model == "claude-mythos-preview"


def test_every_builtin_row_names_its_source(book: PriceBook) -> None:
    for summary in book.models():
        for row in book.rows_for(summary.model.id):
            assert row.source, row
            assert row.origin == "builtin"


def test_aliases_share_the_rows_of_their_model(book: PriceBook) -> None:
    assert book.rows_for("claude-sonnet-4-5") == book.rows_for("claude-sonnet-4-5-20250929")
    assert book.resolve("claude-4-opus-20250514") == "claude-opus-4-20250514"


def test_unconfirmed_facts_are_flagged(book: PriceBook) -> None:
    sonnet = book.rows_for("claude-sonnet-5-5")
    assert [(str(r.rates.cache_read), r.unconfirmed) for r in sonnet] == [
        ("0.20", False),
        ("0.10", True),
    ]
    fast_46 = [r for r in book.rows_for("claude-opus-4-6") if r.speed == "fast"]
    assert [r.unconfirmed for r in fast_46] == [True]
    assert book.rows_for("claude-mythos-5-2")[0].unconfirmed
    assert book.rows_for("claude-mythos-preview") == []


@pytest.mark.parametrize(
    ("model_id", "supported"),
    [
        ("claude-opus-4-6", True),
        ("claude-sonnet-4-6", True),
        ("claude-haiku-5-5", True),
        ("claude-fable-5-2", True),
        ("claude-opus-4-5", False),
        ("claude-haiku-4-5", False),
        ("claude-sonnet-4-5", False),
    ],
)
def test_inference_geo_support_starts_with_the_4_6_generation(
    book: PriceBook, model_id: str, supported: bool
) -> None:
    entry = book.model(model_id)
    assert entry is not None
    assert entry.inference_geo is supported


def test_models_lists_rows_in_effect(book: PriceBook) -> None:
    summaries = {s.model.id: s for s in book.models(at=when("2026-11-20"))}
    opus = summaries["claude-opus-5-5"]
    assert opus.standard is not None and opus.standard.rates.input == Decimal(4)
    assert opus.fast is not None and opus.fast.rates.input == Decimal(8)
    assert summaries["claude-sonnet-5-5"].unconfirmed
    json.dumps([s.to_dict() for s in summaries.values()])


def test_rows_for_an_unknown_model_says_how_to_fix(book: PriceBook) -> None:
    with pytest.raises(PriceBookError, match="prices list"):
        book.rows_for("claude-nope")


# -- user price files ------------------------------------------------------------------------


def test_a_private_model_with_derived_cache_prices(price_file: Path) -> None:
    book = load_with(
        price_file,
        """
[[model]]
id = "acme-claude-ft"
aliases = ["acme-ft"]

[[model.price]]
effective_from = 2026-01-01
input = "2"
output = 8
""",
    )
    entry = book.model("acme-ft")
    assert entry is not None and entry.private
    [row] = book.rows_for("acme-claude-ft")
    assert row.rates.cache_write_5m == Decimal("2.50")
    assert row.rates.cache_write_1h == Decimal(4)
    assert row.rates.cache_read == Decimal("0.2")
    assert row.source == str(price_file)
    usage = Usage.manual(input_tokens=1_000, cache_read_input_tokens=10_000)
    cost = price_usage(book, model="acme-ft", usage=usage, at=when("2026-02-01"))
    assert cost.total_nanousd == 4_000_000  # 1,000*$2 + 10,000*$0.20 = $0.004


def test_override_rows_win_only_inside_their_dates(price_file: Path) -> None:
    book = load_with(
        price_file,
        HAIKU_CONTRACT_FEBRUARY,
    )
    usage = Usage.manual(input_tokens=1_000_000)
    at = {
        d: price_usage(book, model="claude-haiku-4-5", usage=usage, at=when(d))
        for d in ("2026-01-15", "2026-02-15", "2026-03-15")
    }
    assert [c.total_nanousd for c in at.values()] == [1_000_000_000, 900_000_000, 1_000_000_000]
    assert book.version.startswith("builtin-2026-11-22+sha256:")
    assert book.resolve("claude-haiku-4-5-20251001") == "claude-haiku-4-5-20251001"
    entry = book.model("claude-haiku-4-5")
    assert entry is not None and not entry.private


def test_discounts_model_specific_beats_everything(price_file: Path) -> None:
    book = load_with(
        price_file,
        """
[[discount]]
percent = 10
note = "negotiated"

[[discount]]
model = "claude-sonnet-4-5"
percent = "20"
effective_from = 2026-01-01
effective_until = 2027-01-01
""",
    )
    usage = Usage.manual(input_tokens=1_000_000, web_search_requests=10)
    sonnet = price_usage(book, model="claude-sonnet-4-5", usage=usage, at=when("2026-06-01"))
    # ($3 + 10 * $0.01) * 0.8 = $2.48
    assert sonnet.total_nanousd == 2_480_000_000
    assert sonnet.breakdown["modifiers"] == ["discount:20%"]
    haiku = price_usage(book, model="claude-haiku-4-5", usage=usage, at=when("2026-06-01"))
    # ($1 + $0.10) * 0.9 = $0.99
    assert haiku.total_nanousd == 990_000_000
    small = Usage.manual(input_tokens=1_000)
    before = price_usage(book, model="claude-sonnet-4-5", usage=small, at=when("2025-12-01"))
    assert before.breakdown["modifiers"] == ["discount:10%"]


def test_version_follows_content_not_layout(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.toml", tmp_path / "b.toml", tmp_path / "c.toml"
    a.write_text("[[discount]]\npercent = 10\n")
    b.write_text("# our deal\n[[discount]]\npercent   =   10\n")
    c.write_text("[[discount]]\npercent = 11\n")
    versions = [PriceBook.load([p]).version for p in (a, b, c)]
    assert versions[0] == versions[1] != versions[2]
    assert PriceBook.load().version == "builtin-2026-11-22"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[model]]\nid = 'x'\n[[model.price]]\neffective_from = 2026-01-01\ninput = '1'\n",
            "missing output",
        ),
        (
            "[[model]]\nid = 'x'\n[[model.price]]\ninput = '1'\noutput = '2'\n",
            "missing effective_from",
        ),
        (
            "[[model]]\nid = 'x'\n[[model.price]]\neffective_from = 2026-02-01\n"
            "effective_until = 2026-01-01\ninput = '1'\noutput = '2'\n",
            "not after effective_from",
        ),
        (
            "[[model]]\nid = 'x'\n[[model.price]]\neffective_from = 2026-01-01\n"
            "input = '-1'\noutput = '2'\n",
            "zero or more",
        ),
        (
            "[[model]]\nid = 'x'\n[[model.price]]\neffective_from = 2026-01-01\n"
            "input = 'cheap'\noutput = '2'\n",
            "not a number",
        ),
        (
            "[[model]]\nid = 'x'\n[[model.price]]\neffective_from = 2026-01-01\n"
            "input = '1'\noutput = '2'\nspeed = 'turbo'\n",
            "speed must be",
        ),
        (
            "[[model]]\nid = 'x'\n[[model.price]]\neffective_from = 2026-01-01\ninptu = '1'\n",
            "unknown key 'inptu'",
        ),
        ("[[model]]\n[[model.price]]\neffective_from = 2026-01-01\n", "missing id"),
        ("[[discount]]\nmodel = 'claude-nope'\npercent = 5\n", "unknown model 'claude-nope'"),
        ("[[discount]]\npercent = 150\n", "at most 100"),
        ("[[discount]]\nmodel = '*'\n", "missing percent"),
        ("[[model]]\nid = 'mine'\naliases = ['claude-haiku-4-5']\n", "already names"),
        ("[[model]]\nid = 'x'\n[[model.price]]\neffective_from = 'soon'\n", "not a date"),
        ("schema = 2\n", "unknown schema"),
        ("[[model]\nid = 'x'\n", "not valid TOML"),
    ],
)
def test_invalid_files_are_refused_with_a_fix(price_file: Path, text: str, message: str) -> None:
    with pytest.raises(PriceBookError, match=message) as info:
        load_with(price_file, text)
    assert str(price_file) in str(info.value)


def test_row_errors_name_the_model_and_row(price_file: Path) -> None:
    text = (
        "[[model]]\nid = 'x'\n[[model.price]]\neffective_from = 2026-01-01\ninput = 1\noutput = 1\n"
        "[[model.price]]\neffective_from = 2026-02-01\ninput = 1\n"
    )
    with pytest.raises(PriceBookError, match=r"model 'x' price row 2: missing output\. Fix:"):
        load_with(price_file, text)


def test_a_missing_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(PriceBookError, match="SPENDGATE_PRICE_FILES"):
        PriceBook.load([tmp_path / "nope.toml"])


def test_check_reports_overlaps_and_gaps(price_file: Path) -> None:
    book = load_with(
        price_file,
        """
[[model]]
id = "mine"

[[model.price]]
effective_from = 2026-01-01
input = 1
output = 2

[[model.price]]
effective_from = 2026-03-01
input = 1
output = 2

[[model]]
id = "gappy"

[[model.price]]
effective_from = 2026-01-01
effective_until = 2026-02-01
input = 1
output = 2

[[model.price]]
effective_from = 2026-03-01
input = 1
output = 2
""",
    )
    problems = {(p.model, p.severity) for p in book.check()}
    assert ("mine", "error") in problems
    assert ("gappy", "warning") in problems
    messages = [str(p) for p in book.check()]
    assert any("overlap" in m and "effective_until" in m for m in messages)
    assert any("no standard price from 2026-02-01 to 2026-03-01" in m for m in messages)
    # the later row wins an overlap, so lookups stay deterministic
    row = book.row_at("mine", when("2026-04-01"))
    assert row is not None and row.effective_from == when("2026-03-01")


# -- money -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (1_234_500, "0.001234500"),
        (0, "0.000000000"),
        (-100, "-0.000000100"),
        (12_5 * 10**8, "12.500000000"),
    ],
)
def test_format_usd(nanos: int, text: str) -> None:
    assert format_usd(nanos) == text
    assert parse_usd(text) == nanos


def test_money_rounds_half_to_even() -> None:
    assert to_nanos(Decimal("0.0000000165")) == 16
    assert to_nanos(Decimal("0.0000000175")) == 18
    assert format_usd(1_005_000_000, places=2) == "1.00"
    assert parse_usd("$1,000.5") == 1_000_500_000_000


# -- what-if ---------------------------------------------------------------------------------


def test_whatif_switching_model_and_batch(book: PriceBook) -> None:
    usage = Usage.manual(input_tokens=1_000_000, output_tokens=100_000)
    calls = [
        (when("2026-06-01"), "claude-sonnet-4-5", usage),  # $3 + $1.50 = $4.50
        (when("2026-06-01"), "claude-sonnet-4-5", usage),
        (when("2026-06-01"), "claude-unknown", usage),
    ]
    summary = whatif(book, calls, model="claude-haiku-4-5")  # $1 + $0.50 = $1.50 each
    assert (summary.calls, summary.compared, summary.actual_unpriced) == (3, 2, 1)
    assert summary.actual_nanousd == 9_000_000_000
    assert summary.hypothetical_nanousd == 3_000_000_000
    assert summary.difference_nanousd == -6_000_000_000
    assert summary.to_dict()["by_model"]["claude-sonnet-4-5-20250929"]["calls"] == 2
    batch = whatif(book, calls[:1], service_tier="batch")
    assert batch.hypothetical_nanousd == 2_250_000_000
    assert batch.scenario == {
        "model": None,
        "service_tier": "batch",
        "inference_geo": "unchanged",
        "speed": "unchanged",
    }
    json.dumps(summary.to_dict())

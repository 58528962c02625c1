"""docs/configuration.md is generated from the settings object and must match it."""

from __future__ import annotations

from pathlib import Path

from spendgate.configdoc import reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_configuration_reference_is_current() -> None:
    assert DOC.read_text() == reference(), (
        "docs/configuration.md is stale: run `spendgate config reference > docs/configuration.md`"
    )

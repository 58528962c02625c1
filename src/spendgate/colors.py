"""Display colours of teams and proxy keys: ``#rrggbb``, stored in lower case."""

from __future__ import annotations

import re

_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def check_color(value: str) -> str:
    """``value`` as a lower-case ``#rrggbb`` colour; :class:`ValueError` says how to write one."""
    text = value.strip()
    if not _HEX.fullmatch(text):
        raise ValueError(
            f"colour {value!r} is not #rrggbb: give '#' and six hex digits, e.g. #3b82f6"
        )
    return text.lower()

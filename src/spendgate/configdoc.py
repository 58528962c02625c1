"""The configuration reference (docs/configuration.md), generated from :class:`Settings`."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined

from spendgate.settings import Settings

HEADER = """# Configuration reference

Generated from `spendgate.settings.Settings` by `spendgate config reference`;
a test checks that this file matches the code.

Every setting is read from the environment (`SPENDGATE_<NAME>`), a `.env` file in
the working directory, or a TOML file (`spendgate.toml`, or the path in
`SPENDGATE_CONFIG`) with the lower-case names as keys. `spendgate serve` flags
override all of them.

| Environment variable | Type | Default | What it does |
|---|---|---|---|
"""


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        name = getattr(field.default_factory, "__name__", "")
        return "per-user data dir" if name == "default_home" else "`[]`"
    if field.default is PydanticUndefined or field.default is None:
        return "unset"
    return f"`{field.default}`"


def reference() -> str:
    """The whole markdown page."""
    rows = []
    for name, field in Settings.model_fields.items():
        env = f"SPENDGATE_{name.upper()}"
        if name == "anthropic_api_key":
            env = "ANTHROPIC_API_KEY"
        description = (field.description or "").replace("|", "\\|")
        kind = _type_name(field.annotation)
        rows.append(f"| `{env}` | {kind} | {_default(field)} | {description} |")
    return HEADER + "\n".join(rows) + "\n"

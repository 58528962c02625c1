"""Migrations: a migrated database has exactly the tables and columns of the metadata."""

from __future__ import annotations

import importlib
import pkgutil

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import spendgate.storage
from spendgate.storage import Store
from spendgate.storage.keys import KeyStore, NewKey
from spendgate.storage.migrate import _config
from spendgate.storage.schema import metadata


def _differences(store: Store) -> list[object]:
    # Every table module, so that the metadata holds every table the code uses.
    for module in pkgutil.iter_modules(spendgate.storage.__path__):
        if module.name.endswith("_schema"):
            importlib.import_module(f"spendgate.storage.{module.name}")
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff: list[object] = compare_metadata(context, metadata)
    return diff


def test_migrations_match_the_metadata(store: Store) -> None:
    assert _differences(store) == []


def test_key_color_migration_goes_down_and_up(store: Store) -> None:
    keys = KeyStore(store.engine)
    row = keys.create_key(NewKey(key_hash="h" * 64, hint="sg-...abcd", label="a", color="#aabbcc"))
    config = _config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")
    columns = {c["name"] for c in inspect(store.engine).get_columns("proxy_keys")}
    assert "color" not in columns and "label" in columns
    store.upgrade()
    assert _differences(store) == []
    again = keys.get_key(row.id)
    assert (again.label, again.color) == ("a", None)  # the key survives, its colour does not

"""Alembic environment: runs spendgate's migrations on the connection it is handed."""

from __future__ import annotations

from alembic import context

from spendgate.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

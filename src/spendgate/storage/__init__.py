"""Storage: SQLite and PostgreSQL through one typed store."""

from spendgate.storage.engine import StorageError
from spendgate.storage.store import CallFilter, Page, Store

__all__ = ["CallFilter", "Page", "StorageError", "Store"]

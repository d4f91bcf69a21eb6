"""Durable state. `open_store(url)` picks the dialect from the URL and imports it lazily."""

from __future__ import annotations

from orchestrion.errors import StoreError
from orchestrion.store.base import Store

__all__ = ["Store", "open_store"]


def open_store(url: str) -> Store:
    """A `Store` for ``sqlite:///path`` (or a bare file path), or for
    ``postgresql://user@host/db`` (``postgres://`` too)."""
    if url.startswith(("postgresql://", "postgres://")):
        from orchestrion.store.postgres import PostgresStore

        return PostgresStore(url)
    if url.startswith("sqlite:") or "://" not in url:
        from orchestrion.store.sqlite import SqliteStore

        return SqliteStore(url)
    raise StoreError(
        f"unsupported database URL {url!r}: use sqlite:///path/to/file.db or"
        " postgresql://user@host/database"
    )

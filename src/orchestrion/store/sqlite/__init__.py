"""The SQLite dialect: its `Database` (one file, WAL, a cross-process writer lock,
migrations), its cross-process wake-ups (`wake.py`) and the run verbs it runs its own way
(`runs.py`). Its own SQL is ``queries.sql`` (`queries.SQLITE`); ``schema.sql`` is the whole
current schema, to read (the migrations make it). `open_stores(url)` opens a file as the
store's roles."""

from __future__ import annotations

from orchestrion.store.sql.stores import stores_of
from orchestrion.store.sqlite.database import SqliteDatabase, migrate
from orchestrion.store.sqlite.runs import SqliteRuns
from orchestrion.store.stores import Stores

__all__ = ["SqliteDatabase", "SqliteRuns", "migrate", "open_stores"]


def open_stores(url: str) -> Stores:
    """The roles of the SQLite file at ``sqlite:///path`` (or a bare path), created and
    migrated as needed."""
    db = SqliteDatabase(url)
    return stores_of(db, runs=SqliteRuns(db))

"""Durable state, by role: `records.py` (every value), the role protocols (`workflows.py`,
`runs.py`, `triggers.py`, `accounts.py`, `secrets.py`, `reads.py`, `notifier.py`), and
`Stores` (`stores.py`), the bundle of one database's roles. The SQL that implements them
is `sql/` (written once), over a `Database` of `sqlite/` or `postgres/`.

`open_store(url)` picks the dialect from the URL and imports it lazily: the contracts load
no implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrion.errors import StoreError

if TYPE_CHECKING:
    # Not imported here: the role protocols name the spec, and a process that only reads
    # records (a client, a remote CLI command) must not import the spec for it.
    from orchestrion.store.stores import Stores

__all__ = ["migration_names", "open_store", "peek_schema_versions"]


def open_store(url: str) -> Stores:
    """The roles of the database at ``sqlite:///path`` (or a bare file path), or at
    ``postgresql://user@host/db`` (``postgres://`` too)."""
    if url.startswith(("postgresql://", "postgres://")):
        from orchestrion.store.postgres import open_stores as open_postgres

        return open_postgres(url)
    if url.startswith("sqlite:") or "://" not in url:
        from orchestrion.store.sqlite import open_stores as open_sqlite

        return open_sqlite(url)
    raise StoreError(
        f"unsupported database URL {url!r}: use sqlite:///path/to/file.db or"
        " postgresql://user@host/database"
    )


def _dialect(url: str) -> str:
    return "postgres" if url.startswith(("postgresql://", "postgres://")) else "sqlite"


def migration_names(url: str) -> list[str]:
    """The migrations this version of Orchestrion has for the URL's dialect, in order."""
    from pathlib import Path

    folder = Path(__file__).parent / "migrations" / _dialect(url)
    return sorted(p.stem for p in folder.glob("*.sql"))


def peek_schema_versions(url: str) -> list[str]:
    """The migrations applied to a database, read without applying any ([] for a database
    that does not exist yet or was never migrated)."""
    from orchestrion.store.sql.queries import Q

    if _dialect(url) == "postgres":
        import psycopg

        from orchestrion.store.postgres.queries import PG

        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                exists = conn.execute(PG.schema_migrations_table).fetchone()
                if not exists or exists[0] is None:
                    return []
                rows = conn.execute(Q.schema_versions)
                return [str(r[0]) for r in rows]
        except psycopg.Error as exc:
            raise StoreError(f"cannot read PostgreSQL database: {exc}") from exc
    import sqlite3
    from pathlib import Path

    from orchestrion.store.sqlite.database import path_from_url
    from orchestrion.store.sqlite.queries import SQLITE

    path = Path(path_from_url(url))
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            found = conn.execute(SQLITE.schema_migrations_table).fetchone()
            if found is None:
                return []
            return [str(r[0]) for r in conn.execute(Q.schema_versions)]
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read SQLite database {path}: {exc}") from exc

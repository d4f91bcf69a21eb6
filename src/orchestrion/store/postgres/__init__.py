"""The PostgreSQL dialect: its `Database` (a connection pool, pipelined transactions,
migrations under an advisory lock; `database.py`, `tx.py`), LISTEN/NOTIFY wake-ups
(`listen.py`), a gap-free event feed (`feed.py`), round trips counted per verb
(`round_trips.py`), and the role subclasses with its fast paths (`runs.py` with `claim.py`
and `finish.py`, `reads.py`, `triggers.py`). Its own SQL is ``queries.sql``
(`queries.PG`); ``schema.sql`` is the whole current schema, to read (the migrations make
it). `open_stores(url)` opens a database as the store's roles."""

from __future__ import annotations

from orchestrion.store.postgres.database import PostgresDatabase
from orchestrion.store.postgres.queries import PG
from orchestrion.store.postgres.reads import PostgresReads
from orchestrion.store.postgres.runs import PostgresRuns
from orchestrion.store.postgres.triggers import PostgresTriggers
from orchestrion.store.sql.notifications import SqlNotifications
from orchestrion.store.sql.stores import stores_of
from orchestrion.store.stores import Stores

__all__ = [
    "PostgresDatabase",
    "PostgresReads",
    "PostgresRuns",
    "PostgresTriggers",
    "open_stores",
]


def open_stores(url: str, *, max_connections: int = 10, timeout: float = 10.0) -> Stores:
    """The roles of the PostgreSQL database at ``postgresql://user@host/db``, migrated as
    needed; `max_connections` bound this process's pool."""
    db = PostgresDatabase(url, max_connections=max_connections, timeout=timeout)
    return stores_of(
        db,
        runs=PostgresRuns(db),
        reads=PostgresReads(db),
        triggers=PostgresTriggers(db),
        notifications=SqlNotifications(db, lock_events=PG.lock_events),
    )

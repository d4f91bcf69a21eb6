"""`PostgresReads`: the history read up to the event feed's horizon (`feed.py`), so that a
cursor never passes an event id whose transaction is still committing."""

from __future__ import annotations

from orchestrion.store.postgres.database import PostgresDatabase
from orchestrion.store.postgres.queries import PG
from orchestrion.store.records import EventRecord
from orchestrion.store.sql import rows
from orchestrion.store.sql.reads import SqlReads

__all__ = ["PostgresReads"]


class PostgresReads(SqlReads):
    """See `orchestrion.store.reads.ReadStore` for the contract of every method."""

    def __init__(self, db: PostgresDatabase) -> None:
        super().__init__(db)
        self._db: PostgresDatabase = db

    def list_events(
        self, run_id: str | None = None, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        # Only up to the feed's horizon: a cursor never passes an id still committing.
        horizon = self._db.feed.horizon(self._db.read, after_id)
        if run_id is None:
            found = self._db.read(PG.events_upto, (after_id, horizon, limit))
        else:
            found = self._db.read(PG.run_events_upto, (run_id, after_id, horizon, limit))
        read = rows.EVENT
        return [read(r) for r in found]

    def last_event_id(self) -> int:
        return self._db.feed.horizon(self._db.read)

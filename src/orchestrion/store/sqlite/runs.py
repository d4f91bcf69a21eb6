"""`SqliteRuns`: the SQLite side of `SqlRuns`, the verbs it runs its own way.

A batch of outcomes is recorded by `finish` (its successes set-wise). A heartbeat is one
``UPDATE ... RETURNING`` fenced by (owner, epoch); the reaper first
looks without the writer lock (a sweep usually finds nothing), then reaps every expired
lease in one transaction (SQLite has one writer at a time anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrion.store.records import Outcome
from orchestrion.store.sql import lifecycle
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.named import marks
from orchestrion.store.sql.runs import SqlRuns
from orchestrion.store.sqlite import finish
from orchestrion.store.sqlite.database import SqliteDatabase
from orchestrion.store.sqlite.queries import SQLITE

__all__ = ["SqliteRuns"]


class SqliteRuns(SqlRuns):
    """See `orchestrion.store.runs.RunStore` for the contract of every method."""

    def __init__(self, db: SqliteDatabase) -> None:
        super().__init__(db)
        self._db: SqliteDatabase = db

    def _finish_in(self, adv: Advance, outcomes: Sequence[Outcome]) -> tuple[list[int], list[int]]:
        return finish.finish(adv, outcomes)  # the successes set-wise

    def heartbeat(
        self,
        *,
        worker_id: str,
        leases: Sequence[tuple[int, int]],
        lease_seconds: float,
        now: float,
    ) -> list[int]:
        if not leases:
            return []
        sql = SQLITE.heartbeat.fill(
            ids=marks(len(leases)), pairs=",".join("(?, ?)" for _ in leases)
        )
        with self._db.write(now) as adv:
            # Fenced by (owner, epoch): a stale epoch must not extend a newer lease.
            held = {
                (r["id"], r["lease_epoch"])
                for r in adv.tx.execute(
                    sql,
                    (
                        now + lease_seconds,
                        worker_id,
                        *(tr for tr, _ in leases),
                        *(v for lease in leases for v in lease),
                    ),
                ).fetchall()
            }
        return [tr for tr, epoch in leases if (tr, epoch) not in held]

    def reap_expired(self, *, now: float) -> int:
        if not self._db.read(SQLITE.any_expired, (now,)):
            return 0
        with self._db.write(now) as adv:
            expired = adv.tx.execute(SQLITE.expired, (now,)).fetchall()
            for row in expired:
                lifecycle.apply_lost(adv, adv.task_row(row["id"]))
            return len(expired)

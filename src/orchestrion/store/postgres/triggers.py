"""`PostgresTriggers`: finished runs read after every writer of event rows has committed
(event ids are drawn at insert, not at commit, so they may appear out of order)."""

from __future__ import annotations

from orchestrion.store.postgres.queries import PG
from orchestrion.store.records import FinishedRun
from orchestrion.store.sql import trigger_queries
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.queries import Q
from orchestrion.store.sql.triggers import SqlTriggers

__all__ = ["PostgresTriggers"]


class PostgresTriggers(SqlTriggers):
    """See `orchestrion.store.triggers.TriggerStore` for the contract of every method."""

    def finished_runs(self, after: int, *, limit: int = 500) -> tuple[list[FinishedRun], int]:
        if after >= 0:
            # Nothing committed past the cursor: spare the writers the lock (readers pass
            # every second or so: run triggers, traces). A row of a transaction still open
            # is read by a later pass, after the lock.
            newest = self._db.read(Q.last_event_id)[0]["m"]
            if newest is None or int(newest) <= after:
                return [], after

        def fn(adv: Advance) -> tuple[list[FinishedRun], int]:
            # Event ids are drawn at insert, not at commit: below the newest id, a row of a
            # transaction still running may appear later. SHARE mode waits for every
            # transaction that wrote events to end (and holds new writers back for these
            # two reads), so every id up to the max read here is final.
            adv.tx.execute(PG.lock_events)
            return trigger_queries.finished_runs(
                lambda sql, params: list(adv.tx.execute(sql, params).fetchall()), after, limit
            )

        return self._db.transact(0.0, fn)

"""`PostgresRuns`: the PostgreSQL side of `SqlRuns`, its fast paths.

Claims are counted in round trips (`Database.trips`) and remember what the finish of each
claimed task run needs (`finish.TaskFacts`), so that a batch of successes is recorded by
one statement (`finish.py`). A heartbeat is one autocommitted ``UPDATE ... FROM unnest``,
fenced by (owner, epoch); the reaper takes one transaction per expired lease, so that it
never holds the locks of two runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from orchestrion.states import TaskState
from orchestrion.store.postgres.database import PostgresDatabase
from orchestrion.store.postgres.finish import TaskFacts
from orchestrion.store.postgres.finish import finish as pg_finish
from orchestrion.store.postgres.queries import PG
from orchestrion.store.records import Claim, FinishResult, Outcome
from orchestrion.store.sql import lifecycle
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.claim import Claimed
from orchestrion.store.sql.reads import BUCKET
from orchestrion.store.sql.runs import SqlRuns

__all__ = ["PostgresRuns"]

#: How many claimed task runs' `TaskFacts` a store remembers for their finish.
_FACTS_KEPT = 100_000


#: Fold a batch of metric deltas (its bucket expression filled once).
_FOLD: Final = PG.metric_fold.fill(bucket=BUCKET)


class PostgresRuns(SqlRuns):
    """See `orchestrion.store.runs.RunStore` for the contract of every method."""

    def __init__(self, db: PostgresDatabase) -> None:
        super().__init__(db)
        self._db: PostgresDatabase = db
        #: What the finish of a task run claimed here needs to know (`finish.py`).
        self._facts: dict[int, TaskFacts] = {}

    def fold_metrics(self, *, now: float, limit: int = 5000) -> int:
        def fn(adv: Advance) -> int:
            return int(adv.tx.execute(_FOLD, (limit,)).rowcount)

        return self._db.transact(now, fn)

    def claim(
        self,
        *,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease_seconds: float,
        now: float,
        labels: Mapping[str, str] | None = None,
    ) -> list[Claim]:
        with self._db.trips.verb("claim") as items:
            claims = super().claim(
                worker_id=worker_id,
                queues=queues,
                limit=limit,
                lease_seconds=lease_seconds,
                now=now,
                labels=labels,
            )
            items.append(len(claims))
        self._remember(claims)
        return claims

    def _remember(self, claims: Sequence[Claim]) -> None:
        if len(self._facts) > _FACTS_KEPT:
            self._facts.clear()  # outcomes never reported (released, reaped): start afresh
        for c in claims:
            self._facts[c.task_run_id] = TaskFacts(
                c.run_id, c.workflow, c.version, c.task_name, c.kind
            )

    def finish(self, outcomes: Sequence[Outcome], *, now: float) -> FinishResult:
        return self._finish_then(outcomes, now, None)[0]

    def finish_and_claim(
        self,
        outcomes: Sequence[Outcome],
        *,
        now: float,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease_seconds: float,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[FinishResult, list[Claim]]:
        db = self._db
        until = now + lease_seconds
        db.signals.claiming()

        def claim(adv: Advance) -> Claimed:
            return db.claim(adv, worker_id, queues, limit, until, labels)

        result, claims = self._finish_then(outcomes, now, claim if limit > 0 else None)
        self._remember(claims)
        return result, claims

    def _finish_then(
        self,
        outcomes: Sequence[Outcome],
        now: float,
        then: Callable[[Advance], Claimed] | None,
    ) -> tuple[FinishResult, list[Claim]]:
        """Finish `outcomes`; if that made work ready, `then` claims in the same
        transaction."""
        known = {o.task_run_id: f for o in outcomes if (f := self._facts.get(o.task_run_id))}
        tries: list[bool] = []

        def fn(adv: Advance) -> tuple[list[int], list[int], int, Claimed | None]:
            # Optimistic the first time only (see `finish.finish`).
            applied, superseded = pg_finish(adv, outcomes, known, optimistic=not tries)
            tries.append(True)
            ready = adv.newly_ready
            claimed = None
            if then is not None and ready:
                claimed = then(adv)
                # What this worker took wakes nobody (no NOTIFY, no local wake-up).
                adv.newly_ready = max(0, ready - claimed.taken)
            return applied, superseded, ready, claimed

        with self._db.trips.verb("finish") as items:
            items.append(len(outcomes))
            applied, superseded, ready, claimed = self._db.transact(now, fn)
        claims = claimed.build() if claimed is not None else []
        for o in outcomes:
            self._facts.pop(o.task_run_id, None)
        if applied and not (then is not None and ready):
            self._db.signals.work()  # a finish may free a concurrency slot that claims wait on
        result = FinishResult(
            applied=tuple(applied), superseded=tuple(superseded), newly_ready=ready
        )
        return result, claims

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
        with self._db.trips.verb("heartbeat") as items:
            items.append(len(leases))
            return self._heartbeat(worker_id, leases, lease_seconds, now)

    def _heartbeat(
        self, worker_id: str, leases: Sequence[tuple[int, int]], lease_seconds: float, now: float
    ) -> list[int]:
        # One statement, so autocommit makes it atomic. Fenced by (owner, epoch).
        rows = self._db.read(
            PG.heartbeat,
            (now + lease_seconds, [tr for tr, _ in leases], [e for _, e in leases], worker_id),
        )
        held = {(r["id"], r["lease_epoch"]) for r in rows}
        return [tr for tr, epoch in leases if (tr, epoch) not in held]

    def reap_expired(self, *, now: float) -> int:
        expired = self._db.read(PG.expired, (now,))

        def reap(adv: Advance, task_run_id: int) -> int:
            row = adv.task_row(task_run_id)  # locked; then check it is still expired
            running = row is not None and row["state"] == TaskState.RUNNING.value
            if not running or not row["lease_expires_at"] < now:
                return 0  # finished, reaped by someone else, or its heartbeat came in time
            lifecycle.apply_lost(adv, row)
            return 1

        # One transaction per task run: a reaper never holds the locks of two runs.
        return sum(
            self._db.transact(now, functools.partial(reap, task_run_id=r["id"])) for r in expired
        )

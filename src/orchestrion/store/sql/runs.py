"""`SqlRuns`: the `RunStore` of both dialects, over a `Database`.

Each verb runs one `Database.transact` transaction and hands the work to the dialect-free
transactional modules (`lifecycle`, `marking`, `rerun`, `claim`). The verbs a dialect runs
differently subclass this: `sqlite.runs.SqliteRuns` (heartbeat, reap) and
`postgres.runs.PostgresRuns` (claim, finish, heartbeat, reap).
"""

from __future__ import annotations

import abc
import functools
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import TaskEvent, TaskState
from orchestrion.store.metric_records import TraceLineage
from orchestrion.store.records import Claim, FinishResult, LogLine, Outcome, RunRecord, WorkerRecord
from orchestrion.store.sql import lifecycle, marking, rerun
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.claim import Claimed
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.lifecycle import new_run_id
from orchestrion.store.sql.queries import Q
from orchestrion.store.sql.reads import BUCKET, get_run
from orchestrion.store.sql.routing import route_filter

__all__ = ["SqlRuns"]


#: Fold the metric deltas up to an id (the bucket expression filled once).
_FOLD: Final = Q.metric_fold.fill(bucket=BUCKET)


class SqlRuns(abc.ABC):
    """See `orchestrion.store.runs.RunStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _full_id(self, run_id: str) -> str:
        """The run's whole id (a unique prefix is accepted), or `NotFound`."""
        return get_run(self._db.read, run_id).id

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        spec: WorkflowSpec,
        params: dict[str, Any],
        *,
        now: float,
        trigger: str = "manual",
        priority: int = 0,
        idempotency_key: str | None = None,
        parent_task_run_id: int | None = None,
        no_cache: bool = False,
    ) -> RunRecord:
        def fn(adv: Advance) -> str:
            made = lifecycle.create_run(
                adv,
                spec,
                params,
                run_id=new_run_id(now),
                trigger=trigger,
                priority=priority,
                idempotency_key=idempotency_key,
                parent_task_run_id=parent_task_run_id,
            )
            if no_cache:  # before the commit: no worker can look its cached tasks up first
                adv.tx.execute(Q.set_run_no_cache, (made,))
            return made

        run_id = self._db.transact(now, fn)
        return get_run(self._db.read, run_id)

    def cancel_run(self, run_id: str, *, now: float, reason: str = "canceled by user") -> bool:
        full = self._full_id(run_id)
        return bool(self._db.transact(now, lambda adv: lifecycle.cancel_run(adv, full, reason)))

    def retry_run(self, run_id: str, *, now: float) -> bool:
        full = self._full_id(run_id)
        return self._db.transact(now, lambda adv: lifecycle.retry_run(adv, full))

    def rerun_from(self, run_id: str, task: str, *, now: float) -> str:
        full = self._full_id(run_id)

        def fn(adv: Advance) -> str:
            spec, carry, params = rerun.plan_carry(adv, full, task)
            return lifecycle.create_run(
                adv,
                spec,
                params,
                run_id=new_run_id(now),
                trigger=f"rerun:{full}:{task}",
                priority=0,
                idempotency_key=None,
                parent_task_run_id=None,
                carry=carry,
            )

        return self._db.transact(now, fn)

    def mark_task(self, run_id: str, task: str, *, succeeded: bool, now: float) -> None:
        full = self._full_id(run_id)

        def fn(adv: Advance) -> None:
            marking.mark_task(adv, full, task, succeeded)

        self._db.transact(now, fn)

    def timeout_runs(self, *, now: float) -> list[str]:
        due = self._db.read(Q.due_runs, (now,))
        done: list[str] = []
        for row in due:
            cancel = functools.partial(
                lifecycle.cancel_run, run_id=row["id"], reason="run timed out", as_failure=True
            )
            if self._db.transact(now, cancel):
                done.append(row["id"])
        return done

    # ------------------------------------------------------------------ claims and leases

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
        db = self._db
        until = now + lease_seconds
        db.signals.claiming()
        return db.transact(
            now, lambda adv: db.claim(adv, worker_id, queues, limit, until, labels)
        ).build()

    @abc.abstractmethod
    def heartbeat(
        self,
        *,
        worker_id: str,
        leases: Sequence[tuple[int, int]],
        lease_seconds: float,
        now: float,
    ) -> list[int]:
        """See `RunStore.heartbeat` (each dialect runs it its own way)."""

    def finish(self, outcomes: Sequence[Outcome], *, now: float) -> FinishResult:
        def fn(adv: Advance) -> tuple[list[int], list[int], int]:
            applied, superseded = self._finish_in(adv, outcomes)
            return applied, superseded, adv.newly_ready

        applied, superseded, ready = self._db.transact(now, fn)
        if applied:
            self._db.signals.work()  # a finish may free a concurrency slot that claims wait on
        return FinishResult(applied=tuple(applied), superseded=tuple(superseded), newly_ready=ready)

    def _finish_in(self, adv: Advance, outcomes: Sequence[Outcome]) -> tuple[list[int], list[int]]:
        """Apply `outcomes` inside the transaction (applied, superseded task run ids)."""
        applied: list[int] = []
        superseded: list[int] = []
        for outcome in outcomes:
            if lifecycle.apply_outcome(adv, outcome):
                applied.append(outcome.task_run_id)
            else:
                superseded.append(outcome.task_run_id)
        if any(o.cache is not None for o in outcomes):
            from orchestrion.store.sql.cache import record_cache  # imported by caching runs only

            record_cache(adv, outcomes, applied)
        if any(o.assets for o in outcomes):
            from orchestrion.store.sql.assets import record_produced

            record_produced(adv, outcomes, set(applied))
        return applied, superseded

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

        def fn(adv: Advance) -> tuple[list[int], list[int], int, Claimed | None]:
            applied, superseded = self._finish_in(adv, outcomes)
            ready = adv.newly_ready
            # Whenever slots are free, not only when this finish made work ready (the next
            # task of a chain): with one writer a claim costs a read, not a round trip, and
            # a fan-out's backlog then goes to the finishing worker in this transaction
            # instead of in one of the claim loop's, after a wake-up.
            claimed = None
            if limit > 0:
                claimed = db.claim(adv, worker_id, queues, limit, until, labels)
                # What this worker took wakes nobody (no NOTIFY, no local wake-up).
                adv.newly_ready = max(0, ready - claimed.taken)
            return applied, superseded, ready, claimed

        applied, superseded, ready, claimed = db.transact(now, fn)
        claims = claimed.build() if claimed is not None else []
        if applied and claimed is None:
            # A finish may free a concurrency slot that claims wait on; one that claimed
            # has just looked for them itself.
            db.signals.work()
        result = FinishResult(
            applied=tuple(applied), superseded=tuple(superseded), newly_ready=ready
        )
        return result, claims

    def start_child_run(
        self, claim: Claim, spec: WorkflowSpec, params: dict[str, Any], *, now: float
    ) -> str | None:
        def fn(adv: Advance) -> str | None:
            row = adv.task_row(claim.task_run_id)
            if (
                row is None
                or row["state"] != TaskState.RUNNING.value
                or row["lease_epoch"] != claim.epoch
            ):
                return None
            adv.cas_task(row, TaskEvent.WAIT, lease_owner=None, lease_expires_at=None)
            adv.tx.execute(Q.wait_attempt, (now, claim.task_run_id, claim.epoch))
            _, parent = adv.spec_for_run(claim.run_id)  # its priority; no second lock
            return lifecycle.create_run(
                adv,
                spec,
                params,
                run_id=new_run_id(now),
                trigger=f"parent:{claim.run_id}",
                priority=parent["priority"],
                idempotency_key=f"child:{claim.task_run_id}:{claim.epoch}",
                parent_task_run_id=claim.task_run_id,
            )

        return self._db.transact(now, fn)

    @abc.abstractmethod
    def reap_expired(self, *, now: float) -> int:
        """See `RunStore.reap_expired` (each dialect runs it its own way)."""

    def next_ready_at(
        self,
        queues: Sequence[str],
        labels: Mapping[str, str] | None = None,
        *,
        now: float | None = None,
    ) -> float | None:
        now = time.time() if now is None else now
        in_queues, params = self._db.queue_filter(queues)
        routed, route_params = route_filter(labels)
        rows = self._db.read(
            Q.next_ready_at.fill(queue_match=in_queues, routed=routed),
            (*params, *route_params, now, now),
        )
        value = rows[0]["t"] if rows else None
        return None if value is None else float(value)

    def age_priorities(self, *, now: float, every: float, step: int, most: int) -> int:
        def fn(adv: Advance) -> int:
            # `aged` counts the raises so far: a row is raised once per `every` seconds
            # since it became claimable, however often this runs. Priority is not a state:
            # no compare-and-set, no event row.
            cur = adv.tx.execute(Q.age_priorities, (step, step, most, now, every))
            return int(cur.rowcount)

        return self._db.transact(now, fn)

    def trace_lineage(self, run_id: str) -> TraceLineage:
        run = get_run(self._db.read, run_id)
        chain = self._db.read(Q.trace_lineage, (run.id,))
        first = chain[0]
        return TraceLineage(
            run=run,
            root_run_id=chain[-1]["id"],
            parent_run_id=first["parent_run_id"],
            parent_task_run_id=first["parent"],
            parent_epoch=first["parent_epoch"],
        )

    def fold_metrics(self, *, now: float, limit: int = 5000) -> int:
        # An id range is a batch only where writers are serialised (SQLite): no delta
        # below `upto` can commit after this transaction read it. PostgreSQL overrides.
        def fn(adv: Advance) -> int:
            upto = adv.tx.execute(Q.metric_fold_upto, (limit,)).fetchone()["upto"]
            if upto is None:
                return 0
            folded = int(adv.tx.execute(_FOLD, (upto,)).rowcount)
            adv.tx.execute(Q.metric_fold_drop, (upto,))
            return folded

        return self._db.transact(now, fn)

    # ------------------------------------------------------------------ workers and their logs

    def register_worker(self, worker: WorkerRecord) -> None:
        self._db.write_one(
            worker.started_at,
            Q.register_worker,
            (
                worker.id,
                worker.host,
                worker.pid,
                json.dumps(list(worker.queues)),
                worker.started_at,
                worker.heartbeat_at,
                worker.state,
                json.dumps(dict(worker.labels), sort_keys=True),
                worker.slots,
            ),
        )

    def worker_heartbeat(self, worker_id: str, *, now: float, state: str = "running") -> None:
        self._db.write_one(now, Q.worker_heartbeat, (now, state, worker_id))

    def expire_worker(self, worker_id: str, *, now: float) -> int:
        def fn(adv: Advance) -> int:
            cur = adv.tx.execute(Q.expire_leases_of, (now - 1.0, worker_id))
            adv.tx.execute(Q.mark_worker_dead, (worker_id,))
            return int(cur.rowcount)

        return self._db.transact(now, fn)

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        db = self._db

        def fn(adv: Advance) -> None:
            db.insert_logs(adv, lines)
            adv.wrote_events = True  # log followers wait on the same history signal

        db.transact(lines[-1].at, fn)

    # ------------------------------------------------------------------ queue limits (see `slots`)

    def set_queue_limit(self, queue: str, max_running: int, *, now: float) -> None:
        if max_running < 1:
            raise ValueError("a queue limit is at least 1")

        def fn(adv: Advance) -> None:
            adv.tx.execute(Q.set_queue_limit, (queue, max_running, now))
            adv.event(
                None, None, "queue.limit_set", data={"queue": queue, "max_running": max_running}
            )

        self._db.transact(now, fn)

    def clear_queue_limit(self, queue: str, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            gone = adv.tx.execute(Q.clear_queue_limit, (queue,)).fetchone()
            if gone is None:
                return False
            adv.event(None, None, "queue.limit_cleared", data={"queue": queue})
            return True

        return self._db.transact(now, fn)

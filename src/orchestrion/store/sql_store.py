"""The verbs both dialects share, written once over two plumbing hooks: `_transact` (one
write transaction, handed an `Advance`) and `_read` (one statement, ``?`` placeholders).
`SqliteStore` and `PostgresStore` add their plumbing, the hooks where the SQL truly differs
(`_claim`, `_latest_rows`, `_upsert_workflow`, `_insert_logs`, `_queue_filter`,
`_write_one`) and the verbs they run differently (`heartbeat`, `reap_expired`).
"""

from __future__ import annotations

import abc
import functools
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrion.errors import NotFound
from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import TaskEvent
from orchestrion.store import lifecycle, marking, queries, rerun
from orchestrion.store.advance import Advance, Tx
from orchestrion.store.base import (
    AttemptRecord,
    Claim,
    EventRecord,
    FinishResult,
    LogLine,
    LogRecord,
    Outcome,
    RunFilter,
    RunRecord,
    TaskRunRecord,
    WorkerRecord,
    WorkflowRecord,
)
from orchestrion.store.queries import Claimed
from orchestrion.store.routing import route_filter
from orchestrion.store.slots import SLOT_FILTER
from orchestrion.store.sql_auth import SqlAuthVerbs
from orchestrion.store.sql_secrets import SqlSecretVerbs
from orchestrion.store.sql_slots import SqlSlotVerbs
from orchestrion.store.sql_triggers import SqlTriggerVerbs, new_run_id
from orchestrion.store.sql_ui_reads import SqlUiReads

__all__ = ["SqlStore"]


class SqlStore(SqlTriggerVerbs, SqlAuthVerbs, SqlSecretVerbs, SqlUiReads, SqlSlotVerbs):
    """See `orchestrion.store.base.Store` for the contract of every method."""

    #: The column that orders workflow versions registered at the same instant.
    _SEQ = "rowid"
    #: ORDER BY of `list_workers`.
    _WORKER_ORDER = "started_at"

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str], WorkflowSpec] = {}
        self._changed = threading.Condition(threading.Lock())
        self._change_seq = 0  # moved by every local wake-up
        self._claimed_at = threading.local()  # `_change_seq` when this thread last claimed
        self._history = threading.Condition(threading.Lock())
        self._history_seq = 0
        self._closed = False

    # ------------------------------------------------------------------ dialect hooks

    @abc.abstractmethod
    def _claim(
        self,
        adv: Advance,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        until: float,
        labels: Mapping[str, str] | None,
    ) -> Claimed:
        """Lease up to `limit` ready task runs of `queues` whose requirements `labels`
        satisfy to `worker_id` until `until`; their claims are built after the commit."""

    @abc.abstractmethod
    def _upsert_workflow(
        self, adv: Advance, spec: WorkflowSpec, source: str | None, now: float
    ) -> bool:
        """Insert the workflow version (True, with its event) or update its source."""

    @abc.abstractmethod
    def _insert_logs(self, adv: Advance, lines: Sequence[LogLine]) -> None:
        """Insert the log rows."""

    @abc.abstractmethod
    def _queue_filter(self, queues: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        """A condition on ``queue`` (membership in `queues`) and its parameters."""

    @abc.abstractmethod
    def _write_one(self, now: float, sql: str, params: Sequence[Any]) -> None:
        """Run one idempotent write statement on the ``workers`` table."""

    # ------------------------------------------------------------------ plumbing

    def _spec_in(self, tx: Tx, name: str, version: str) -> WorkflowSpec:
        """The spec of a workflow version, read within a transaction (cached: immutable)."""
        key = (name, version)
        spec = self._specs.get(key)
        if spec is None:
            row = tx.execute(
                "SELECT spec FROM workflows WHERE name = ? AND version = ?", key
            ).fetchone()
            if row is None:
                raise NotFound(f"workflow {name!r} version {version!r} is not registered")
            spec = self._specs[key] = WorkflowSpec.from_json(row["spec"])
        return spec

    def _workflow_record(self, row: Any) -> WorkflowRecord:
        """A record whose spec is parsed once per version: specs are immutable."""
        key = (row["name"], row["version"])
        spec = self._specs.get(key)
        if spec is None:
            spec = self._specs[key] = WorkflowSpec.from_json(row["spec"])
        return WorkflowRecord(
            name=row["name"],
            version=row["version"],
            spec=spec,
            source=row["source"],
            created_at=row["created_at"],
        )

    # ------------------------------------------------------------------ wake-ups

    def schema_versions(self) -> list[str]:
        """The migrations applied to this database, in order (applied on open)."""
        rows = self._read("SELECT version FROM schema_migrations ORDER BY version", ())
        return [str(r["version"]) for r in rows]

    def wake(self) -> None:
        self._notify_local()

    def _notify_local(self) -> None:
        with self._changed:
            self._change_seq += 1
            self._changed.notify_all()

    def _notify_history(self) -> None:
        with self._history:
            self._history_seq += 1
            self._history.notify_all()

    def wait_for_change(self, timeout: float) -> None:
        # A wake-up that came after this thread's last claim began, before this wait,
        # would be lost (the worker then slept a whole poll interval): return at once.
        seen = getattr(self._claimed_at, "seq", None)
        self._claimed_at.seq = None
        with self._changed:
            if seen is None or self._change_seq == seen:
                self._changed.wait(timeout)

    def wait_for_events(self, seen: int, timeout: float) -> int:
        with self._history:
            self._history.wait_for(lambda: self._history_seq != seen, timeout)
            return self._history_seq

    # ------------------------------------------------------------------ workflows

    def register_workflow(self, spec: WorkflowSpec, *, source: str | None, now: float) -> bool:
        created = self._transact(now, lambda adv: self._upsert_workflow(adv, spec, source, now))
        self._specs[(spec.name, spec.version)] = spec
        return created

    def get_workflow(self, name: str, version: str | None = None) -> WorkflowRecord:
        if version is None:
            rows = self._read(
                f"SELECT * FROM workflows WHERE name = ? ORDER BY created_at DESC, {self._SEQ}"
                " DESC LIMIT 1",
                (name,),
            )
        else:
            rows = self._read(
                "SELECT * FROM workflows WHERE name = ? AND version = ?", (name, version)
            )
        if not rows:
            raise NotFound(
                f"no workflow named {name!r}" + (f" at version {version}" if version else "")
            )
        return self._workflow_record(rows[0])

    def list_workflows(self) -> list[WorkflowRecord]:
        return [self._workflow_record(r) for r in self._latest_rows("*")]

    def list_versions(self, name: str) -> list[WorkflowRecord]:
        rows = self._read(
            f"SELECT * FROM workflows WHERE name = ? ORDER BY created_at DESC, {self._SEQ} DESC",
            (name,),
        )
        if not rows:
            raise NotFound(f"no workflow named {name!r}")
        return [self._workflow_record(r) for r in rows]

    def set_paused(self, name: str, paused: bool, *, now: float) -> None:
        def fn(adv: Advance) -> None:
            adv.tx.execute(
                "INSERT INTO workflow_flags (name, paused, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,"
                " updated_at = excluded.updated_at",
                (name, int(paused), now),
            )
            kind = "workflow.paused" if paused else "workflow.unpaused"
            adv.event(None, None, kind, data={"workflow": name})

        self._transact(now, fn)

    def paused_workflows(self) -> set[str]:
        return {r["name"] for r in self._read("SELECT name FROM workflow_flags WHERE paused = 1")}

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
    ) -> RunRecord:
        run_id = self._transact(
            now,
            lambda adv: lifecycle.create_run(
                adv,
                spec,
                params,
                run_id=new_run_id(now),
                trigger=trigger,
                priority=priority,
                idempotency_key=idempotency_key,
                parent_task_run_id=parent_task_run_id,
            ),
        )
        return self.get_run(run_id)

    def cancel_run(self, run_id: str, *, now: float, reason: str = "canceled by user") -> bool:
        full = self.get_run(run_id).id
        return bool(self._transact(now, lambda adv: lifecycle.cancel_run(adv, full, reason)))

    def retry_run(self, run_id: str, *, now: float) -> bool:
        full = self.get_run(run_id).id
        return self._transact(now, lambda adv: lifecycle.retry_run(adv, full))

    def rerun_from(self, run_id: str, task: str, *, now: float) -> str:
        full = self.get_run(run_id).id

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

        return self._transact(now, fn)

    def mark_task(self, run_id: str, task: str, *, succeeded: bool, now: float) -> None:
        full = self.get_run(run_id).id

        def fn(adv: Advance) -> None:
            marking.mark_task(adv, full, task, succeeded)

        self._transact(now, fn)

    def timeout_runs(self, *, now: float) -> list[str]:
        due = self._read(
            "SELECT id FROM runs WHERE deadline IS NOT NULL AND deadline <= ?"
            " AND state IN ('queued', 'running', 'compensating')",
            (now,),
        )
        done: list[str] = []
        for row in due:
            cancel = functools.partial(
                lifecycle.cancel_run, run_id=row["id"], reason="run timed out", as_failure=True
            )
            if self._transact(now, cancel):
                done.append(row["id"])
        return done

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows and run_id and len(run_id) < 20:
            rows = self._read(  # ids sort by code point (COLLATE "C"): a prefix is a range
                "SELECT * FROM runs WHERE id >= ? AND id < ? LIMIT 2", (run_id, run_id + "\uffff")
            )
            if len(rows) > 1:
                raise NotFound(f"run id prefix {run_id!r} is ambiguous; give more characters")
        if not rows:
            raise NotFound(f"no run with id {run_id!r}")
        return queries.run_record(rows[0])

    def list_runs(self, filt: RunFilter) -> list[RunRecord]:
        sql, params = queries.list_runs_sql(filt)
        return [queries.run_record(r) for r in self._read(sql, params)]

    def list_task_runs(self, run_id: str) -> list[TaskRunRecord]:
        rows = self._read("SELECT * FROM task_runs WHERE run_id = ? ORDER BY id", (run_id,))
        return [queries.task_run_record(r) for r in rows]

    def list_attempts(self, run_id: str) -> list[AttemptRecord]:
        rows = self._read("SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))
        return [queries.attempt_record(r) for r in rows]

    def list_events(
        self, run_id: str | None = None, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        if run_id is None:
            rows = self._read(
                "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            )
        else:
            rows = self._read(
                "SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
                (run_id, after_id, limit),
            )
        return [queries.event_record(r) for r in rows]

    def last_event_id(self) -> int:
        return int(self._read("SELECT max(id) AS m FROM events")[0]["m"] or 0)

    # ------------------------------------------------------------------ workers

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
        until = now + lease_seconds
        self._claimed_at.seq = self._change_seq
        return self._transact(
            now, lambda adv: self._claim(adv, worker_id, queues, limit, until, labels)
        ).build()

    def finish(self, outcomes: Sequence[Outcome], *, now: float) -> FinishResult:
        def fn(adv: Advance) -> tuple[list[int], list[int], int]:
            applied, superseded = self._finish_in(adv, outcomes)
            return applied, superseded, adv.newly_ready

        applied, superseded, ready = self._transact(now, fn)
        if applied:
            self._notify_local()  # a finish may free a concurrency slot that claims wait on
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
        until = now + lease_seconds
        self._claimed_at.seq = self._change_seq

        def fn(adv: Advance) -> tuple[list[int], list[int], int, Claimed | None]:
            applied, superseded = self._finish_in(adv, outcomes)
            ready = adv.newly_ready
            # Only when this finish made work ready (the next task of a chain): otherwise
            # the worker's claim loop takes what there is, as before.
            claimed = None
            if ready and limit > 0:
                claimed = self._claim(adv, worker_id, queues, limit, until, labels)
                # What this worker took wakes nobody (no NOTIFY, no local wake-up).
                adv.newly_ready = max(0, ready - claimed.taken)
            return applied, superseded, ready, claimed

        applied, superseded, ready, claimed = self._transact(now, fn)
        claims = claimed.build() if claimed is not None else []
        if applied and not (ready and limit > 0):
            self._notify_local()  # a finish may free a concurrency slot that claims wait on
        result = FinishResult(
            applied=tuple(applied), superseded=tuple(superseded), newly_ready=ready
        )
        return result, claims

    def start_child_run(
        self, claim: Claim, spec: WorkflowSpec, params: dict[str, Any], *, now: float
    ) -> str | None:
        def fn(adv: Advance) -> str | None:
            row = adv.task_row(claim.task_run_id)
            if row is None or row["state"] != "running" or row["lease_epoch"] != claim.epoch:
                return None
            adv.cas_task(row, TaskEvent.WAIT, lease_owner=None, lease_expires_at=None)
            adv.tx.execute(
                "UPDATE attempts SET finished_at = ?, outcome = 'waiting' WHERE task_run_id = ?"
                " AND epoch = ?",
                (now, claim.task_run_id, claim.epoch),
            )
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

        return self._transact(now, fn)

    def next_ready_at(
        self,
        queues: Sequence[str],
        labels: Mapping[str, str] | None = None,
        *,
        now: float | None = None,
    ) -> float | None:
        now = time.time() if now is None else now
        in_queues, params = self._queue_filter(queues)
        routed, route_params = route_filter(labels)
        rows = self._read(
            "SELECT min(ready_at) AS t FROM task_runs WHERE state IN ('queued', 'retry_wait')"
            f" AND queue {in_queues}{routed}"
            # held back by a full concurrency limit: not claimable, so not a reason to wake
            " AND (conc_key IS NULL OR conc_limit > (SELECT count(*) FROM task_runs r"
            " WHERE r.state = 'running' AND r.conc_key = task_runs.conc_key))" + SLOT_FILTER,
            (*params, *route_params, now, now),
        )
        value = rows[0]["t"] if rows else None
        return None if value is None else float(value)

    def age_priorities(self, *, now: float, every: float, step: int, most: int) -> int:
        def fn(adv: Advance) -> int:
            # `aged` counts the raises so far: a row is raised once per `every` seconds
            # since it became claimable, however often this runs. Priority is not a state:
            # no compare-and-set, no event row.
            cur = adv.tx.execute(
                "UPDATE task_runs SET aged = aged + 1, priority = CASE WHEN priority + ?"
                " > 1000 THEN 1000 ELSE priority + ? END"
                " WHERE state IN ('queued', 'retry_wait') AND aged < ?"
                " AND ready_at <= ? - (aged + 1) * ?",
                (step, step, most, now, every),
            )
            return int(cur.rowcount)

        return self._transact(now, fn)

    def register_worker(self, worker: WorkerRecord) -> None:
        self._write_one(
            worker.started_at,
            "INSERT INTO workers (id, host, pid, queues, started_at, heartbeat_at, state,"
            " labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " heartbeat_at = excluded.heartbeat_at, state = excluded.state",
            (
                worker.id,
                worker.host,
                worker.pid,
                json.dumps(list(worker.queues)),
                worker.started_at,
                worker.heartbeat_at,
                worker.state,
                json.dumps(dict(worker.labels), sort_keys=True),
            ),
        )

    def worker_heartbeat(self, worker_id: str, *, now: float, state: str = "running") -> None:
        self._write_one(
            now,
            "UPDATE workers SET heartbeat_at = ?, state = ? WHERE id = ?",
            (now, state, worker_id),
        )

    def running_by_worker(self) -> dict[str, list[TaskRunRecord]]:
        rows = self._read(
            "SELECT * FROM task_runs WHERE state = 'running' AND lease_owner IS NOT NULL"
            " ORDER BY id"
        )
        out: dict[str, list[TaskRunRecord]] = {}
        for row in rows:
            out.setdefault(row["lease_owner"], []).append(queries.task_run_record(row))
        return out

    def list_workers(self) -> list[WorkerRecord]:
        rows = self._read(f"SELECT * FROM workers ORDER BY {self._WORKER_ORDER}")
        return [queries.worker_record(r) for r in rows]

    def expire_worker(self, worker_id: str, *, now: float) -> int:
        def fn(adv: Advance) -> int:
            cur = adv.tx.execute(
                "UPDATE task_runs SET lease_expires_at = ? WHERE lease_owner = ?"
                " AND state = 'running'",
                (now - 1.0, worker_id),
            )
            adv.tx.execute("UPDATE workers SET state = 'dead' WHERE id = ?", (worker_id,))
            return int(cur.rowcount)

        return self._transact(now, fn)

    # ------------------------------------------------------------------ logs

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return

        def fn(adv: Advance) -> None:
            self._insert_logs(adv, lines)
            adv.wrote_events = True  # log followers wait on the same history signal

        self._transact(lines[-1].at, fn)

    def get_logs(
        self, run_id: str, *, task_name: str | None = None, after_id: int = 0, limit: int = 10_000
    ) -> list[LogRecord]:
        sql = (
            "SELECT l.*, t.task_name, t.map_index FROM logs l JOIN task_runs t"
            " ON t.id = l.task_run_id WHERE l.run_id = ? AND l.id > ?"
        )
        params: list[Any] = [run_id, after_id]
        if task_name is not None:
            sql += " AND t.task_name = ?"
            params.append(task_name)
        sql += " ORDER BY l.id LIMIT ?"
        params.append(limit)
        return [queries.log_record(r) for r in self._read(sql, params)]

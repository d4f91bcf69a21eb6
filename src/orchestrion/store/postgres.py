"""The PostgreSQL `Store`: a psycopg 3 connection pool, every verb one transaction.

The transactional logic is the dialect-free code that SQLite runs too (`advance.py`,
`lifecycle.py`, `trigger_verbs.py`, `queries.py`), driven through `PgTx` and `PgAdvance`
(`postgres_tx.py`: placeholders, row locks for concurrent writers). What differs lives
here and in `postgres_claim.py` (``FOR UPDATE SKIP LOCKED`` claims, advisory locks for
concurrency limits), `postgres_listen.py` (LISTEN/NOTIFY wake-ups) and
`postgres_triggers.py` (the trigger verbs).

Failures: every database error becomes `StoreError`, so the loops that call the store back
off and try again; a deadlock or serialization failure is retried here, from the start of
the transaction. The pool checks a connection before handing it out and reconnects after
a PostgreSQL restart. Migrations run at open, under an advisory lock, so several processes
may start at once.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from orchestrion.errors import NotFound, StoreError
from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import TaskEvent
from orchestrion.store import lifecycle, marking, postgres_claim, queries, rerun
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
from orchestrion.store.postgres_listen import HISTORY_CHANNEL, WORK_CHANNEL, Listener
from orchestrion.store.postgres_triggers import PostgresTriggerVerbs
from orchestrion.store.postgres_tx import Conn, PgAdvance, PgTx, migrate, translate
from orchestrion.store.sqlite_triggers import new_run_id

__all__ = ["PostgresStore"]

log = logging.getLogger("orchestrion.store")

T = TypeVar("T")

#: A deadlock or serialization failure rolls the transaction back: run it again.
_RETRIED = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_ATTEMPTS = 6


class PostgresStore(PostgresTriggerVerbs):
    """See `orchestrion.store.base.Store` for the contract of every method."""

    def __init__(self, url: str, *, max_connections: int = 10, timeout: float = 10.0) -> None:
        self.url = url
        self._token = secrets.token_hex(8)
        self._specs: dict[tuple[str, str], WorkflowSpec] = {}
        self._changed = threading.Condition(threading.Lock())
        self._history = threading.Condition(threading.Lock())
        self._history_seq = 0
        self._closed = False
        self._listener: Listener | None = None
        self._listen_work = self._listen_history = False
        #: Statements sent by `_transact` so far (round trips, for measurements).
        self.statements = 0
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 5},
            timeout=timeout,
            name="orchestrion",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
            with self._pool.connection() as conn:
                migrate(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            self._pool.close()
            raise StoreError(f"cannot open PostgreSQL database: {exc}") from exc

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _connection(self) -> Iterator[Conn]:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreError(f"no database connection: {exc}") from exc

    def _transact(self, now: float, fn: Callable[[PgAdvance], T]) -> T:
        """Run `fn` in one transaction, then wake local waiters (the transaction itself
        sent the NOTIFYs). Run again from the start after a deadlock or a serialization
        failure, or when the connection turned out dead before COMMIT was sent (the server
        rolled the transaction back): after a PostgreSQL restart the pool's idle
        connections are all dead, and this finds out at the cost of one failed BEGIN
        instead of a check before every use."""
        for attempt in range(_ATTEMPTS):
            committing = False
            conn: Conn | None = None
            try:
                with self._connection() as conn, conn.transaction():
                    tx = PgTx(conn)
                    adv = PgAdvance(tx, functools.partial(self._spec_in, tx), now)
                    adv.token = self._token
                    result = fn(adv)
                    work = bool(adv.newly_ready or adv.run_changed)
                    channels = [WORK_CHANNEL] * work + [HISTORY_CHANNEL] * adv.wrote_events
                    adv.flush(channels)
                    self.statements += tx.statements + 2  # with BEGIN and COMMIT
                    committing = True
            except _RETRIED as exc:
                if attempt == _ATTEMPTS - 1:
                    raise StoreError(f"database error after {_ATTEMPTS} tries: {exc}") from exc
                log.info("store.retry", extra={"error": str(exc).splitlines()[0]})
                time.sleep(random.uniform(0.001, 0.02) * (attempt + 1))
                continue
            except psycopg.Error as exc:
                if self._reconnect(conn, exc) and not committing and attempt < _ATTEMPTS - 1:
                    continue
                raise StoreError(f"database error: {exc}") from exc
            if work:
                self._notify_local()
            if adv.wrote_events:
                self._notify_history()
            return result
        raise AssertionError("unreachable")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """One statement in autocommit (also a single-statement write: atomic by itself,
        and each of ours is idempotent, so it is sent again on a fresh connection when
        the first one turns out dead)."""
        for attempt in range(2):
            conn: Conn | None = None
            try:
                with self._connection() as conn:
                    return conn.execute(translate(sql), tuple(params)).fetchall()
            except psycopg.Error as exc:
                if attempt == 0 and self._reconnect(conn, exc):
                    continue
                raise StoreError(f"database error: {exc}") from exc
        raise AssertionError("unreachable")

    def _reconnect(self, conn: Conn | None, exc: psycopg.Error) -> bool:
        """True when `exc` came from a dead connection: the pool has dropped it, and now
        tests its idle ones too (a restart killed them all)."""
        if conn is None or not conn.closed or not isinstance(exc, psycopg.OperationalError):
            return False
        log.warning("store.reconnect", extra={"error": str(exc).strip().splitlines()[0:1]})
        self._pool.check()
        return True

    def _spec_in(self, tx: PgTx, name: str, version: str) -> WorkflowSpec:
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

    def _notify(self) -> None:
        self._notify_local()

    def _notify_local(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _notify_history(self) -> None:
        with self._history:
            self._history_seq += 1
            self._history.notify_all()

    def _on_work(self) -> None:
        if self._listen_work:
            self._notify_local()

    def _on_history(self) -> None:
        if self._listen_history:
            self._notify_history()

    def listen(self, *, work: bool = True, history: bool = False) -> None:
        """Be woken by other processes' commits too (LISTEN/NOTIFY on a connection of its
        own): workers listen for work, the API server for history."""
        self._listen_work |= work
        self._listen_history |= history
        if self._listener is None and not self._closed:
            handlers = {WORK_CHANNEL: self._on_work, HISTORY_CHANNEL: self._on_history}
            self._listener = Listener(self.url, handlers, self._token)
            self._listener.start()

    def wait_for_change(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    def wait_for_events(self, seen: int, timeout: float) -> int:
        with self._history:
            self._history.wait_for(lambda: self._history_seq != seen, timeout)
            return self._history_seq

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.stop()
        self._pool.close()
        self._notify_local()

    # ------------------------------------------------------------------ workflows

    def register_workflow(self, spec: WorkflowSpec, *, source: str | None, now: float) -> bool:
        def fn(adv: PgAdvance) -> bool:
            row = adv.tx.execute(
                "INSERT INTO workflows (name, version, spec, source, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, version) DO NOTHING RETURNING name",
                (spec.name, spec.version, spec.to_json(), source, now),
            ).fetchone()
            if row is not None:
                data = {"workflow": spec.name, "version": spec.version}
                adv.event(None, None, "workflow.registered", data=data)
            elif source is not None:
                adv.tx.execute(
                    "UPDATE workflows SET source = ? WHERE name = ? AND version = ?"
                    " AND source IS DISTINCT FROM ?",
                    (source, spec.name, spec.version, source),
                )
            return row is not None

        created = self._transact(now, fn)
        self._specs[(spec.name, spec.version)] = spec
        return created

    def get_workflow(self, name: str, version: str | None = None) -> WorkflowRecord:
        if version is None:
            rows = self._read(
                "SELECT * FROM workflows WHERE name = ? ORDER BY created_at DESC, seq DESC LIMIT 1",
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

    def _latest_rows(self, cols: str) -> list[Any]:
        rows = self._read(
            f"SELECT DISTINCT ON (name) {cols} FROM workflows"
            " ORDER BY name, created_at DESC, seq DESC"
        )
        return sorted(rows, key=lambda r: str(r["name"]))  # code point order, as SQLite

    def list_workflows(self) -> list[WorkflowRecord]:
        return [self._workflow_record(r) for r in self._latest_rows("*")]

    def list_versions(self, name: str) -> list[WorkflowRecord]:
        rows = self._read(
            "SELECT * FROM workflows WHERE name = ? ORDER BY created_at DESC, seq DESC", (name,)
        )
        if not rows:
            raise NotFound(f"no workflow named {name!r}")
        return [self._workflow_record(r) for r in rows]

    def set_paused(self, name: str, paused: bool, *, now: float) -> None:
        def fn(adv: PgAdvance) -> None:
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

        def fn(adv: PgAdvance) -> str:
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

        def fn(adv: PgAdvance) -> None:
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
            rows = self._read(  # ids are COLLATE "C": a prefix is a range
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
    ) -> list[Claim]:
        return self._transact(
            now,
            lambda adv: postgres_claim.claim(adv, worker_id, queues, limit, now + lease_seconds),
        )

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
        # One statement, so autocommit makes it atomic. Fenced by (owner, epoch).
        rows = self._read(
            "UPDATE task_runs t SET lease_expires_at = ? FROM unnest(?::bigint[], ?::bigint[])"
            " AS l(id, epoch) WHERE t.id = l.id AND t.lease_epoch = l.epoch"
            " AND t.lease_owner = ? AND t.state = 'running' RETURNING t.id, t.lease_epoch",
            (now + lease_seconds, [tr for tr, _ in leases], [e for _, e in leases], worker_id),
        )
        held = {(r["id"], r["lease_epoch"]) for r in rows}
        return [tr for tr, epoch in leases if (tr, epoch) not in held]

    def finish(self, outcomes: Sequence[Outcome], *, now: float) -> FinishResult:
        def fn(adv: PgAdvance) -> tuple[list[int], list[int], int]:
            applied: list[int] = []
            superseded: list[int] = []
            for outcome in sorted(outcomes, key=lambda o: o.task_run_id):
                if lifecycle.apply_outcome(adv, outcome):
                    applied.append(outcome.task_run_id)
                else:
                    superseded.append(outcome.task_run_id)
            return applied, superseded, adv.newly_ready

        applied, superseded, ready = self._transact(now, fn)
        if applied:
            self._notify_local()  # a finish may free a concurrency slot that claims wait on
        return FinishResult(applied=tuple(applied), superseded=tuple(superseded), newly_ready=ready)

    def start_child_run(
        self, claim: Claim, spec: WorkflowSpec, params: dict[str, Any], *, now: float
    ) -> str | None:
        def fn(adv: PgAdvance) -> str | None:
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

    def reap_expired(self, *, now: float) -> int:
        expired = self._read(
            "SELECT id FROM task_runs WHERE state = 'running' AND lease_expires_at < ? ORDER BY id",
            (now,),
        )

        def reap(adv: PgAdvance, task_run_id: int) -> int:
            row = adv.task_row(task_run_id)  # locked; then check it is still expired
            if row is None or row["state"] != "running" or not row["lease_expires_at"] < now:
                return 0  # finished, reaped by someone else, or its heartbeat came in time
            lifecycle.apply_lost(adv, row)
            return 1

        # One transaction per task run: a reaper never holds the locks of two runs.
        return sum(
            self._transact(now, functools.partial(reap, task_run_id=r["id"])) for r in expired
        )

    def next_ready_at(self, queues: Sequence[str]) -> float | None:
        rows = self._read(
            "SELECT min(ready_at) AS t FROM task_runs WHERE state IN ('queued', 'retry_wait')"
            " AND queue = ANY(?)"
            # held back by a full concurrency limit: not claimable, so not a reason to wake
            " AND (conc_key IS NULL OR conc_limit > (SELECT count(*) FROM task_runs r"
            " WHERE r.state = 'running' AND r.conc_key = task_runs.conc_key))",
            (list(queues),),
        )
        value = rows[0]["t"] if rows else None
        return None if value is None else float(value)

    def register_worker(self, worker: WorkerRecord) -> None:
        self._read(
            "INSERT INTO workers (id, host, pid, queues, started_at, heartbeat_at, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " heartbeat_at = excluded.heartbeat_at, state = excluded.state RETURNING id",
            (
                worker.id,
                worker.host,
                worker.pid,
                json.dumps(list(worker.queues)),
                worker.started_at,
                worker.heartbeat_at,
                worker.state,
            ),
        )

    def worker_heartbeat(self, worker_id: str, *, now: float, state: str = "running") -> None:
        self._read(
            "UPDATE workers SET heartbeat_at = ?, state = ? WHERE id = ? RETURNING id",
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
        rows = self._read("SELECT * FROM workers ORDER BY started_at, id")
        return [queries.worker_record(r) for r in rows]

    def expire_worker(self, worker_id: str, *, now: float) -> int:
        def fn(adv: PgAdvance) -> int:
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

        def fn(adv: PgAdvance) -> None:
            adv.tx.execute(
                "INSERT INTO logs (run_id, task_run_id, attempt, at, stream, line)"
                " SELECT * FROM unnest(?::text[], ?::bigint[], ?::int[], ?::float8[],"
                " ?::text[], ?::text[])",
                [
                    [x.run_id for x in lines],
                    [x.task_run_id for x in lines],
                    [x.attempt for x in lines],
                    [x.at for x in lines],
                    [x.stream for x in lines],
                    [x.line for x in lines],
                ],
            )
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

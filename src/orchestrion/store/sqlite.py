"""The SQLite `Store`: WAL, one writer at a time (`BEGIN IMMEDIATE`), a busy timeout.

Durability: WAL with ``synchronous=NORMAL`` survives any process crash (SIGKILL included);
only an operating-system crash or power loss may drop the last transactions.

Within one process, a lock serialises use of the single connection and a condition
variable wakes idle workers the moment a transaction makes a task run ready. Other
processes are serialised by SQLite's own locking and find new work by polling.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from orchestrion.errors import NotFound, StoreError
from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import TaskEvent
from orchestrion.store import lifecycle, marking, queries, rerun
from orchestrion.store.advance import Advance
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
from orchestrion.store.sqlite_triggers import SqliteTriggerVerbs, new_run_id
from orchestrion.store.wake import Waker

__all__ = ["SqliteStore"]

_MIGRATIONS = Path(__file__).parent / "migrations" / "sqlite"


def _path_from_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    if url.startswith("sqlite://"):
        return url[len("sqlite://") :]
    return url


class SqliteStore(SqliteTriggerVerbs):
    """See `orchestrion.store.base.Store` for the contract of every method."""

    def __init__(self, url: str) -> None:
        self.url = url
        path = _path_from_url(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {path!r}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        # Writers from every process queue on this lock before BEGIN IMMEDIATE, so SQLite's
        # own busy handler (which sleeps up to 100 ms between tries) never has to wait.
        self._lock_file = None if path == ":memory:" else open(f"{path}.lock", "a+b")  # noqa: SIM115
        self._lock = threading.RLock()
        self._changed = threading.Condition(threading.Lock())
        self._history = threading.Condition(threading.Lock())
        self._history_seq = 0
        self._specs: dict[tuple[str, str], WorkflowSpec] = {}
        self._closed = False
        self._waker = None if path == ":memory:" else Waker(Path(path).resolve().parent / ".wake")
        for pragma in (
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA foreign_keys = ON",
            "PRAGMA busy_timeout = 30000",
            "PRAGMA cache_size = -32000",
        ):
            self._conn.execute(pragma)
        self._migrate()

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The cross-process writer lock (an flock on ``<db>.lock``)."""
        if self._lock_file is None:
            yield
            return
        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    def _migrate(self) -> None:
        with self._lock, self._exclusive():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
                )
                done = {r[0] for r in self._conn.execute("SELECT version FROM schema_migrations")}
                for file in sorted(_MIGRATIONS.glob("*.sql")):
                    if file.stem in done:
                        continue
                    for statement in _statements(file.read_text()):
                        self._conn.execute(statement)
                    self._conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, strftime('%s', 'now'))",
                        (file.stem,),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _write(self, now: float) -> Iterator[Advance]:
        """One write transaction; yields the `Advance` that applies changes within it."""
        if self._closed:
            raise StoreError("the store is closed")
        with self._lock, self._exclusive():
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot start a write transaction: {exc}") from exc
            adv = Advance(self._conn, self._spec_in_tx, now)
            try:
                yield adv
                adv.flush()
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise StoreError(f"database error: {exc}") from exc
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        work = bool(adv.newly_ready or adv.run_changed)
        if work:
            self._notify_local()
        if adv.wrote_events:
            self._notify_history()
        if self._waker is not None:
            self._waker.ping(work=work, history=adv.wrote_events)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._closed:
            raise StoreError("the store is closed")
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"database error: {exc}") from exc

    def _workflow_record(self, row: Any) -> WorkflowRecord:
        """A record whose spec is parsed once per version: specs are immutable."""
        key = (row["name"], row["version"])
        spec = self._specs.get(key)
        if spec is None:
            spec = WorkflowSpec.from_json(row["spec"])
            self._specs[key] = spec
        return WorkflowRecord(
            name=row["name"],
            version=row["version"],
            spec=spec,
            source=row["source"],
            created_at=row["created_at"],
        )

    def _spec_in_tx(self, name: str, version: str) -> WorkflowSpec:
        key = (name, version)
        spec = self._specs.get(key)
        if spec is None:
            row = self._conn.execute(
                "SELECT spec FROM workflows WHERE name = ? AND version = ?", key
            ).fetchone()
            if row is None:
                raise NotFound(f"workflow {name!r} version {version!r} is not registered")
            spec = WorkflowSpec.from_json(row["spec"])
            self._specs[key] = spec
        return spec

    def _notify(self) -> None:
        self._notify_local()
        if self._waker is not None and not self._closed:
            self._waker.ping(work=True, history=False)

    def _notify_local(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _notify_history(self) -> None:
        with self._history:
            self._history_seq += 1
            self._history.notify_all()

    def listen(self, *, work: bool = True, history: bool = False) -> None:
        """Be woken by other processes' commits too: workers listen for work, the API server
        for history (its live event stream)."""
        if self._waker is not None:
            self._waker.listen(
                self._notify_local if work else None, self._notify_history if history else None
            )

    def wait_for_change(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    def wait_for_events(self, seen: int, timeout: float) -> int:
        with self._history:
            self._history.wait_for(lambda: self._history_seq != seen, timeout)
            return self._history_seq

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
                if self._lock_file is not None:
                    self._lock_file.close()
                if self._waker is not None:
                    self._waker.close()
        self._notify_local()

    # ------------------------------------------------------------------ workflows

    def register_workflow(self, spec: WorkflowSpec, *, source: str | None, now: float) -> bool:
        with self._write(now) as adv:
            known = adv.tx.execute(
                "SELECT 1 FROM workflows WHERE name = ? AND version = ?",
                (spec.name, spec.version),
            ).fetchone()
            if known is None:
                adv.tx.execute(
                    "INSERT INTO workflows (name, version, spec, source, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (spec.name, spec.version, spec.to_json(), source, now),
                )
                adv.event(
                    None,
                    None,
                    "workflow.registered",
                    data={"workflow": spec.name, "version": spec.version},
                )
            elif source is not None:
                adv.tx.execute(
                    "UPDATE workflows SET source = ? WHERE name = ? AND version = ?",
                    (source, spec.name, spec.version),
                )
            created = known is None
        self._specs[(spec.name, spec.version)] = spec
        return created

    def get_workflow(self, name: str, version: str | None = None) -> WorkflowRecord:
        if version is None:
            rows = self._read(
                "SELECT * FROM workflows WHERE name = ? ORDER BY created_at DESC, rowid DESC"
                " LIMIT 1",
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
        rows = self._read(
            "SELECT w.* FROM workflows w WHERE w.rowid = (SELECT w2.rowid FROM workflows w2"
            " WHERE w2.name = w.name ORDER BY w2.created_at DESC, w2.rowid DESC LIMIT 1)"
            " ORDER BY w.name"
        )
        return [self._workflow_record(r) for r in rows]

    def list_versions(self, name: str) -> list[WorkflowRecord]:
        rows = self._read(
            "SELECT * FROM workflows WHERE name = ? ORDER BY created_at DESC, rowid DESC", (name,)
        )
        if not rows:
            raise NotFound(f"no workflow named {name!r}")
        return [self._workflow_record(r) for r in rows]

    def set_paused(self, name: str, paused: bool, *, now: float) -> None:
        with self._write(now) as adv:
            adv.tx.execute(
                "INSERT INTO workflow_flags (name, paused, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,"
                " updated_at = excluded.updated_at",
                (name, int(paused), now),
            )
            adv.event(
                None,
                None,
                "workflow.paused" if paused else "workflow.unpaused",
                data={"workflow": name},
            )

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
        with self._write(now) as adv:
            run_id = lifecycle.create_run(
                adv,
                spec,
                params,
                run_id=new_run_id(now),
                trigger=trigger,
                priority=priority,
                idempotency_key=idempotency_key,
                parent_task_run_id=parent_task_run_id,
            )
        return self.get_run(run_id)

    def cancel_run(self, run_id: str, *, now: float, reason: str = "canceled by user") -> bool:
        full = self.get_run(run_id).id
        with self._write(now) as adv:
            return bool(lifecycle.cancel_run(adv, full, reason))

    def retry_run(self, run_id: str, *, now: float) -> bool:
        full = self.get_run(run_id).id
        with self._write(now) as adv:
            return lifecycle.retry_run(adv, full)

    def mark_task(self, run_id: str, task: str, *, succeeded: bool, now: float) -> None:
        full = self.get_run(run_id).id
        with self._write(now) as adv:
            marking.mark_task(adv, full, task, succeeded)

    def rerun_from(self, run_id: str, task: str, *, now: float) -> str:
        full = self.get_run(run_id).id
        with self._write(now) as adv:
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

    def timeout_runs(self, *, now: float) -> list[str]:
        due = self._read(
            "SELECT id FROM runs WHERE deadline IS NOT NULL AND deadline <= ?"
            " AND state IN ('queued', 'running', 'compensating')",
            (now,),
        )
        done: list[str] = []
        for row in due:
            with self._write(now) as adv:
                if lifecycle.cancel_run(adv, row["id"], "run timed out", as_failure=True):
                    done.append(row["id"])
        return done

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows and run_id and len(run_id) < 20:
            rows = self._read(
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
        rows = self._read("SELECT max(id) AS m FROM events")
        return int(rows[0]["m"] or 0)

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
        with self._write(now) as adv:
            return queries.claim(adv, worker_id, queues, limit, now + lease_seconds)

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
        with self._write(now) as adv:
            marks = ",".join("?" * len(leases))
            pairs = ",".join("(?, ?)" for _ in leases)
            # Fenced by (owner, epoch): a stale epoch must not extend a newer lease.
            held = {
                (r["id"], r["lease_epoch"])
                for r in adv.tx.execute(
                    f"UPDATE task_runs SET lease_expires_at = ? WHERE lease_owner = ?"
                    f" AND state = 'running' AND id IN ({marks})"
                    f" AND (id, lease_epoch) IN (VALUES {pairs}) RETURNING id, lease_epoch",
                    (
                        now + lease_seconds,
                        worker_id,
                        *(tr for tr, _ in leases),
                        *(v for lease in leases for v in lease),
                    ),
                ).fetchall()
            }
        return [tr for tr, epoch in leases if (tr, epoch) not in held]

    def finish(self, outcomes: Sequence[Outcome], *, now: float) -> FinishResult:
        applied: list[int] = []
        superseded: list[int] = []
        with self._write(now) as adv:
            for outcome in outcomes:
                if lifecycle.apply_outcome(adv, outcome):
                    applied.append(outcome.task_run_id)
                else:
                    superseded.append(outcome.task_run_id)
            ready = adv.newly_ready
        if applied:
            self._notify_local()  # a finish may free a concurrency slot that claims wait on
        return FinishResult(applied=tuple(applied), superseded=tuple(superseded), newly_ready=ready)

    def start_child_run(
        self, claim: Claim, spec: WorkflowSpec, params: dict[str, Any], *, now: float
    ) -> str | None:
        with self._write(now) as adv:
            row = adv.task_row(claim.task_run_id)
            if row["state"] != "running" or row["lease_epoch"] != claim.epoch:
                return None
            adv.cas_task(row, TaskEvent.WAIT, lease_owner=None, lease_expires_at=None)
            adv.tx.execute(
                "UPDATE attempts SET finished_at = ?, outcome = 'waiting' WHERE task_run_id = ?"
                " AND epoch = ?",
                (now, claim.task_run_id, claim.epoch),
            )
            parent = adv.run_row(claim.run_id)
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

    def reap_expired(self, *, now: float) -> int:
        if not self._read(
            "SELECT 1 FROM task_runs WHERE state = 'running' AND lease_expires_at < ? LIMIT 1",
            (now,),
        ):
            return 0
        with self._write(now) as adv:
            expired = adv.tx.execute(
                "SELECT id FROM task_runs WHERE state = 'running' AND lease_expires_at < ?",
                (now,),
            ).fetchall()
            for row in expired:
                lifecycle.apply_lost(adv, adv.task_row(row["id"]))
            return len(expired)

    def next_ready_at(self, queues: Sequence[str]) -> float | None:
        marks = ",".join("?" * len(queues))
        rows = self._read(
            f"SELECT min(ready_at) AS t FROM task_runs WHERE state IN ('queued', 'retry_wait')"
            f" AND queue IN ({marks})"
            # held back by a full concurrency limit: not claimable, so not a reason to wake
            f" AND (conc_key IS NULL OR conc_limit > (SELECT count(*) FROM task_runs r"
            f" WHERE r.state = 'running' AND r.conc_key = task_runs.conc_key))",
            tuple(queues),
        )
        value = rows[0]["t"] if rows else None
        return None if value is None else float(value)

    def register_worker(self, worker: WorkerRecord) -> None:
        with self._write(worker.started_at) as adv:
            adv.tx.execute(
                "INSERT INTO workers (id, host, pid, queues, started_at, heartbeat_at, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " heartbeat_at = excluded.heartbeat_at, state = excluded.state",
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
        with self._write(now) as adv:
            adv.tx.execute(
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
        rows = self._read("SELECT * FROM workers ORDER BY started_at")
        return [queries.worker_record(r) for r in rows]

    def expire_worker(self, worker_id: str, *, now: float) -> int:
        with self._write(now) as adv:
            cur = adv.tx.execute(
                "UPDATE task_runs SET lease_expires_at = ? WHERE lease_owner = ?"
                " AND state = 'running'",
                (now - 1.0, worker_id),
            )
            adv.tx.execute("UPDATE workers SET state = 'dead' WHERE id = ?", (worker_id,))
            return int(cur.rowcount)

    # ------------------------------------------------------------------ logs

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        with self._write(lines[-1].at) as adv:
            adv.tx.executemany(
                "INSERT INTO logs (run_id, task_run_id, attempt, at, stream, line)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(x.run_id, x.task_run_id, x.attempt, x.at, x.stream, x.line) for x in lines],
            )
            adv.wrote_events = True  # log followers wait on the same history signal

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


def _statements(script: str) -> list[str]:
    """Split a migration file into statements (no statement in ours contains ';' in text)."""
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]

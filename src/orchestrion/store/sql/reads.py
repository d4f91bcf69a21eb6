"""`SqlReads`: the `ReadStore` of both dialects, over a `Database`'s `read`.

The web UI's page reads are batched: each answers one page section in one statement (or a
few fixed-size chunks), so a page's query count does not grow with the number of workflows
or runs it lists. `postgres.reads.PostgresReads` reads the history up to its feed's horizon.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from orchestrion.states import RunState
from orchestrion.store.records import (
    AttemptRecord,
    EventRecord,
    LogRecord,
    QueueLimit,
    RunFilter,
    RunMark,
    RunRecord,
    TaskRunRecord,
    WorkerRecord,
)
from orchestrion.store.sql import queries
from orchestrion.store.sql.advance import loads
from orchestrion.store.sql.database import Database

__all__ = ["SqlReads", "run_id_floor"]

_MARK_COLS = "id, workflow, state, created_at, finished_at"
#: Workflows per UNION ALL statement: SQLite allows at most 500 compound terms.
_CHUNK = 200


def run_id_floor(since: float) -> str:
    """The smallest run id created at or after `since` (ids start with creation millis)."""
    return f"{max(0, int(since * 1000)):012x}"


class SqlReads:
    """See `orchestrion.store.reads.ReadStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ------------------------------------------------------------------ runs and their history

    def get_run(self, run_id: str) -> RunRecord:
        return queries.get_run(self._db.read, run_id)

    def list_runs(self, filt: RunFilter) -> list[RunRecord]:
        sql, params = queries.list_runs_sql(filt)
        return [queries.run_record(r) for r in self._db.read(sql, params)]

    def list_task_runs(self, run_id: str) -> list[TaskRunRecord]:
        rows = self._db.read("SELECT * FROM task_runs WHERE run_id = ? ORDER BY id", (run_id,))
        return [queries.task_run_record(r) for r in rows]

    def list_attempts(self, run_id: str) -> list[AttemptRecord]:
        rows = self._db.read("SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))
        return [queries.attempt_record(r) for r in rows]

    def list_events(
        self, run_id: str | None = None, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        if run_id is None:
            rows = self._db.read(
                "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            )
        else:
            rows = self._db.read(
                "SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
                (run_id, after_id, limit),
            )
        return [queries.event_record(r) for r in rows]

    def last_event_id(self) -> int:
        return int(self._db.read("SELECT max(id) AS m FROM events")[0]["m"] or 0)

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
        return [queries.log_record(r) for r in self._db.read(sql, params)]

    # ------------------------------------------------------------------ workers and queues

    def running_by_worker(self) -> dict[str, list[TaskRunRecord]]:
        rows = self._db.read(
            "SELECT * FROM task_runs WHERE state = 'running' AND lease_owner IS NOT NULL"
            " ORDER BY id"
        )
        out: dict[str, list[TaskRunRecord]] = {}
        for row in rows:
            out.setdefault(row["lease_owner"], []).append(queries.task_run_record(row))
        return out

    def list_workers(self) -> list[WorkerRecord]:
        rows = self._db.read(f"SELECT * FROM workers ORDER BY {self._db.worker_order}")
        return [queries.worker_record(r) for r in rows]

    def queue_limits(self, *, now: float) -> list[QueueLimit]:
        rows = self._db.read(
            "SELECT ql.queue, ql.max_running, ql.updated_at, (SELECT count(*) FROM task_runs r"
            " WHERE r.state = 'running' AND r.queue = ql.queue AND r.lease_expires_at > ?)"
            " AS running FROM queue_limits ql ORDER BY ql.queue",
            (now,),
        )
        return [
            QueueLimit(
                queue=r["queue"],
                max_running=int(r["max_running"]),
                running=int(r["running"]),
                updated_at=float(r["updated_at"]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ web UI pages (batched)

    def last_runs(self, workflows: Sequence[str], *, per: int) -> dict[str, list[RunMark]]:
        names = sorted(set(workflows))
        out: dict[str, list[RunMark]] = {name: [] for name in names}
        per = max(1, min(per, 100))
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            # One LIMITed subquery per workflow (each an index range on runs_workflow_state)
            # rather than a window over the whole runs table, whose cost grows with history.
            sql = " UNION ALL ".join(
                f"SELECT * FROM (SELECT {_MARK_COLS} FROM runs WHERE workflow = ?"
                f" ORDER BY id DESC LIMIT {per}) AS w{i}"
                for i in range(len(chunk))
            )
            for row in self._db.read(sql, chunk):
                out[row["workflow"]].append(
                    RunMark(
                        id=row["id"],
                        workflow=row["workflow"],
                        state=RunState(row["state"]),
                        created_at=row["created_at"],
                        finished_at=row["finished_at"],
                    )
                )
        for runs in out.values():
            runs.sort(key=lambda r: r.id, reverse=True)
        return out

    def run_state_counts(
        self, *, since: float, workflows: Sequence[str] | None = None
    ) -> dict[str, int]:
        sql, params = "SELECT state, count(*) AS n FROM runs WHERE id >= ?", [run_id_floor(since)]
        if workflows is not None:
            if not workflows:
                return {}
            sql += f" AND workflow IN ({', '.join('?' * len(workflows))})"
            params += list(workflows)
        rows = self._db.read(sql + " GROUP BY state", params)
        return {str(r["state"]): int(r["n"]) for r in rows}

    def task_items(self, run_id: str, task_name: str, *, limit: int) -> dict[int, Any]:
        rows = self._db.read(
            "SELECT map_index, item FROM task_runs WHERE run_id = ? AND task_name = ?"
            " AND kind = 'item' ORDER BY map_index LIMIT ?",
            (run_id, task_name, limit),
        )
        return {int(r["map_index"]): loads(r["item"]) for r in rows}

    def task_results(self, run_id: str, names: Iterable[str]) -> dict[str, Any]:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._db.read(
            f"SELECT task_name, state, result FROM task_runs WHERE run_id = ? AND map_index = -1"
            f" AND kind IN ('task', 'group') AND task_name IN ({marks})",
            (run_id, *wanted),
        )
        return {r["task_name"]: loads(r["result"]) for r in rows}

    def find_events(
        self,
        *,
        kind: str = "",
        run_id: str = "",
        workflow: str = "",
        before: int = 0,
        limit: int = 200,
    ) -> list[EventRecord]:
        where: list[str] = []
        params: list[Any] = []
        if kind:  # "run." matches every run event; "task.fail" just that one
            where.append("substr(kind, 1, ?) = ?")
            params += [len(kind), kind]
        if run_id:
            where.append("run_id = ?")
            params.append(run_id)
        if workflow:
            where.append("run_id IN (SELECT id FROM runs WHERE workflow = ?)")
            params.append(workflow)
        if before > 0:
            where.append("id < ?")
            params.append(before)
        sql = "SELECT * FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(max(1, min(limit, 1000)))
        return [queries.event_record(r) for r in self._db.read(sql, params)]

    def task_runs_named(self, run_id: str, task_name: str) -> list[TaskRunRecord]:
        rows = self._db.read(
            "SELECT * FROM task_runs WHERE run_id = ? AND task_name = ? ORDER BY map_index, id",
            (run_id, task_name),
        )
        return [queries.task_run_record(r) for r in rows]

    def attempts_of(self, task_run_ids: Sequence[int]) -> list[AttemptRecord]:
        ids = sorted(set(task_run_ids))
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._db.read(
            f"SELECT * FROM attempts WHERE task_run_id IN ({marks}) ORDER BY id", ids
        )
        return [queries.attempt_record(r) for r in rows]

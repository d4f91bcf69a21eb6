"""`SqlReads`: the `ReadStore` of both dialects, over a `Database`'s `read`.

The web UI's page reads are batched: each answers one page section in one statement (or a
few fixed-size chunks), so a page's query count does not grow with the number of workflows
or runs it lists. `postgres.reads.PostgresReads` reads the history up to its feed's horizon.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from orchestrion.errors import NotFound
from orchestrion.store.metric_records import (
    DURATION_BUCKETS,
    ActiveCount,
    EndedCount,
    MetricsSnapshot,
    QueueDepth,
    ScheduleLag,
)
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
from orchestrion.store.sql import rows
from orchestrion.store.sql.advance import loads
from orchestrion.store.sql.database import Database
from orchestrion.store.sql.named import marks, where
from orchestrion.store.sql.queries import Q

__all__ = ["BUCKET", "Read", "SqlReads", "get_run", "run_id_floor", "runs_page"]


def bucket_case(bounds: Sequence[float]) -> str:
    """SQL for the index of the histogram bucket a ``seconds`` column falls in."""
    whens = " ".join(f"WHEN seconds <= {bound!r} THEN {i}" for i, bound in enumerate(bounds))
    return f"CASE {whens} ELSE {len(bounds)} END"


#: The duration bucket of a metric delta's ``seconds`` (`metric_ended`, `metric_fold`).
BUCKET: Final = bucket_case(DURATION_BUCKETS)
METRIC_ENDED: Final = Q.metric_ended.fill(bucket=BUCKET)

#: Workflows per UNION ALL statement: SQLite allows at most 500 compound terms.
_CHUNK = 200

#: A dialect's `Database.read` (or a transaction's reads): rows of one statement.
Read = Callable[[str, Sequence[Any]], list[Any]]


def run_id_floor(since: float) -> str:
    """The smallest run id created at or after `since` (ids start with creation millis)."""
    return f"{max(0, int(since * 1000)):012x}"


def get_run(read: Read, run_id: str) -> RunRecord:
    """One run or `NotFound` (a unique id prefix is accepted)."""
    found = read(Q.run, (run_id,))
    if not found and run_id and len(run_id) < 20:
        # ids sort by code point (COLLATE "C"): a prefix is a range
        found = read(Q.runs_by_prefix, (run_id, run_id + "\uffff"))
        if len(found) > 1:
            raise NotFound(f"run id prefix {run_id!r} is ambiguous; give more characters")
    if not found:
        raise NotFound(f"no run with id {run_id!r}")
    return rows.RUN(found[0])


def runs_page(filt: RunFilter) -> tuple[str, list[Any]]:
    """`Q.runs_page` with the conditions `filt` sets, and its parameters."""
    conditions: list[str] = []
    params: list[Any] = []
    if filt.workflow is not None:
        conditions.append(Q.runs_where_workflow)
        params.append(filt.workflow)
    if filt.state is not None:
        conditions.append(Q.runs_where_state)
        params.append(filt.state.value)
    if filt.before is not None:
        conditions.append(Q.runs_where_before)
        params.append(filt.before)
    if filt.workflows is not None:
        names = sorted(filt.workflows)
        conditions.append(
            Q.runs_where_workflows.fill(names=marks(len(names))) if names else Q.nothing
        )
        params.extend(names)
    params.append(max(1, min(filt.limit, 1000)))
    return Q.runs_page.fill(where=where(*conditions)), params


class SqlReads:
    """See `orchestrion.store.reads.ReadStore` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ------------------------------------------------------------------ runs and their history

    def get_run(self, run_id: str) -> RunRecord:
        return get_run(self._db.read, run_id)

    def list_runs(self, filt: RunFilter) -> list[RunRecord]:
        sql, params = runs_page(filt)
        return [rows.RUN(r) for r in self._db.read(sql, params)]

    def list_task_runs(self, run_id: str) -> list[TaskRunRecord]:
        read = rows.TASK_RUN
        return [read(r) for r in self._db.read(Q.task_runs_of_run, (run_id,))]

    def list_attempts(self, run_id: str) -> list[AttemptRecord]:
        return [rows.ATTEMPT(r) for r in self._db.read(Q.attempts_of_run, (run_id,))]

    def list_events(
        self, run_id: str | None = None, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        if run_id is None:
            found = self._db.read(Q.events_after, (after_id, limit))
        else:
            found = self._db.read(Q.run_events_after, (run_id, after_id, limit))
        read = rows.EVENT
        return [read(r) for r in found]

    def last_event_id(self) -> int:
        return int(self._db.read(Q.last_event_id)[0]["m"] or 0)

    def get_logs(
        self, run_id: str, *, task_name: str | None = None, after_id: int = 0, limit: int = 10_000
    ) -> list[LogRecord]:
        of_task = "" if task_name is None else Q.logs_of_task
        params = [run_id, after_id, *([] if task_name is None else [task_name]), limit]
        return [_log(r) for r in self._db.read(Q.logs_page.fill(of_task=of_task), params)]

    # ------------------------------------------------------------------ workers and queues

    def running_by_worker(self) -> dict[str, list[TaskRunRecord]]:
        out: dict[str, list[TaskRunRecord]] = {}
        for row in self._db.read(Q.running_task_runs):
            out.setdefault(row["lease_owner"], []).append(rows.TASK_RUN(row))
        return out

    def list_workers(self) -> list[WorkerRecord]:
        return [rows.WORKER(r) for r in self._db.read(self._db.q.list_workers)]

    def queue_limits(self, *, now: float) -> list[QueueLimit]:
        return [rows.QUEUE_LIMIT(r) for r in self._db.read(Q.queue_limits, (now,))]

    def metrics(self, *, now: float, alive_since: float) -> MetricsSnapshot:
        read = self._db.read
        started = time.perf_counter()
        read(Q.metric_ping)
        db_seconds = time.perf_counter() - started
        return MetricsSnapshot(
            taken_at=now,
            ended=tuple(map(rows.reader(EndedCount), read(METRIC_ENDED))),
            active_runs=tuple(map(rows.reader(ActiveCount), read(Q.metric_active_runs))),
            queues=tuple(map(rows.reader(QueueDepth), read(Q.metric_queues, (now,)))),
            running={r["worker"]: int(r["n"]) for r in read(Q.metric_running)},
            workers=tuple(rows.WORKER(r) for r in read(Q.metric_workers, (alive_since,))),
            schedules=tuple(map(rows.reader(ScheduleLag), read(Q.metric_schedules))),
            db_seconds=db_seconds,
        )

    # ------------------------------------------------------------------ web UI pages (batched)

    def last_runs(self, workflows: Sequence[str], *, per: int) -> dict[str, list[RunMark]]:
        names = sorted(set(workflows))
        out: dict[str, list[RunMark]] = {name: [] for name in names}
        per = max(1, min(per, 100))
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            # One LIMITed subquery per workflow (each an index range on runs_workflow_state)
            # rather than a window over the whole runs table, whose cost grows with history.
            sql = " UNION ALL ".join([Q.last_runs_of_workflow.fill(per=str(per))] * len(chunk))
            for row in self._db.read(sql, chunk):
                out[row["workflow"]].append(rows.RUN_MARK(row))
        for runs in out.values():
            runs.sort(key=lambda r: r.id, reverse=True)
        return out

    def run_state_counts(
        self, *, since: float, workflows: Sequence[str] | None = None
    ) -> dict[str, int]:
        of_workflows, params = "", [run_id_floor(since)]
        if workflows is not None:
            if not workflows:
                return {}
            of_workflows = Q.run_state_counts_of.fill(names=marks(len(workflows)))
            params += list(workflows)
        found = self._db.read(Q.run_state_counts.fill(of_workflows=of_workflows), params)
        return {str(r["state"]): int(r["n"]) for r in found}

    def task_items(self, run_id: str, task_name: str, *, limit: int) -> dict[int, Any]:
        found = self._db.read(Q.task_items, (run_id, task_name, limit))
        return {int(r["map_index"]): loads(r["item"]) for r in found}

    def task_results(self, run_id: str, names: Iterable[str]) -> dict[str, Any]:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        found = self._db.read(Q.task_results.fill(names=marks(len(wanted))), (run_id, *wanted))
        return {r["task_name"]: loads(r["result"]) for r in found}

    def find_events(
        self,
        *,
        kind: str = "",
        run_id: str = "",
        workflow: str = "",
        before: int = 0,
        limit: int = 200,
    ) -> list[EventRecord]:
        conditions: list[str] = []
        params: list[Any] = []
        if kind:  # "run." matches every run event; "task.fail" just that one
            conditions.append(Q.events_where_kind)
            params += [len(kind), kind]
        if run_id:
            conditions.append(Q.events_where_run)
            params.append(run_id)
        if workflow:
            conditions.append(Q.events_where_workflow)
            params.append(workflow)
        if before > 0:
            conditions.append(Q.events_where_before)
            params.append(before)
        params.append(max(1, min(limit, 1000)))
        sql = Q.events_page.fill(where=where(*conditions))
        return [rows.EVENT(r) for r in self._db.read(sql, params)]

    def task_runs_named(self, run_id: str, task_name: str) -> list[TaskRunRecord]:
        found = self._db.read(Q.task_runs_named, (run_id, task_name))
        return [rows.TASK_RUN(r) for r in found]

    def attempts_of(self, task_run_ids: Sequence[int]) -> list[AttemptRecord]:
        ids = sorted(set(task_run_ids))
        if not ids:
            return []
        found = self._db.read(Q.attempts_of_task_runs.fill(ids=marks(len(ids))), ids)
        return [rows.ATTEMPT(r) for r in found]


def _log(row: Any) -> LogRecord:
    """A log line, named by its task (and item: ``name[3]``)."""
    name = row["task_name"]
    if row["map_index"] >= 0:
        name = f"{name}[{row['map_index']}]"
    return rows.LOG(row, task_name=name)

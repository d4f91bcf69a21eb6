"""Portable SQL shared by the dialects: the claim, run listing, and row -> record mapping."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import RunState, TaskEvent, TaskState
from orchestrion.store.advance import Advance, loads
from orchestrion.store.base import (
    AttemptRecord,
    Claim,
    EventRecord,
    LogRecord,
    RunFilter,
    RunRecord,
    TaskRunRecord,
    WorkerRecord,
    WorkflowRecord,
)
from orchestrion.store.routing import route_filter
from orchestrion.store.slots import SLOT_COLS, SLOT_FILTER, within_limits

__all__ = [
    "CLAIM_COLS",
    "TaskEvent",
    "attempt_record",
    "build_claims",
    "claim",
    "event_record",
    "list_runs_sql",
    "log_record",
    "run_record",
    "task_run_record",
    "within_limits",
    "worker_record",
    "workflow_record",
]

CLAIM_COLS = (
    "id, run_id, task_name, map_index, group_id, kind, state, waiting, up_ok, up_failed,"
    " up_skipped, attempts, failures, lost, lease_epoch, item, priority, queue, conc_key,"
    f" conc_limit, {SLOT_COLS}"
)


def claim(
    adv: Advance,
    worker_id: str,
    queues: Sequence[str],
    limit: int,
    lease_until: float,
    labels: Mapping[str, str] | None = None,
) -> list[Claim]:
    """Move up to `limit` ready task runs to running under `worker_id`'s lease.

    Runs inside the caller's write transaction, so the concurrency counts it reads cannot
    change before its updates land.
    """
    tx, now = adv.tx, adv.now
    marks = ",".join("?" * len(queues))
    routed, route_params = route_filter(labels)
    rows = tx.execute(
        f"SELECT {CLAIM_COLS} FROM task_runs WHERE state IN ('queued', 'retry_wait')"
        f" AND queue IN ({marks}) AND ready_at <= ?{routed}"
        # Task runs whose concurrency limit is full are passed over here, not after the
        # LIMIT, so that many of them cannot starve other ready work.
        f" AND (conc_key IS NULL OR conc_limit > (SELECT count(*) FROM task_runs r"
        f" WHERE r.state = 'running' AND r.conc_key = task_runs.conc_key)){SLOT_FILTER}"
        f" ORDER BY priority DESC, ready_at, id LIMIT ?",
        (*queues, now, *route_params, now, now, limit * 4),
    ).fetchall()
    chosen = within_limits(adv, rows, limit)
    attempts: list[tuple[Any, ...]] = []
    for row in chosen:
        epoch, number = row["lease_epoch"] + 1, row["attempts"] + 1
        fields: dict[str, Any] = {
            "lease_owner": worker_id,
            "lease_epoch": epoch,
            "lease_expires_at": lease_until,
            "attempts": number,
        }
        if number == 1:
            fields["started_at"] = now
        adv.cas_task(row, TaskEvent.CLAIM, {"worker": worker_id, "attempt": number}, **fields)
        attempts.append((row["id"], row["run_id"], number, epoch, worker_id, now))
    if attempts:
        tx.executemany(
            "INSERT INTO attempts (task_run_id, run_id, number, epoch, worker, started_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            attempts,
        )
    return build_claims(adv, chosen)


def build_claims(adv: Advance, rows: Sequence[Any]) -> list[Claim]:
    """The `Claim` of each just-claimed row (as read before the claim's update)."""
    out: list[Claim] = []
    results: dict[str, dict[str, Any]] = {}
    for row in rows:
        spec, run = adv.spec_for_run(row["run_id"])
        name = str(row["task_name"])
        task = spec.task(name.removeprefix("undo:"))
        run_results = results.setdefault(row["run_id"], {})
        wanted = set(task.depends_on)
        if row["kind"] == "undo":
            wanted.add(task.name)
        missing = wanted - run_results.keys()
        if missing:
            run_results.update(adv.results_of(row["run_id"], missing))
        out.append(
            Claim(
                task_run_id=row["id"],
                run_id=row["run_id"],
                workflow=run["workflow"],
                version=run["version"],  # spec.version hashes the whole spec each time
                task_name=name,
                kind=row["kind"],
                map_index=row["map_index"],
                attempt=row["attempts"] + 1,
                epoch=row["lease_epoch"] + 1,
                params=loads(run["params"]),
                # An undo step also sees the result of the task it undoes, by that task's name.
                upstream={n: run_results.get(n) for n in sorted(wanted)},
                item=loads(row["item"]),
                undo_of_result=run_results.get(task.name) if row["kind"] == "undo" else None,
            )
        )
    return out


def list_runs_sql(filt: RunFilter) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if filt.workflow is not None:
        where.append("workflow = ?")
        params.append(filt.workflow)
    if filt.state is not None:
        where.append("state = ?")
        params.append(filt.state.value)
    if filt.before is not None:
        where.append("id < ?")
        params.append(filt.before)
    if filt.workflows is not None:
        names = sorted(filt.workflows)
        where.append(f"workflow IN ({', '.join('?' * len(names))})" if names else "1 = 0")
        params.extend(names)
    sql = "SELECT * FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(max(1, min(filt.limit, 1000)))
    return sql, params


def workflow_record(row: Any) -> WorkflowRecord:
    return WorkflowRecord(
        name=row["name"],
        version=row["version"],
        spec=WorkflowSpec.from_json(row["spec"]),
        source=row["source"],
        created_at=row["created_at"],
    )


def run_record(row: Any) -> RunRecord:
    return RunRecord(
        id=row["id"],
        workflow=row["workflow"],
        version=row["version"],
        state=RunState(row["state"]),
        params=loads(row["params"]),
        priority=row["priority"],
        trigger=row["trigger"],
        idempotency_key=row["idempotency_key"],
        parent_task_run_id=row["parent_task_run_id"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        deadline=row["deadline"],
        result=loads(row["result"]),
        error=row["error"],
    )


def task_run_record(row: Any) -> TaskRunRecord:
    return TaskRunRecord(
        id=row["id"],
        run_id=row["run_id"],
        task_name=row["task_name"],
        map_index=row["map_index"],
        kind=row["kind"],
        state=TaskState(row["state"]),
        queue=row["queue"],
        priority=row["priority"],
        attempts=row["attempts"],
        ready_at=row["ready_at"],
        result=loads(row["result"]),
        error=row["error"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        lease_owner=row["lease_owner"],
        lease_epoch=row["lease_epoch"],
    )


def attempt_record(row: Any) -> AttemptRecord:
    return AttemptRecord(
        id=row["id"],
        task_run_id=row["task_run_id"],
        run_id=row["run_id"],
        number=row["number"],
        epoch=row["epoch"],
        worker=row["worker"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        outcome=row["outcome"],
        error=row["error"],
        error_type=row["error_type"],
        traceback=row["traceback"],
    )


def event_record(row: Any) -> EventRecord:
    return EventRecord(
        id=row["id"],
        run_id=row["run_id"],
        task_run_id=row["task_run_id"],
        at=row["at"],
        kind=row["kind"],
        from_state=row["from_state"],
        to_state=row["to_state"],
        data=loads(row["data"]),
    )


def log_record(row: Any) -> LogRecord:
    name = row["task_name"]
    if row["map_index"] >= 0:
        name = f"{name}[{row['map_index']}]"
    return LogRecord(
        id=row["id"],
        run_id=row["run_id"],
        task_run_id=row["task_run_id"],
        task_name=name,
        attempt=row["attempt"],
        at=row["at"],
        stream=row["stream"],
        line=row["line"],
    )


def worker_record(row: Any) -> WorkerRecord:
    return WorkerRecord(
        id=row["id"],
        host=row["host"],
        pid=row["pid"],
        queues=tuple(json.loads(row["queues"])),
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        state=row["state"],
        labels=json.loads(row["labels"] or "{}"),
    )

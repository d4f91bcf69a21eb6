"""Portable SQL shared by the dialects: the claim, run listing, and row -> record mapping."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from orchestrion.errors import NotFound
from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import RunState, TaskEvent, TaskState
from orchestrion.store.records import (
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
from orchestrion.store.sql.advance import Advance, loads
from orchestrion.store.sql.routing import route_filter
from orchestrion.store.sql.slots import SLOT_COLS, SLOT_FILTER, within_limits

__all__ = [
    "CLAIM_COLS",
    "ClaimPart",
    "Claimed",
    "TaskEvent",
    "attempt_record",
    "build_claims",
    "claim",
    "claim_parts",
    "event_record",
    "get_run",
    "list_runs_sql",
    "log_record",
    "make_claims",
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


class ClaimPart(NamedTuple):
    """What a claim needs of its transaction (row, run, upstream names), gathered inside
    it; the upstream results may come back later (`Claimed`)."""

    row: Any
    run: Any
    task_name: str
    wanted: tuple[str, ...]


class Claimed(NamedTuple):
    """A claim's outcome: how many task runs it took, and a way to build their `Claim`s,
    called once the transaction is over (on PostgreSQL the upstream results arrive with
    the COMMIT, in the same round trip)."""

    taken: int
    build: Callable[[], list[Claim]]


def claim_parts(adv: Advance, rows: Sequence[Any]) -> list[ClaimPart]:
    """Each just-claimed row (as read before the claim's update) with what its claim needs."""
    parts: list[ClaimPart] = []
    for row in rows:
        spec, run = adv.spec_for_run(row["run_id"])
        task = spec.task(str(row["task_name"]).removeprefix("undo:"))
        wanted = set(task.depends_on)
        if row["kind"] == "undo":
            wanted.add(task.name)  # an undo step also sees the result of what it undoes
        parts.append(ClaimPart(row, run, task.name, tuple(sorted(wanted))))
    return parts


def make_claims(
    parts: Sequence[ClaimPart], results: Mapping[str, Mapping[str, Any]]
) -> list[Claim]:
    """The `Claim`s, given the upstream results (run id -> task name -> result)."""
    out: list[Claim] = []
    for part in parts:
        row, run = part.row, part.run
        found = results.get(row["run_id"], {})
        out.append(
            Claim(
                task_run_id=row["id"],
                run_id=row["run_id"],
                workflow=run["workflow"],
                version=run["version"],  # spec.version hashes the whole spec each time
                task_name=str(row["task_name"]),
                kind=row["kind"],
                map_index=row["map_index"],
                attempt=row["attempts"] + 1,
                epoch=row["lease_epoch"] + 1,
                params=loads(run["params"]),
                upstream={n: found.get(n) for n in part.wanted},
                item=loads(row["item"]),
                undo_of_result=found.get(part.task_name) if row["kind"] == "undo" else None,
            )
        )
    return out


def build_claims(adv: Advance, rows: Sequence[Any]) -> list[Claim]:
    """The `Claim` of each just-claimed row, its upstream results read now."""
    parts = claim_parts(adv, rows)
    wanted: dict[str, set[str]] = {}
    for part in parts:
        wanted.setdefault(part.row["run_id"], set()).update(part.wanted)
    return make_claims(parts, {run: adv.results_of(run, names) for run, names in wanted.items()})


Read = Callable[[str, Sequence[Any]], list[Any]]


def get_run(read: Read, run_id: str) -> RunRecord:
    """One run or `NotFound` (a unique id prefix is accepted)."""
    rows = read("SELECT * FROM runs WHERE id = ?", (run_id,))
    if not rows and run_id and len(run_id) < 20:
        rows = read(  # ids sort by code point (COLLATE "C"): a prefix is a range
            "SELECT * FROM runs WHERE id >= ? AND id < ? LIMIT 2", (run_id, run_id + "\uffff")
        )
        if len(rows) > 1:
            raise NotFound(f"run id prefix {run_id!r} is ambiguous; give more characters")
    if not rows:
        raise NotFound(f"no run with id {run_id!r}")
    return run_record(rows[0])


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

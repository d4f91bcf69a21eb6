"""Run and attempt lifecycle verbs, shared by every dialect; each runs inside one transaction.

These build on `Advance`: they read the rows a decision needs, call the pure planner, and
apply the result through guarded compare-and-sets.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from orchestrion import planner
from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import RunEvent, RunState, TaskEvent, TaskState
from orchestrion.store.record import replace
from orchestrion.store.records import Outcome
from orchestrion.store.sql import rerun
from orchestrion.store.sql.advance import MAX_RESULT_BYTES, Advance, dumps
from orchestrion.store.sql.queries import Q
from orchestrion.store.sql.routing import requirement_key
from orchestrion.store.sql.slot_keys import conc_key

__all__ = [
    "apply_lost",
    "apply_outcome",
    "cancel_run",
    "create_run",
    "new_run_id",
    "recount",
    "retry_run",
]


def new_run_id(now: float) -> str:
    """Sortable by creation time (milliseconds), then random: 20 hex characters."""
    return f"{int(now * 1000):012x}{secrets.token_hex(4)}"


def create_run(
    adv: Advance,
    spec: WorkflowSpec,
    params: dict[str, Any],
    *,
    run_id: str,
    trigger: str,
    priority: int,
    idempotency_key: str | None,
    parent_task_run_id: int | None,
    carry: Mapping[str, str | None] | None = None,
) -> str:
    """Insert the run and its task runs; start it unless the workflow is at its limit.

    `carry` (task name -> result JSON) marks tasks as already succeeded with those results,
    as a rerun does for the tasks upstream of where it restarts; such a run starts at once
    (a rerun is an explicit request, not subject to max active runs)."""
    tx, now = adv.tx, adv.now
    if idempotency_key is not None:
        existing = tx.execute(Q.run_by_idempotency_key, (idempotency_key,)).fetchone()
        if existing is not None:
            return str(existing["id"])
    state = RunState.RUNNING
    if spec.max_active_runs is not None and not carry:
        adv.lock_admission(spec.name)
        active = tx.execute(Q.active_runs, (spec.name,)).fetchone()["n"]
        if active >= spec.max_active_runs:
            state = RunState.QUEUED
    deadline = None if spec.timeout is None else now + spec.timeout
    # A concurrent transaction may insert the same idempotency key after the check above
    # (only possible where writers run concurrently): then that run is the answer.
    inserted = tx.execute(
        Q.insert_run,
        (
            run_id,
            spec.name,
            spec.version,
            state.value,
            dumps(params),
            priority,
            trigger,
            idempotency_key,
            parent_task_run_id,
            len(spec.tasks),
            now,
            now if state is RunState.RUNNING else None,
            deadline,
        ),
    ).fetchone()
    if inserted is None:
        return str(tx.execute(Q.run_by_idempotency_key, (idempotency_key,)).fetchone()["id"])
    tx.executemany(
        Q.insert_task_runs,
        [
            (
                run_id,
                t.name,
                "group" if t.map_over else "task",
                t.queue,
                priority + t.priority,
                len(t.depends_on),
                conc_key(spec.name, t),
                t.concurrency,
                requirement_key(t.requires),
            )
            for t in spec.tasks
        ],
    )
    adv.event(
        run_id,
        None,
        "run.created",
        None,
        state.value,
        {"workflow": spec.name, "version": spec.version, "trigger": trigger},
    )
    if carry:
        rerun.apply_carry(adv, run_id, spec, carry)
    if state is RunState.RUNNING:
        adv.start_run({"id": run_id, "state": state.value})
    return run_id


def apply_outcome(adv: Advance, outcome: Outcome) -> bool:
    """Record one attempt's outcome; False when it arrived too late (superseded)."""
    if outcome.stored is not None or outcome.artifacts:
        from orchestrion.store.sql.artifacts import record_outputs

        record_outputs(adv.tx, outcome, adv.now)
        outcome = replace(outcome, stored=None, artifacts=())
    row = adv.task_row(outcome.task_run_id)
    if (
        row is None
        or row["state"] != TaskState.RUNNING.value
        or row["lease_epoch"] != outcome.epoch
    ):
        _close_attempt(adv, outcome.task_run_id, outcome.epoch, "superseded", outcome.error)
        adv.event(
            row["run_id"] if row else None,
            outcome.task_run_id,
            "attempt.superseded",
            data={"epoch": outcome.epoch, "status": outcome.status},
        )
        return False
    if outcome.status == "succeeded":
        encoded = dumps(outcome.result)
        if len(encoded.encode()) > MAX_RESULT_BYTES:
            error = (
                f"result is {len(encoded.encode())} bytes, over the"
                f" {MAX_RESULT_BYTES}-byte cap of results kept in the database; keep"
                " ORCHESTRION_RESULTS_THRESHOLD under it so that larger ones go to the"
                " result store"
            )
            return apply_outcome(
                adv,
                Outcome(
                    task_run_id=outcome.task_run_id,
                    epoch=outcome.epoch,
                    status="failed",
                    error=error,
                    error_types=("orchestrion.ResultTooLarge",),
                ),
            )
        _close_attempt(adv, row["id"], outcome.epoch, "succeeded", None)
        adv.cas_task(row, TaskEvent.SUCCEED, result=encoded, error=None, finished_at=adv.now)
    elif outcome.status == "skipped":
        _close_attempt(adv, row["id"], outcome.epoch, "skipped", None)
        adv.cas_task(row, TaskEvent.SKIP, {"reason": "condition false"}, finished_at=adv.now)
    else:
        _close_attempt(
            adv,
            row["id"],
            outcome.epoch,
            "failed",
            outcome.error,
            outcome.error_types[0] if outcome.error_types else None,
            outcome.traceback,
        )
        if _retry_or_fail(adv, row, outcome):
            return True
    adv.on_finished(adv.task_row(row["id"]))
    return True


def _retry_or_fail(adv: Advance, row: Any, outcome: Outcome) -> bool:
    """Retry the task run if its policy allows; True when a retry was scheduled."""
    spec, _ = adv.spec_for_run(row["run_id"])
    name = str(row["task_name"]).removeprefix("undo:")
    policy = spec.task(name).retry
    failures = row["failures"] + 1
    if planner.should_retry(policy, failures, outcome.error_types, timed_out=outcome.timed_out):
        ready_at = planner.retry_ready_at(policy, failures, f"{row['id']}:{failures}", adv.now)
        adv.cas_task(
            row,
            TaskEvent.RETRY,
            {"error": outcome.error, "ready_at": ready_at},
            failures=failures,
            ready_at=ready_at,
            error=outcome.error,
        )
        adv.newly_ready += 1
        return True
    adv.cas_task(
        row,
        TaskEvent.FAIL,
        {"error": outcome.error},
        failures=failures,
        error=outcome.error,
        finished_at=adv.now,
    )
    return False


def apply_lost(adv: Advance, row: Any) -> None:
    """The attempt's lease expired: its worker is gone. Retry it without spending the task's
    retry budget, unless workers keep dying on it."""
    _close_attempt(adv, row["id"], row["lease_epoch"], "lost", "worker lost (lease expired)")
    lost = row["lost"] + 1
    if lost < planner.MAX_LOST_ATTEMPTS:
        adv.cas_task(row, TaskEvent.RETRY, {"error": "worker lost"}, lost=lost, ready_at=adv.now)
        adv.newly_ready += 1
        return
    error = f"worker lost {lost} times while running this task"
    adv.cas_task(row, TaskEvent.FAIL, {"error": error}, lost=lost, error=error, finished_at=adv.now)
    adv.on_finished(adv.task_row(row["id"]))


def _close_attempt(
    adv: Advance,
    task_run_id: int,
    epoch: int,
    outcome: str,
    error: str | None,
    error_type: str | None = None,
    traceback: str | None = None,
) -> None:
    adv.tx.execute(
        Q.close_attempt, (adv.now, outcome, error, error_type, traceback, task_run_id, epoch)
    )


def cancel_run(adv: Advance, run_id: str, reason: str, *, as_failure: bool = False) -> bool:
    """Stop the run: unfinished task runs and child runs are canceled. A timeout ends the
    run as failed (`as_failure`), a user's cancel as canceled."""
    run = adv.run_row(run_id)
    if run is None or RunState(run["state"]).finished:
        return False
    # Locked where the dialect locks: a concurrent claim may move a row to running.
    rows = adv.tx.execute(Q.cancelable_task_runs + adv.for_update(), (run_id,)).fetchall()
    for row in rows:
        adv.cas_task(row, TaskEvent.CANCEL, {"reason": reason}, finished_at=adv.now)
    adv.tx.execute(Q.cancel_attempts, (adv.now, run_id))
    children = adv.tx.execute(Q.child_runs, (run_id,)).fetchall()
    for child in children:
        cancel_run(adv, child["id"], f"parent run {run_id}: {reason}", as_failure=as_failure)
    adv.tx.execute(Q.clear_unfinished, (run_id,))
    queued = run["state"] == RunState.QUEUED.value
    event = RunEvent.FAIL if as_failure and not queued else RunEvent.CANCEL
    if adv.cas_run(run, event, finished_at=adv.now, error=reason):
        adv.after_run_finished(run_id)
    return True


def retry_run(adv: Advance, run_id: str) -> bool:
    """Re-open a failed or canceled run from what failed; succeeded work is kept."""
    run = adv.run_row(run_id)
    if run is None or RunState(run["state"]) not in (RunState.FAILED, RunState.CANCELED):
        return False
    if run["compensated"]:
        return _retry_compensation(adv, run)
    spec = adv.spec_of(run["workflow"], run["version"])
    rows = adv.tx.execute(Q.retry_task_runs, (run_id,)).fetchall()
    deadline = None if spec.timeout is None else adv.now + spec.timeout
    adv.cas_run(run, RunEvent.RETRY, finished_at=None, error=None, deadline=deadline)
    for row in rows:
        _reopen(adv, row)
    recount(adv, run_id, spec)
    adv.start_run({"id": run_id, "state": RunState.RUNNING.value})
    return True


def _retry_compensation(adv: Advance, run: Any) -> bool:
    """Resume a compensated run's compensation: its undo steps that failed (or were
    canceled) run again, one at a time in their order, and the run ends failed again once
    they are done. Succeeded undo steps and the forward tasks stay as they are (the run was
    given up; what is left is to undo it). False when no undo step is left to run."""
    rows = adv.tx.execute(Q.undo_steps_to_retry, (run["id"],)).fetchall()
    if not rows:
        return False
    spec = adv.spec_of(run["workflow"], run["version"])
    deadline = None if spec.timeout is None else adv.now + spec.timeout
    adv.cas_run(run, RunEvent.RETRY_UNDO, finished_at=None, error=None, deadline=deadline)
    for row in rows:
        adv.cas_task(row, TaskEvent.RESET, failures=0, lost=0, finished_at=None, error=None)
    adv.tx.execute(Q.add_unfinished, (len(rows), run["id"]))
    steps = [row["task_name"] for row in rows]
    adv.event(run["id"], None, "run.compensation_retried", data={"steps": steps})
    first = adv.task_row(rows[0]["id"])
    adv.make_ready(first)
    return True


def _reopen(adv: Advance, row: Any) -> bool:
    state, kind = TaskState(row["state"]), row["kind"]
    if state not in (TaskState.FAILED, TaskState.CANCELED, TaskState.UPSTREAM_FAILED):
        return False
    has_items = kind == "group" and adv.tx.execute(Q.has_items, (row["id"],)).fetchone() is not None
    if has_items and state is not TaskState.UPSTREAM_FAILED:
        adv.cas_task(row, TaskEvent.REOPEN, finished_at=None, error=None)
    elif state is TaskState.FAILED and kind != "group" and row["attempts"] > 0:
        # It ran and failed: run it again. (A task that failed before running, because its
        # `when` or `map` expression failed, goes back to pending to be decided afresh.)
        adv.cas_task(
            row,
            TaskEvent.REQUEUE,
            ready_at=adv.now,
            failures=0,
            lost=0,
            finished_at=None,
            error=None,
        )
        adv.newly_ready += 1
    else:
        adv.cas_task(row, TaskEvent.RESET, failures=0, lost=0, finished_at=None, error=None)
    return True


def recount(adv: Advance, run_id: str, spec: WorkflowSpec) -> None:
    """Recompute upstream counters and the run's unfinished count after a retry re-opened
    task runs (rare, so a scan of the run is fine here)."""
    rows = adv.tx.execute(Q.recount_task_runs, (run_id,)).fetchall()
    top = {r["task_name"]: TaskState(r["state"]) for r in rows if r["kind"] in ("task", "group")}
    for task in spec.tasks:
        waiting = ok = failed = skipped = 0
        for dep in task.depends_on:
            dep_state = top[dep]
            if not dep_state.finished:
                waiting += 1
                continue
            bucket = planner.upstream_bucket(dep_state)
            ok, failed, skipped = (
                ok + (bucket == "ok"),
                failed + (bucket == "failed"),
                (skipped + (bucket == "skipped")),
            )
        adv.tx.execute(Q.recount_upstream, (waiting, ok, failed, skipped, run_id, task.name))
    expanded = TaskState.WAITING.value  # a mapped task whose items are not all finished
    for group in (r for r in rows if r["kind"] == "group" and r["state"] == expanded):
        items = [TaskState(r["state"]) for r in rows if r["group_id"] == group["id"]]
        done = [planner.upstream_bucket(s) for s in items if s.finished]
        adv.tx.execute(
            Q.recount_group,
            (
                len(items) - len(done),
                done.count("ok"),
                done.count("failed"),
                done.count("skipped"),
                group["id"],
            ),
        )
    unfinished = sum(1 for r in rows if not TaskState(r["state"]).finished)
    adv.tx.execute(Q.set_unfinished, (unfinished, run_id))

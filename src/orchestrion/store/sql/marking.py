"""A user's override of one task run's outcome: "mark succeeded" or "mark failed".

Marking is recorded as its own event (`task.mark_succeeded` / `task.mark_failed`), never
disguised as an attempt's result. An attempt still running is fenced: its late result is
kept as superseded. Marking a finished task succeeded re-opens what its failure decided:
the downstream tasks it failed or skipped go back to pending and are decided again, and a
finished run resumes.
"""

from __future__ import annotations

from typing import Any

from orchestrion.errors import IllegalTransition, NotFound
from orchestrion.planner import downstream_closure
from orchestrion.states import RunEvent, RunState, TaskEvent, TaskState, task_sources
from orchestrion.store.sql import lifecycle
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.queries import Q

__all__ = ["mark_task"]

_REOPENABLE = (TaskState.UPSTREAM_FAILED, TaskState.CANCELED, TaskState.SKIPPED)


def mark_task(adv: Advance, run_id: str, task: str, succeeded: bool) -> None:
    """Set `task`'s outcome in `run_id` by hand (see the module docstring)."""
    run = adv.run_row(run_id)
    if run is None:
        raise NotFound(f"no run with id {run_id!r}")
    if RunState(run["state"]) is RunState.COMPENSATING or run["compensated"]:
        raise IllegalTransition(f"run {run_id} was compensated; its outcomes are final")
    row = adv.tx.execute(Q.marked_task, (run_id, task)).fetchone()
    if row is None:
        raise NotFound(f"run {run_id} has no task {task!r}")
    event = TaskEvent.MARK_SUCCEEDED if succeeded else TaskEvent.MARK_FAILED
    state = TaskState(row["state"])
    if state not in task_sources(event):
        verb = "succeeded" if succeeded else "failed"
        raise IllegalTransition(f"task {task!r} is {state.value}; it cannot be marked {verb}")
    if state.finished:
        _reopen_after(adv, run, row, event)
        return
    _close_running_attempt(adv, row)
    adv.cas_task(
        row,
        event,
        {"by": "user"},
        finished_at=adv.now,
        error=None if succeeded else "marked failed by a user",
    )
    adv.on_finished(adv.task_row(row["id"]))


def _close_running_attempt(adv: Advance, row: Any) -> None:
    adv.tx.execute(Q.supersede_by_user, (adv.now, row["id"], row["lease_epoch"]))


def _reopen_after(adv: Advance, run: Any, row: Any, event: TaskEvent) -> None:
    """A finished task marked succeeded: re-decide what its failure decided downstream."""
    spec = adv.spec_of(run["workflow"], run["version"])
    resumed = RunState(run["state"]).finished and adv.cas_run(
        run, RunEvent.RETRY, finished_at=None, error=None
    )
    if RunState(run["state"]).finished and not resumed:
        raise IllegalTransition(f"run {run['id']} is {run['state']} and cannot be resumed")
    adv.cas_task(row, event, {"by": "user"}, finished_at=adv.now, error=None)
    below = downstream_closure(spec, row["task_name"]) - {row["task_name"]}
    rows = adv.tx.execute(Q.top_task_runs, (run["id"],)).fetchall()
    for other in rows:
        if other["task_name"] in below and TaskState(other["state"]) in _REOPENABLE:
            adv.cas_task(
                other,
                TaskEvent.RESET,
                {"after_mark": row["task_name"]},
                finished_at=None,
                error=None,
            )
    lifecycle.recount(adv, run["id"], spec)
    adv.start_run({"id": run["id"], "state": RunState.RUNNING.value})
    if adv.tx.execute(Q.run_unfinished, (run["id"],)).fetchone()["unfinished"] == 0:
        adv.finalize_run(run["id"])

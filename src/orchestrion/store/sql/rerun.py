"""Rerun from a chosen task: a new run of the same version and parameters, in which every
task that does not depend (transitively) on the chosen one is carried over with its earlier
result, and the chosen task and everything downstream of it run again.

The earlier run is not touched: its history stays exactly what happened (promise 4).
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrion.errors import IllegalTransition, NotFound
from orchestrion.planner import downstream_closure, topological_order
from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import RunState, TaskEvent, TaskState
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.queries import Q

__all__ = ["apply_carry", "plan_carry"]


def plan_carry(
    adv: Advance, run_id: str, task: str
) -> tuple[WorkflowSpec, dict[str, str | None], dict[str, object]]:
    """(spec, carried results by task, the run's params) for a rerun of `run_id` from `task`.

    Only finished runs can be rerun; the chosen task must exist; every task that is carried
    must have succeeded in the earlier run (otherwise there is no result to carry)."""
    run = adv.run_row(run_id)
    if run is None:
        raise NotFound(f"no run with id {run_id!r}")
    if not RunState(run["state"]).finished:
        raise IllegalTransition(f"run {run_id} is {run['state']}; rerun a finished run")
    spec = adv.spec_of(run["workflow"], run["version"])
    if task not in {t.name for t in spec.tasks}:
        known = ", ".join(t.name for t in spec.tasks)
        raise NotFound(f"workflow {spec.name!r} has no task {task!r} (tasks: {known})")
    again = downstream_closure(spec, task)
    rows = adv.tx.execute(Q.earlier_results, (run_id,)).fetchall()
    earlier = {r["task_name"]: r for r in rows}
    carry: dict[str, str | None] = {}
    for name in (t.name for t in spec.tasks if t.name not in again):
        row = earlier.get(name)
        if row is None or row["state"] not in (
            TaskState.SUCCEEDED.value,
            TaskState.COMPENSATED.value,
        ):
            state = row["state"] if row is not None else "missing"
            raise IllegalTransition(
                f"cannot rerun from {task!r}: upstream task {name!r} did not succeed in run"
                f" {run_id} (it is {state}); retry the run instead"
            )
        carry[name] = row["result"]
    return spec, carry, dict(loads_params(run["params"]))


def loads_params(text: str) -> Mapping[str, object]:
    import json

    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def apply_carry(
    adv: Advance, run_id: str, spec: WorkflowSpec, carry: Mapping[str, str | None]
) -> None:
    """Mark carried tasks succeeded, in dependency order, so that the usual counters make
    the first task to rerun ready exactly as if its upstreams had just finished."""
    for name in topological_order(spec):
        if name not in carry:
            continue
        row = adv.tx.execute(Q.carried_task, (run_id, name)).fetchone()
        adv.cas_task(
            row,
            TaskEvent.CARRY,
            {"from": "earlier run"},
            result=carry[name],
            finished_at=adv.now,
            started_at=adv.now,
        )
        adv.on_finished(adv.task_row(row["id"]))

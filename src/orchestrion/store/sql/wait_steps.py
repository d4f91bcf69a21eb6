"""Steps that wait without a worker, in the store: entering the wait, and every way out.

A ready approval or wait step moves pending -> waiting (`TaskEvent.AWAIT`) in the
transaction that decided it ready, with a `task_waits` row holding its due-times (its
timeout, a sensor's next check). A decision, a signal, a matching event, a sensor that
came true or a timeout resolves it: one transaction that moves the task run waiting ->
succeeded / failed (guarded: the first resolution wins, a second finds it no longer
waiting), writes the event rows, removes the wait row and tells the run (`on_finished`), as
a child run does for its sub-workflow task.

`orchestrion.store.sql.waits.SqlWaits`, the `WaitStore` of both dialects, runs these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Protocol

from orchestrion.spec.waits import ApprovalAction, WaitAction, waiting_name
from orchestrion.states import TaskEvent, TaskState, task_target
from orchestrion.store.sql.guarded import Tx
from orchestrion.store.sql.guards import literal
from orchestrion.store.sql.jsontext import dumps
from orchestrion.store.sql.named import NamedQueries, load_queries
from orchestrion.store.wait_records import WaitResolution


class Advance(Protocol):
    """What these steps use of `orchestrion.store.sql.advance.Advance` (which calls them:
    named by its shape, not imported, so the two modules do not import each other)."""

    tx: Tx
    now: float

    def cas_task(
        self, row: Any, event: TaskEvent, data: dict[str, Any] | None = None, **fields: Any
    ) -> bool: ...
    def cas_held(
        self, row: Any, event: TaskEvent, data: dict[str, Any] | None = None, **fields: Any
    ) -> None: ...
    def task_row(self, task_run_id: int) -> Any: ...
    def event(
        self,
        run_id: str | None,
        task_run_id: int | None,
        kind: str,
        from_state: str | None = None,
        to_state: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None: ...
    def on_finished(self, row: Any) -> None: ...


__all__ = ["W", "enter_wait", "resolve_wait", "take_signal"]

#: The statements of waiting steps, by name.
W: Final[NamedQueries] = load_queries(
    Path(__file__).with_name("waits.sql"),
    substitutions={"task_awaiting": literal(task_target(TaskEvent.AWAIT))},
)

_WAITING: Final = TaskState.WAITING.value


def enter_wait(
    adv: Advance, row: Any, action: ApprovalAction | WaitAction, *, held: bool = False
) -> None:
    """A ready approval or wait step starts waiting; a signal already sent to the run is
    taken at once (signals are kept, not lost)."""
    kind = "approval" if isinstance(action, ApprovalAction) else action.waits_for
    data: dict[str, Any] = {"wait": kind}
    if isinstance(action, ApprovalAction):
        data.update(role=action.role, message=action.message)
    name = waiting_name(action)
    if name is not None:
        data["name"] = name
    if held:
        adv.cas_held(row, TaskEvent.AWAIT, data)
    elif not adv.cas_task(row, TaskEvent.AWAIT, data):
        return
    deadline = None if action.timeout is None else adv.now + action.timeout
    polled = isinstance(action, WaitAction) and action.polled
    adv.tx.execute(
        W.upsert_wait,
        (row["id"], row["run_id"], kind, name, deadline, adv.now if polled else None, adv.now),
    )
    if kind == "approval":
        # What notification rules match to announce a pending approval.
        adv.event(row["run_id"], row["id"], "wait.approval_pending", data=data)
    elif kind == "signal" and name is not None:
        kept = adv.tx.execute(W.open_signal, (row["run_id"], name)).fetchone()
        if kept is not None:
            take_signal(adv, row["id"], kept["id"], name, kept["data"])


def take_signal(adv: Advance, task_run_id: int, signal_id: int, name: str, data: str) -> bool:
    """The waiting step takes the kept signal (once: guarded) and succeeds with its data."""
    if adv.tx.execute(W.take_signal, (task_run_id, signal_id)).rowcount != 1:
        return False
    resolution = WaitResolution(
        outcome="succeed", event="wait.signal", data={"signal": name, "id": signal_id}
    )
    return resolve_wait(adv, task_run_id, resolution, result_text=data)


def resolve_wait(
    adv: Advance,
    task_run_id: int,
    resolution: WaitResolution,
    *,
    result_text: str | None = None,
) -> bool:
    """End a wait (see the module docstring); False when the task run no longer waits.
    `result_text` is the result as JSON text already (a signal's data as it was kept)."""
    row = adv.task_row(task_run_id)
    adv.tx.execute(W.delete_wait, (task_run_id,))
    if row is None or row["state"] != _WAITING:
        return False
    data = resolution.data
    if resolution.outcome == "succeed":
        result = result_text if result_text is not None else dumps(resolution.result)
        moved = adv.cas_task(row, TaskEvent.SUCCEED, data, result=result, finished_at=adv.now)
    else:
        moved = adv.cas_task(row, TaskEvent.FAIL, data, error=resolution.error, finished_at=adv.now)
    if not moved:
        return False
    adv.event(row["run_id"], task_run_id, resolution.event, data=data)
    adv.on_finished(adv.task_row(task_run_id))
    return True

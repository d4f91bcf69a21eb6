"""The lifecycle of runs and task runs: one table each, the single source for every guard.

The store never writes a state that is not the target of an edge below, and every
write is a compare-and-set whose allowed "from" set is computed here
(`sources(event)`), so an illegal move is refused by the database, not by hope.

Task run lifecycle (``docs/architecture.md`` draws it)::

    pending ──ready──▶ queued ──claim──▶ running ──succeed──▶ succeeded ──compensate──▶ compensated
       │                  ▲                │  │ └─fail──▶ failed ──requeue──▶ queued
       │                  │                │  └─retry──▶ retry_wait ──claim──▶ running
       ├─skip──▶ skipped  └──────────────  ├─wait──▶ waiting ──succeed / fail──▶ ...
       ├─expand──▶ waiting (mapped group)  └─skip──▶ skipped (its `when` was false)
       ├─await──▶ waiting (an approval, signal, event or sensor step: no worker claims it)
       ├─fail──▶ failed (its `when`/`map` expression failed)
       └─upstream_failed──▶ upstream_failed ──reset──▶ pending
    failed / canceled mapped group ──reopen──▶ waiting (its failed items run again)
    any unfinished state ──cancel──▶ canceled ──reset──▶ pending
"""

from __future__ import annotations

from enum import StrEnum

from orchestrion.errors import IllegalTransition

__all__ = [
    "RUN_TRANSITIONS",
    "TASK_TRANSITIONS",
    "RunEvent",
    "RunState",
    "TaskEvent",
    "TaskState",
    "next_run_state",
    "next_task_state",
    "run_sources",
    "run_target",
    "task_sources",
    "task_target",
]


class TaskState(StrEnum):
    """Where a task run is in its lifecycle; `TASK_TRANSITIONS` says how it moves."""

    #: Waiting for upstream task runs to finish.
    PENDING = "pending"
    #: Ready; a worker may claim it once `ready_at` has passed.
    QUEUED = "queued"
    #: Claimed by a worker under a lease; an attempt is in flight.
    RUNNING = "running"
    #: Waiting on something that is not a worker: a child run, the items of a mapped task,
    #: or an approval, signal, event or sensor (`orchestrion.spec.waits`).
    WAITING = "waiting"
    #: Failed, with a retry due at `ready_at`.
    RETRY_WAIT = "retry_wait"
    #: Finished with a result.
    SUCCEEDED = "succeeded"
    #: Finished with an error after its last allowed attempt.
    FAILED = "failed"
    #: Not run: its `when` condition was false, or its trigger rule skipped it.
    SKIPPED = "skipped"
    #: Not run: its trigger rule could no longer be met because upstream tasks failed.
    UPSTREAM_FAILED = "upstream_failed"
    #: Stopped by a user or by the run's timeout.
    CANCELED = "canceled"
    #: Succeeded earlier, and its compensation (undo step) has since succeeded.
    COMPENSATED = "compensated"

    @property
    def finished(self) -> bool:
        """True once nothing runs or waits for the task run (a retry or an undo may still
        move it on)."""
        return self in _TASK_FINISHED


_TASK_FINISHED = frozenset(
    {
        TaskState.SUCCEEDED,
        TaskState.FAILED,
        TaskState.SKIPPED,
        TaskState.UPSTREAM_FAILED,
        TaskState.CANCELED,
        TaskState.COMPENSATED,
    }
)


class TaskEvent(StrEnum):
    """What moves a task run from one state to the next: the edges of `TASK_TRANSITIONS`, each with
    exactly one target state."""

    READY = "ready"
    SKIP = "skip"
    UPSTREAM_FAILED = "upstream_failed"
    EXPAND = "expand"
    AWAIT = "await"
    CLAIM = "claim"
    WAIT = "wait"
    SUCCEED = "succeed"
    FAIL = "fail"
    RETRY = "retry"
    CANCEL = "cancel"
    REQUEUE = "requeue"
    RESET = "reset"
    REOPEN = "reopen"
    CARRY = "carry"
    MARK_SUCCEEDED = "mark_succeeded"
    MARK_FAILED = "mark_failed"
    COMPENSATE = "compensate"


T, E = TaskState, TaskEvent

#: (from state, event) -> to state. Every task run state change in the system is one of these.
TASK_TRANSITIONS: dict[tuple[TaskState, TaskEvent], TaskState] = {
    (T.PENDING, E.READY): T.QUEUED,
    (T.PENDING, E.SKIP): T.SKIPPED,
    (T.PENDING, E.UPSTREAM_FAILED): T.UPSTREAM_FAILED,
    (T.PENDING, E.EXPAND): T.WAITING,  # a mapped task becomes a group of item task runs
    # An approval, signal, event or sensor step waits in the store, never on a queue: it is
    # resolved (waiting -> succeed / fail) by a decision, a delivery or its timeout.
    (T.PENDING, E.AWAIT): T.WAITING,
    (T.PENDING, E.CANCEL): T.CANCELED,
    (T.PENDING, E.FAIL): T.FAILED,  # its `when` or `map` expression could not be evaluated
    (T.PENDING, E.CARRY): T.SUCCEEDED,  # a rerun carries the earlier run's result over
    (T.QUEUED, E.CLAIM): T.RUNNING,
    (T.QUEUED, E.CANCEL): T.CANCELED,
    (T.RETRY_WAIT, E.CLAIM): T.RUNNING,
    (T.RETRY_WAIT, E.CANCEL): T.CANCELED,
    (T.RUNNING, E.SUCCEED): T.SUCCEEDED,
    (T.RUNNING, E.FAIL): T.FAILED,
    (T.RUNNING, E.RETRY): T.RETRY_WAIT,
    (T.RUNNING, E.SKIP): T.SKIPPED,  # its `when` condition, evaluated at start, was false
    (T.RUNNING, E.WAIT): T.WAITING,  # a sub-workflow task started its child run
    (T.RUNNING, E.CANCEL): T.CANCELED,
    (T.WAITING, E.SUCCEED): T.SUCCEEDED,
    (T.WAITING, E.FAIL): T.FAILED,
    (T.WAITING, E.CANCEL): T.CANCELED,
    (T.FAILED, E.REQUEUE): T.QUEUED,  # retry of a failed run: the failed task runs again
    (T.UPSTREAM_FAILED, E.RESET): T.PENDING,
    # retry of a task whose `when`/`map` failed before it ran, or of a failed undo step
    (T.FAILED, E.RESET): T.PENDING,
    (T.CANCELED, E.RESET): T.PENDING,
    (T.FAILED, E.REOPEN): T.WAITING,  # retry of a mapped group: its failed items run again
    (T.CANCELED, E.REOPEN): T.WAITING,
    (T.SUCCEEDED, E.COMPENSATE): T.COMPENSATED,
    (T.SKIPPED, E.RESET): T.PENDING,  # its upstream was marked succeeded by a user
    # A user's override (the UI's and API's "mark succeeded / failed"): recorded as such.
    **{
        (s, E.MARK_SUCCEEDED): T.SUCCEEDED
        for s in (
            T.PENDING,
            T.QUEUED,
            T.RUNNING,
            T.RETRY_WAIT,
            T.WAITING,
            T.FAILED,
            T.UPSTREAM_FAILED,
            T.CANCELED,
            T.SKIPPED,
        )
    },
    **{
        (s, E.MARK_FAILED): T.FAILED
        for s in (T.PENDING, T.QUEUED, T.RUNNING, T.RETRY_WAIT, T.WAITING)
    },
}

del T, E


class RunState(StrEnum):
    """Where a run is in its lifecycle; `RUN_TRANSITIONS` says how it moves."""

    #: Accepted, waiting for a slot under the workflow's max active runs.
    QUEUED = "queued"
    #: Task runs are being executed.
    RUNNING = "running"
    #: A task failed; the undo steps of the tasks that succeeded are running.
    COMPENSATING = "compensating"
    #: Every task run finished without failure.
    SUCCEEDED = "succeeded"
    #: A task run failed (after compensation, where the workflow has any).
    FAILED = "failed"
    #: Stopped by a user or by its timeout.
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        """True once the run ended: succeeded, failed or canceled (a retry may reopen it)."""
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELED)


class RunEvent(StrEnum):
    """What moves a run from one state to the next: the edges of `RUN_TRANSITIONS`."""

    START = "start"
    SUCCEED = "succeed"
    FAIL = "fail"
    COMPENSATE = "compensate"
    CANCEL = "cancel"
    RETRY = "retry"
    RETRY_UNDO = "retry_undo"


R, RE = RunState, RunEvent

#: (from state, event) -> to state for runs.
RUN_TRANSITIONS: dict[tuple[RunState, RunEvent], RunState] = {
    (R.QUEUED, RE.START): R.RUNNING,
    (R.QUEUED, RE.CANCEL): R.CANCELED,
    (R.RUNNING, RE.SUCCEED): R.SUCCEEDED,
    (R.RUNNING, RE.FAIL): R.FAILED,
    (R.RUNNING, RE.COMPENSATE): R.COMPENSATING,
    (R.RUNNING, RE.CANCEL): R.CANCELED,
    (R.COMPENSATING, RE.FAIL): R.FAILED,
    (R.COMPENSATING, RE.CANCEL): R.CANCELED,
    (R.FAILED, RE.RETRY): R.RUNNING,
    (R.CANCELED, RE.RETRY): R.RUNNING,
    # Retry of a compensated run: its failed (or canceled) undo steps run again.
    (R.FAILED, RE.RETRY_UNDO): R.COMPENSATING,
    (R.CANCELED, RE.RETRY_UNDO): R.COMPENSATING,
}

del R, RE


def next_task_state(state: TaskState, event: TaskEvent) -> TaskState:
    """The state a task run in `state` moves to on `event`, or `IllegalTransition`."""
    try:
        return TASK_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"task run cannot {event.value} from {state.value}") from None


def next_run_state(state: RunState, event: RunEvent) -> RunState:
    """The state a run in `state` moves to on `event`, or `IllegalTransition`."""
    try:
        return RUN_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"run cannot {event.value} from {state.value}") from None


def task_sources(event: TaskEvent) -> tuple[TaskState, ...]:
    """The states from which `event` is legal: the guard of the store's compare-and-set."""
    return _TASK_SOURCES[event]


def run_sources(event: RunEvent) -> tuple[RunState, ...]:
    """The run states from which `event` is legal."""
    return _RUN_SOURCES[event]


_TASK_SOURCES: dict[TaskEvent, tuple[TaskState, ...]] = {
    ev: tuple(s for (s, e) in TASK_TRANSITIONS if e is ev) for ev in TaskEvent
}
_RUN_SOURCES: dict[RunEvent, tuple[RunState, ...]] = {
    ev: tuple(s for (s, e) in RUN_TRANSITIONS if e is ev) for ev in RunEvent
}


def task_target(event: TaskEvent) -> TaskState:
    """The one state `event` leads to (every event has exactly one target)."""
    return _TASK_TARGETS[event]


def run_target(event: RunEvent) -> RunState:
    """The one run state `event` leads to."""
    return _RUN_TARGETS[event]


_TASK_TARGETS: dict[TaskEvent, TaskState] = {e: t for (_, e), t in TASK_TRANSITIONS.items()}
_RUN_TARGETS: dict[RunEvent, RunState] = {e: t for (_, e), t in RUN_TRANSITIONS.items()}

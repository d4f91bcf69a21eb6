"""The `Store`: every durable fact and every state change goes through these domain verbs.

Each verb is atomic: one transaction, whose status writes are compare-and-sets guarded by
`orchestrion.states` and whose event rows are written in the same transaction. No caller
ever holds a transaction. Rows leave the store as frozen records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import RunState, TaskState

__all__ = [
    "AttemptRecord",
    "BackfillRecord",
    "Claim",
    "EventReceipt",
    "EventRecord",
    "FinishResult",
    "FinishedRun",
    "FireRecord",
    "LogLine",
    "LogRecord",
    "Outcome",
    "RunFilter",
    "RunRecord",
    "RunRequest",
    "ScheduleState",
    "Store",
    "TaskRunRecord",
    "WorkerRecord",
    "WorkflowRecord",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowRecord:
    name: str
    version: str
    spec: WorkflowSpec
    source: str | None
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    id: str
    workflow: str
    version: str
    state: RunState
    params: dict[str, Any]
    priority: int
    trigger: str
    idempotency_key: str | None
    parent_task_run_id: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    deadline: float | None
    result: Any
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRunRecord:
    id: int
    run_id: str
    task_name: str
    #: -1 for a task that is not an item of a mapped task.
    map_index: int
    #: "task", "group" (a mapped task's parent), "item" (one mapped element) or "undo".
    kind: str
    state: TaskState
    queue: str
    priority: int
    attempts: int
    ready_at: float
    result: Any
    error: str | None
    started_at: float | None
    finished_at: float | None
    lease_owner: str | None
    lease_epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    id: int
    task_run_id: int
    run_id: str
    number: int
    epoch: int
    worker: str
    started_at: float
    finished_at: float | None
    #: None while running; then succeeded, failed, skipped, waiting, lost, canceled, superseded.
    outcome: str | None
    error: str | None
    error_type: str | None
    traceback: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    id: int
    run_id: str | None
    task_run_id: int | None
    at: float
    kind: str
    from_state: str | None
    to_state: str | None
    data: dict[str, Any] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine:
    run_id: str
    task_run_id: int
    attempt: int
    at: float
    stream: str
    line: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    id: int
    run_id: str
    task_run_id: int
    task_name: str
    attempt: int
    at: float
    stream: str
    line: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRecord:
    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    started_at: float
    heartbeat_at: float
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """A task run handed to one worker under a lease; everything needed to execute it."""

    task_run_id: int
    run_id: str
    workflow: str
    version: str
    task_name: str
    kind: str
    map_index: int
    attempt: int
    epoch: int
    params: dict[str, Any]
    #: Results of the task's upstream tasks, by task name (a mapped task's result is a list).
    upstream: dict[str, Any]
    #: The element of the mapped list, for an item of a mapped task.
    item: Any = None
    #: For an undo step: the result of the task it undoes.
    undo_of_result: Any = None

    @property
    def idempotency_key(self) -> str:
        suffix = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.run_id}/{self.task_name}{suffix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a worker reports for one attempt."""

    task_run_id: int
    epoch: int
    status: Literal["succeeded", "failed", "skipped", "canceled"]
    result: Any = None
    error: str | None = None
    #: The exception's type and its bases, qualified (``builtins.ValueError``), for `retry_on`.
    error_types: tuple[str, ...] = ()
    traceback: str | None = None
    #: True for a timeout: retried like any failure, but named as such in the history.
    timed_out: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishResult:
    #: Task run ids whose outcome was recorded.
    applied: tuple[int, ...] = ()
    #: Task run ids whose outcome came too late (lease lost or run canceled): kept as superseded.
    superseded: tuple[int, ...] = ()
    #: How many task runs became ready as a consequence (used to wake workers).
    newly_ready: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFilter:
    workflow: str | None = None
    state: RunState | None = None
    limit: int = 50
    #: Cursor: return runs created strictly before this run id (ids sort by creation).
    before: str | None = None


class Store(Protocol):
    """The domain verbs. Implementations: `orchestrion.store.sqlite.SqliteStore`."""

    url: str

    def close(self) -> None:
        """Release connections. The store cannot be used afterwards."""
        ...

    # ------------------------------------------------------------ workflows

    def register_workflow(self, spec: WorkflowSpec, *, source: str | None, now: float) -> bool:
        """Record this version of a workflow; False if it was already registered."""
        ...

    def get_workflow(self, name: str, version: str | None = None) -> WorkflowRecord:
        """One version (the latest registered when `version` is None) or `NotFound`."""
        ...

    def list_workflows(self) -> list[WorkflowRecord]:
        """The latest version of every workflow, by name."""
        ...

    def list_versions(self, name: str) -> list[WorkflowRecord]:
        """Every registered version of a workflow, newest first (`NotFound` if none)."""
        ...

    def set_paused(self, name: str, paused: bool, *, now: float) -> None:
        """Pause or unpause a workflow (recorded as an event)."""
        ...

    def paused_workflows(self) -> set[str]:
        """Names of the paused workflows."""
        ...

    # ------------------------------------------------------------ runs

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
        """Create a run and its task runs, queue its roots (or queue the run under the
        workflow's max active runs). With an idempotency key that was used before, return
        that run instead of creating another."""
        ...

    def cancel_run(self, run_id: str, *, now: float, reason: str = "canceled by user") -> bool:
        """Cancel the run, its unfinished task runs and its child runs. False if finished."""
        ...

    def retry_run(self, run_id: str, *, now: float) -> bool:
        """Re-open a failed or canceled run: failed and canceled task runs run again; succeeded
        ones keep their results. False when the run is not in a retryable state."""
        ...

    def mark_task(self, run_id: str, task: str, *, succeeded: bool, now: float) -> None:
        """A user's override of a task's outcome (recorded as such); marking a failed task
        succeeded re-decides its downstream tasks and resumes a finished run."""
        ...

    def rerun_from(self, run_id: str, task: str, *, now: float) -> str:
        """A new run of the same version and parameters that carries over the results of
        every task not downstream of `task`, and runs `task` and its downstream again.
        Returns the new run's id; the earlier run is left as it was."""
        ...

    def timeout_runs(self, *, now: float) -> list[str]:
        """Cancel runs past their deadline; returns their ids."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """One run or `NotFound` (a unique id prefix is accepted)."""
        ...

    def list_runs(self, filt: RunFilter) -> list[RunRecord]:
        """Newest first."""
        ...

    def list_task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """Every task run of a run, in creation order."""
        ...

    def list_attempts(self, run_id: str) -> list[AttemptRecord]:
        """Every attempt of a run, in order."""
        ...

    def list_events(
        self, run_id: str | None = None, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        """The event history (of one run, or of everything), oldest first."""
        ...

    def last_event_id(self) -> int:
        """The id of the newest event row (0 when there is none)."""
        ...

    # ------------------------------------------------------------ workers

    def claim(
        self,
        *,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease_seconds: float,
        now: float,
    ) -> list[Claim]:
        """Take up to `limit` ready task runs, by priority then age, within concurrency
        limits; each gets a new lease epoch and an attempt row."""
        ...

    def heartbeat(
        self,
        *,
        worker_id: str,
        leases: Sequence[tuple[int, int]],
        lease_seconds: float,
        now: float,
    ) -> list[int]:
        """Extend the leases (task run id, epoch) still held; return the task run ids whose
        lease is gone (fenced, canceled or reaped): the worker must stop those attempts."""
        ...

    def finish(self, outcomes: Sequence[Outcome], *, now: float) -> FinishResult:
        """Record attempt outcomes and advance their runs in the same transaction: retries,
        readiness of downstream tasks, mapped groups, run completion and compensation."""
        ...

    def start_child_run(
        self, claim: Claim, spec: WorkflowSpec, params: dict[str, Any], *, now: float
    ) -> str | None:
        """For a sub-workflow task: create the child run and move the task run to waiting.
        None if the lease was lost meanwhile."""
        ...

    def reap_expired(self, *, now: float) -> int:
        """Turn expired leases into lost attempts (retried); returns how many."""
        ...

    def next_ready_at(self, queues: Sequence[str]) -> float | None:
        """The earliest time a queued or retry-waiting task run becomes claimable."""
        ...

    def register_worker(self, worker: WorkerRecord) -> None:
        """Record a worker process (host and pid let a restart recognise dead local workers)."""
        ...

    def worker_heartbeat(self, worker_id: str, *, now: float, state: str = "running") -> None:
        """Note that the worker is alive."""
        ...

    def running_by_worker(self) -> dict[str, list[TaskRunRecord]]:
        """The task runs each worker holds a lease on right now, by worker id."""
        ...

    def list_workers(self) -> list[WorkerRecord]:
        """Every known worker."""
        ...

    def expire_worker(self, worker_id: str, *, now: float) -> int:
        """The worker is known dead: expire its leases now (the reaper then re-queues them)."""
        ...

    # ------------------------------------------------------------ logs

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        """Append captured log lines."""
        ...

    def get_logs(
        self, run_id: str, *, task_name: str | None = None, after_id: int = 0, limit: int = 10_000
    ) -> list[LogRecord]:
        """Log lines of a run (optionally one task), oldest first."""
        ...

    def listen(self, *, work: bool = True, history: bool = False) -> None:
        """Also wake on other processes' commits: `wait_for_change` (work) and
        `wait_for_events` (history)."""
        ...

    def wait_for_events(self, seen: int, timeout: float) -> int:
        """Block until event rows may have been written since the change counter was `seen`,
        or `timeout` passes; returns the counter (compare it to decide whether to look)."""
        ...

    def wait_for_change(self, timeout: float) -> None:
        """Block until some task run may have become ready, or `timeout` passes.

        In-process wake-up for workers sharing this store object; other processes fall back
        to their poll interval (PostgreSQL will use LISTEN/NOTIFY)."""
        ...

    # ------------------------------------------------------------ triggers (schedules, events)

    def latest_versions(self) -> dict[str, tuple[str, float]]:
        """Workflow name -> (latest version, when it was registered), without parsing
        specs (the scheduler polls this and loads only versions it has not seen)."""
        ...

    def schedule_states(self) -> dict[str, ScheduleState]:
        """Every schedule's cursor (nominal times at or before it were decided), by key."""
        ...

    def fire_schedule(
        self,
        spec: WorkflowSpec,
        *,
        schedule_key: str,
        nominal: float,
        params: dict[str, Any],
        now: float,
        priority: int = 0,
        overlap: str = "allow",
        error: str | None = None,
    ) -> FireRecord | None:
        """Record the fire of (`schedule_key`, `nominal`) and act on it in one transaction:
        start a run (trigger and idempotency key ``schedule:<key>@<UTC time>``), or by the
        overlap policy skip it, queue it behind the schedule's unfinished run, or cancel
        that run first. With `error` (its params did not fit) the fire is recorded as
        failed and starts nothing. Moves the cursor to `nominal`. None when that nominal
        time was fired before (by anyone)."""
        ...

    def advance_schedule(
        self, schedule_key: str, workflow: str, cursor: float, *, now: float
    ) -> None:
        """Move a schedule's cursor forward to `cursor` (never back), e.g. past fires that
        the catch-up policy skipped."""
        ...

    def start_queued_fire(
        self, spec: WorkflowSpec, schedule_key: str, *, now: float, priority: int = 0
    ) -> str | None:
        """Overlap ``queue``: start the oldest queued fire of the schedule once none of its
        runs is unfinished; the new run id, or None."""
        ...

    def queued_fire_keys(self) -> set[str]:
        """Schedules with queued fires."""
        ...

    def list_fires(self, schedule_key: str | None = None, *, limit: int = 100) -> list[FireRecord]:
        """Recorded fires, newest first."""
        ...

    def record_event(
        self,
        source: str,
        event_id: str,
        event_type: str,
        payload: Any,
        *,
        now: float,
        runs: Sequence[RunRequest] = (),
        errors: Sequence[str] = (),
    ) -> EventReceipt:
        """Record a received event under the unique (`source`, `event_id`) and create its
        runs in the same transaction. A redelivered event creates nothing; its receipt is
        marked `duplicate` and names the first delivery's runs."""
        ...

    def finished_runs(self, after: int, *, limit: int = 500) -> tuple[list[FinishedRun], int]:
        """Runs that ended after event id `after` (oldest first), and the event id to read
        after next time."""
        ...

    def get_cursor(self, name: str) -> int | None:
        """A named reader's position in the event history (None if never set)."""
        ...

    def set_cursor(self, name: str, position: int, *, now: float) -> None:
        """Move a named reader's position forward (never back)."""
        ...

    def acquire_lease(self, name: str, holder: str, *, ttl: float, now: float) -> int | None:
        """Take the named lease if free or expired, or extend it for its holder, until
        ``now + ttl``; its epoch (new whenever it changes hands), or None if held."""
        ...

    def renew_lease(self, name: str, holder: str, epoch: int, *, ttl: float, now: float) -> bool:
        """Extend a lease still held under `epoch`; False if it lapsed or changed hands."""
        ...

    def release_lease(self, name: str, holder: str, epoch: int) -> None:
        """Give the lease up so another holder may take it at once."""
        ...

    def create_backfill(
        self,
        spec: WorkflowSpec,
        *,
        schedule_key: str,
        start: float,
        end: float,
        total: int,
        max_active: int,
        priority: int,
        now: float,
    ) -> BackfillRecord:
        """Record a backfill of `total` nominal times in [start, end]; the scheduler then
        starts its runs (`pace_backfill`)."""
        ...

    def get_backfill(self, backfill_id: str) -> BackfillRecord:
        """One backfill with its run counts, or `NotFound`."""
        ...

    def list_backfills(
        self, *, workflow: str | None = None, state: str | None = None
    ) -> list[BackfillRecord]:
        """Backfills, newest first."""
        ...

    def cancel_backfill(self, backfill_id: str, *, now: float) -> bool:
        """Stop a running backfill and cancel its unfinished runs; False if it had ended."""
        ...

    def pace_backfill(
        self,
        backfill_id: str,
        spec: WorkflowSpec,
        fires: Sequence[tuple[float, dict[str, Any]]],
        *,
        exhausted: bool,
        now: float,
    ) -> list[str]:
        """Start runs for the next `fires` (nominal time, params) while the backfill is
        under its max active runs; mark it completed when `exhausted` and all its runs
        ended. Returns the new run ids."""
        ...


# --------------------------------------------------------------------------- trigger records


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleState:
    schedule_key: str
    workflow: str
    #: Every nominal time at or before this was decided (fired or skipped by policy).
    cursor: float
    last_fire: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FireRecord:
    id: int
    schedule_key: str
    workflow: str
    nominal: float
    #: started, skipped (overlap), queued (behind the previous run) or failed (bad params).
    state: str
    run_id: str | None
    params: dict[str, Any]
    error: str | None
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """A run that a trigger asks for; `idempotency_key` makes asking twice harmless."""

    spec: WorkflowSpec
    params: dict[str, Any]
    trigger: str
    idempotency_key: str
    priority: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EventReceipt:
    source: str
    event_id: str
    #: True when this (source, event id) had been received before: nothing was started.
    duplicate: bool
    run_ids: tuple[str, ...]
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishedRun:
    event_id: int
    run: RunRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillRecord:
    id: str
    workflow: str
    version: str
    schedule_key: str
    start: float
    end: float
    max_active: int
    priority: int
    #: running, completed, canceled (or dry_run for a plan that was not recorded).
    state: str
    total: int
    #: Runs created so far.
    created: int
    cursor: float | None
    #: Run state -> how many of the backfill's runs are in it.
    counts: dict[str, int]
    created_at: float
    finished_at: float | None

    @property
    def active(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("queued", "running", "compensating"))

"""`RunStore`: the lifecycle of runs and the work of workers (claims, leases, outcomes).

Every verb is atomic: one transaction, whose status writes are compare-and-sets guarded by
`orchestrion.states` and whose event rows are written in the same transaction. No caller
ever holds a transaction. Rows leave the store as frozen records (`store/records.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.metric_records import TraceLineage
from orchestrion.store.records import Claim, FinishResult, LogLine, Outcome, RunRecord, WorkerRecord

__all__ = ["RunStore"]


class RunStore(Protocol):
    """Runs and their task runs, from creation to their end: what `App` starts, cancels
    and retries, what workers claim, heartbeat and finish, and what the housekeeping
    sweep reaps and times out."""

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
        no_cache: bool = False,
    ) -> RunRecord:
        """Create a run and its task runs, queue its roots (or queue the run under the
        workflow's max active runs). With an idempotency key that was used before, return
        that run instead of creating another. `no_cache`: its cached tasks compute and
        overwrite their entries instead of reusing them."""
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

    # ------------------------------------------------------------ claims and leases

    def claim(
        self,
        *,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease_seconds: float,
        now: float,
        labels: Mapping[str, str] | None = None,
    ) -> list[Claim]:
        """Take up to `limit` ready task runs, by priority then age, within concurrency
        limits, whose requirements (`TaskSpec.requires`) `labels` satisfy (None: whatever
        they require); each gets a new lease epoch and an attempt row."""
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

    def finish_and_claim(
        self,
        outcomes: Sequence[Outcome],
        *,
        now: float,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease_seconds: float,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[FinishResult, list[Claim]]:
        """`finish`, then, if that made task runs ready, `claim` up to `limit` task runs, in
        one transaction: the task a finish made ready (the next one of a chain) goes to the
        worker that finished its upstream without a wake-up, a poll or a transaction of its
        own. A dialect whose claim costs no round trip (SQLite) claims whenever `limit`
        allows, ready work made by this finish or not."""
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

    def next_ready_at(
        self,
        queues: Sequence[str],
        labels: Mapping[str, str] | None = None,
        *,
        now: float | None = None,
    ) -> float | None:
        """The earliest time a queued or retry-waiting task run that a worker with
        `labels` may claim becomes claimable. Task runs held back by a full limit are left
        out (a finish wakes the worker; a lease running out is caught by its slow poll);
        `now` (default: the wall clock) decides which leases still hold a slot."""
        ...

    def age_priorities(self, *, now: float, every: float, step: int, most: int) -> int:
        """Priority ageing: raise by `step` the priority of each queued or retry-waiting
        task run for every `every` seconds it has been claimable (`most` times at most,
        never above 1000), so that low-priority work still progresses under a steady
        stream of higher-priority work. Returns how many task runs were raised."""
        ...

    def trace_lineage(self, run_id: str) -> TraceLineage:
        """The run as it is now, its top-level run and (for a child) the task run that
        started it: what its spans' ids derive from."""
        ...

    def fold_metrics(self, *, now: float, limit: int = 5000) -> int:
        """Fold up to `limit` metric deltas (one per ended run or attempt, written by the
        database's triggers) into the durable totals; returns how many totals changed (0:
        nothing was left to fold)."""
        ...

    # ------------------------------------------------------------ workers and their logs

    def register_worker(self, worker: WorkerRecord) -> None:
        """Record a worker process (host and pid let a restart recognise dead local workers)."""
        ...

    def worker_heartbeat(self, worker_id: str, *, now: float, state: str = "running") -> None:
        """Note that the worker is alive."""
        ...

    def expire_worker(self, worker_id: str, *, now: float) -> int:
        """The worker is known dead: expire its leases now (the reaper then re-queues them)."""
        ...

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        """Append captured log lines."""
        ...

    # ------------------------------------------------------------ queue limits (slots)

    def set_queue_limit(self, queue: str, max_running: int, *, now: float) -> None:
        """At most `max_running` task runs of `queue` run at once, across all workers
        (created or replaced). Writes an event."""
        ...

    def clear_queue_limit(self, queue: str, *, now: float) -> bool:
        """Remove `queue`'s limit; False if it had none. Writes an event."""
        ...

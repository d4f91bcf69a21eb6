"""`ReadStore`: the read models of the UI and the API (runs, task runs, attempts, the
history, logs, workers, queue limits) and the web UI's batched page reads.

Reads only: nothing here writes, so a read replica or a cache could stand behind it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from orchestrion.store.metric_records import MetricsSnapshot
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

__all__ = ["ReadStore"]


class ReadStore(Protocol):
    """What the UI and the API show, read without a write transaction."""

    # ------------------------------------------------------------ runs and their history

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

    def get_logs(
        self, run_id: str, *, task_name: str | None = None, after_id: int = 0, limit: int = 10_000
    ) -> list[LogRecord]:
        """Log lines of a run (optionally one task), oldest first."""
        ...

    # ------------------------------------------------------------ workers and queues

    def running_by_worker(self) -> dict[str, list[TaskRunRecord]]:
        """The task runs each worker holds a lease on right now, by worker id."""
        ...

    def list_workers(self) -> list[WorkerRecord]:
        """Every known worker."""
        ...

    def queue_limits(self, *, now: float) -> list[QueueLimit]:
        """Every queue limit, by queue, with its task runs holding an unexpired lease."""
        ...

    def metrics(self, *, now: float, alive_since: float) -> MetricsSnapshot:
        """What a metrics scrape reports from the database (a bounded number of indexed
        reads, none over the history); workers count if they heartbeated since
        `alive_since`."""
        ...

    # ------------------------------------------------------------ web UI pages (batched)
    # Batched: one statement per page section, whatever the number of workflows listed.

    def last_runs(self, workflows: Sequence[str], *, per: int) -> dict[str, list[RunMark]]:
        """The newest `per` runs of each of `workflows`, newest first (every name a key)."""
        ...

    def run_state_counts(
        self, *, since: float, workflows: Sequence[str] | None = None
    ) -> dict[str, int]:
        """Run state -> how many runs were created at or after `since` (of `workflows`
        only, when given)."""
        ...

    def task_items(self, run_id: str, task_name: str, *, limit: int) -> dict[int, Any]:
        """Map index -> element, for the first `limit` items of a mapped task."""
        ...

    def task_results(self, run_id: str, names: Iterable[str]) -> dict[str, Any]:
        """The results of the (unmapped or group) task runs called `names`, by name."""
        ...

    def find_events(
        self,
        *,
        kind: str = "",
        run_id: str = "",
        workflow: str = "",
        before: int = 0,
        limit: int = 200,
    ) -> list[EventRecord]:
        """History rows newest first, filtered by kind prefix, run and workflow, with ids
        below `before` (a cursor; 0 for the newest)."""
        ...

    def task_runs_named(self, run_id: str, task_name: str) -> list[TaskRunRecord]:
        """The task runs of one task of a run (a mapped task's group and items, by index)."""
        ...

    def attempts_of(self, task_run_ids: Sequence[int]) -> list[AttemptRecord]:
        """The attempts of these task runs, oldest first."""
        ...

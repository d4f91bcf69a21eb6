"""`App.reads`: composite reads for the pages that summarise many things at once (the web
UI's overview and workflow list, a task's panel and inputs, the workers). Each is a fixed
number of batched store reads, however many workflows, runs or workers there are."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from orchestrion.app.core import Facet
from orchestrion.errors import NotFound
from orchestrion.spec.model import TaskSpec
from orchestrion.states import RunState
from orchestrion.store.metric_records import MetricsSnapshot
from orchestrion.store.record import replace
from orchestrion.store.records import (
    AttemptRecord,
    RunFilter,
    RunMark,
    RunRecord,
    TaskRunRecord,
    WorkerRecord,
    WorkflowRecord,
)
from orchestrion.store.stores import Stores

if TYPE_CHECKING:
    from orchestrion.triggers.service import ScheduleInfo

__all__ = [
    "Overview",
    "Reads",
    "TaskDetail",
    "TaskInputs",
    "WorkflowSummary",
    "overview",
    "task_detail",
    "task_inputs",
    "workflow_summaries",
]

_DAY = 86_400.0

#: Which workflows a reader may see (by name); None: all of them.
Visible = Callable[[str], bool] | None


class WorkflowSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the workflow list: the newest version and what is known about it."""

    record: WorkflowRecord
    paused: bool
    schedules: list[ScheduleInfo]
    #: Newest first.
    last_runs: list[RunMark]

    @property
    def next_fire(self) -> float | None:
        """The soonest next fire of its schedules (None without one)."""
        fires = [s.next_fire for s in self.schedules if s.next_fire is not None]
        return min(fires, default=None)


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """The overview page: the last day's runs, what runs now, failures, workers, fires."""

    #: Run state -> runs created in the last 24 hours.
    last_day: dict[str, int]
    running: list[RunRecord]
    failures: list[RunRecord]
    workers: list[WorkerRecord]
    #: Worker id -> task runs it is running now.
    load: dict[str, int]
    upcoming: list[ScheduleInfo]

    @property
    def total(self) -> int:
        """Runs created in the last 24 hours."""
        return sum(self.last_day.values())


class TaskInputs(msgspec.Struct, frozen=True, kw_only=True):
    """What a task is given when it runs. The store keeps no copy per attempt: these are
    the run's parameters and the current results of the task's upstreams, which are what
    its attempts received unless an upstream was re-run since."""

    params: dict[str, Any]
    upstream: dict[str, Any]
    #: Map index -> element, for a mapped task's first items.
    items: dict[int, Any]


def workflow_summaries(
    store: Stores, *, per: int = 10, visible: Visible = None
) -> list[WorkflowSummary]:
    """Every (visible) workflow with its paused flag, schedules and newest `per` runs."""
    records = [r for r in store.workflows.list_workflows() if visible is None or visible(r.name)]
    paused = store.workflows.paused_workflows()
    # The schedule service (cron, events, the scheduler) is imported by the pages that
    # show schedules, not by every command that opens an App.
    from orchestrion.triggers import service

    schedules: dict[str, list[ScheduleInfo]] = {}
    for info in service.list_schedules(store.workflows, store.triggers, records, paused):
        schedules.setdefault(info.workflow, []).append(info)
    last = store.reads.last_runs([r.name for r in records], per=per)
    return [
        WorkflowSummary(
            record=r,
            paused=r.name in paused,
            schedules=schedules.get(r.name, []),
            last_runs=last.get(r.name, []),
        )
        for r in records
    ]


def overview(store: Stores, *, now: float, rows: int = 10, visible: Visible = None) -> Overview:
    """The overview; with `visible`, only what a namespace-bound reader may see (counts
    included: they are taken over the visible workflows only)."""
    from orchestrion.triggers import service

    shown: Callable[[str], bool] = visible or (lambda name: True)
    upcoming = sorted(
        (
            s
            for s in service.list_schedules(store.workflows, store.triggers)
            if s.next_fire is not None and not s.paused and shown(s.workflow)
        ),
        key=lambda s: s.next_fire or 0.0,
    )
    names = (
        None
        if visible is None
        else [r.name for r in store.workflows.list_workflows() if shown(r.name)]
    )
    # A reader who sees few workflows reads deeper, so the lists still fill up.
    depth = rows if visible is None else rows * 10
    running = store.reads.list_runs(RunFilter(state=RunState.RUNNING, limit=depth))
    failures = store.reads.list_runs(RunFilter(state=RunState.FAILED, limit=depth))
    return Overview(
        last_day=store.reads.run_state_counts(since=now - _DAY, workflows=names),
        running=[r for r in running if shown(r.workflow)][:rows],
        failures=[r for r in failures if shown(r.workflow)][:rows],
        workers=store.reads.list_workers(),
        load={w: len(t) for w, t in store.reads.running_by_worker().items()},
        upcoming=upcoming[:rows],
    )


class TaskDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One task of a run as its panel shows it: its task run (or one item's), a mapped
    task's items, the attempts, and the inputs."""

    task_runs: list[TaskRunRecord]
    #: A mapped task's items, by index (empty for one item, or an unmapped task).
    items: list[TaskRunRecord]
    attempts: list[AttemptRecord]
    inputs: TaskInputs | None
    #: For one item: the element of the mapped list it was given.
    element: Any = None


def task_detail(
    store: Stores, run: RunRecord, task: TaskSpec | None, name: str, item: int
) -> TaskDetail:
    """A fixed handful of reads, however large the run: only this task's rows are read."""
    rows = store.reads.task_runs_named(run.id, name)
    items = [t for t in rows if t.kind == "item"]
    if item >= 0:
        chosen = [t for t in items if t.map_index == item]
        items = []
    else:
        chosen = [t for t in rows if t.kind != "item"]
    inputs = None if task is None or not rows else task_inputs(store, run, task)
    return TaskDetail(
        task_runs=chosen,
        items=items,
        attempts=store.reads.attempts_of([t.id for t in chosen]),
        inputs=inputs,
        element=inputs.items.get(item) if inputs is not None and item >= 0 else None,
    )


def task_inputs(store: Stores, run: RunRecord, task: TaskSpec, *, items: int = 200) -> TaskInputs:
    """The parameters, upstream results and (mapped) first `items` items of `task`."""
    return TaskInputs(
        params=run.params,
        upstream=store.reads.task_results(run.id, task.depends_on),
        items=store.reads.task_items(run.id, task.name, limit=items) if task.map_over else {},
    )


class Reads(Facet):
    """Read models for summary pages: a fixed number of batched store reads each."""

    def workflow_summaries(
        self, *, per: int = 10, visible: Visible = None
    ) -> list[WorkflowSummary]:
        """Every (visible) workflow with its paused flag, schedules and newest `per` runs."""
        return workflow_summaries(self.store, per=per, visible=visible)

    def overview(self, *, rows: int = 10, visible: Visible = None) -> Overview:
        """Runs of the last 24 h by state, running runs, recent failures, workers and their
        load, and the next scheduled fires (of the `visible` workflows, when given)."""
        return overview(self.store, now=self.clock.now(), rows=rows, visible=visible)

    def metrics(self) -> MetricsSnapshot:
        """What a metrics scrape reports from the database, now. A worker whose heartbeats
        stopped for a whole lease is left out (its attempts are being reaped)."""
        now = self.clock.now()
        snapshot = self.store.reads.metrics(
            now=now, alive_since=now - self._core.settings.lease_seconds
        )
        consumers = tuple(self.store.triggers.list_consumers())
        return replace(snapshot, consumers=consumers)

    def task_inputs(self, run_id: str, task: str) -> TaskInputs:
        """The parameters, upstream results and (for a mapped task) items of `task`."""
        run = self.store.reads.get_run(run_id)
        spec = self.store.workflows.get_workflow(run.workflow, run.version).spec
        try:
            task_spec = spec.task(task.removeprefix("undo:"))
        except KeyError:
            raise NotFound(f"run {run.id} has no task {task!r}") from None
        return task_inputs(self.store, run, task_spec)

    def task_detail(self, run_id: str, task: str, item: int = -1) -> TaskDetail:
        """One task of a run for its panel: task runs (or one item's), items, attempts,
        inputs; reads only that task's rows."""
        run = self.store.reads.get_run(run_id)
        spec = self.store.workflows.get_workflow(run.workflow, run.version).spec
        known = {t.name: t for t in spec.tasks}
        return task_detail(self.store, run, known.get(task), task, item)

    def list_workers(self) -> list[WorkerRecord]:
        """Every known worker."""
        return self.store.reads.list_workers()

    def running_by_worker(self) -> dict[str, list[TaskRunRecord]]:
        """The task runs each worker holds a lease on right now, by worker id."""
        return self.store.reads.running_by_worker()

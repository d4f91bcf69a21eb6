"""Composite reads behind the `App` facade for the pages that summarise many things at
once (the web UI's overview and workflow list, a task's inputs). Each is a fixed number
of batched store reads, however many workflows, runs or workers there are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrion.spec.model import TaskSpec
from orchestrion.states import RunState
from orchestrion.store.base import RunFilter, RunRecord, Store, WorkerRecord, WorkflowRecord
from orchestrion.store.ui_records import RunMark
from orchestrion.triggers import service
from orchestrion.triggers.service import ScheduleInfo

__all__ = [
    "Overview",
    "TaskInputs",
    "WorkflowSummary",
    "overview",
    "task_inputs",
    "workflow_summaries",
]

_DAY = 86_400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowSummary:
    record: WorkflowRecord
    paused: bool
    schedules: list[ScheduleInfo]
    #: Newest first.
    last_runs: list[RunMark]

    @property
    def next_fire(self) -> float | None:
        fires = [s.next_fire for s in self.schedules if s.next_fire is not None]
        return min(fires, default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Overview:
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
        return sum(self.last_day.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskInputs:
    """What a task is given when it runs. The store keeps no copy per attempt: these are
    the run's parameters and the current results of the task's upstreams, which are what
    its attempts received unless an upstream was re-run since."""

    params: dict[str, Any]
    upstream: dict[str, Any]
    #: Map index -> element, for a mapped task's first items.
    items: dict[int, Any]


def workflow_summaries(store: Store, *, per: int = 10) -> list[WorkflowSummary]:
    records = store.list_workflows()
    paused = store.paused_workflows()
    schedules: dict[str, list[ScheduleInfo]] = {}
    for info in service.list_schedules(store, records, paused):
        schedules.setdefault(info.workflow, []).append(info)
    last = store.last_runs([r.name for r in records], per=per)
    return [
        WorkflowSummary(
            record=r,
            paused=r.name in paused,
            schedules=schedules.get(r.name, []),
            last_runs=last.get(r.name, []),
        )
        for r in records
    ]


def overview(store: Store, *, now: float, rows: int = 10) -> Overview:
    upcoming = sorted(
        (s for s in service.list_schedules(store) if s.next_fire is not None and not s.paused),
        key=lambda s: s.next_fire or 0.0,
    )
    return Overview(
        last_day=store.run_state_counts(since=now - _DAY),
        running=store.list_runs(RunFilter(state=RunState.RUNNING, limit=rows)),
        failures=store.list_runs(RunFilter(state=RunState.FAILED, limit=rows)),
        workers=store.list_workers(),
        load={w: len(t) for w, t in store.running_by_worker().items()},
        upcoming=upcoming[:rows],
    )


def task_inputs(store: Store, run: RunRecord, task: TaskSpec, *, items: int = 200) -> TaskInputs:
    return TaskInputs(
        params=run.params,
        upstream=store.task_results(run.id, task.depends_on),
        items=store.task_items(run.id, task.name, limit=items) if task.map_over else {},
    )

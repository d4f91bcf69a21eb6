"""What a test asserts on: a run as it stood when the harness returned it, its tasks and
their attempts, as plain read-only values (no store behind them, so they stay valid after
the harness closes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrion.states import RunState, TaskState
from orchestrion.store.records import AttemptRecord, LogRecord, RunRecord, TaskRunRecord

__all__ = ["AttemptResult", "RunResult", "TaskResult"]


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One try of a task: its number (1, 2, ...), how it ended (``succeeded``, ``failed``,
    ``lost``, ...; None while running) and its error."""

    number: int
    outcome: str | None
    error: str | None
    error_type: str | None


@dataclass(frozen=True, slots=True)
class TaskResult:
    """One task of a run (a mapped task's items are in `items`, in item order)."""

    name: str
    state: TaskState
    result: Any
    error: str | None
    attempts: tuple[AttemptResult, ...]
    items: tuple[TaskResult, ...] = ()
    #: What the task printed, one line each (stdout and stderr, in order).
    logs: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        """Whether the task ended successfully."""
        return self.state is TaskState.SUCCEEDED


@dataclass(frozen=True, slots=True)
class RunResult:
    """A run and its tasks, read when the harness returned it (`Harness.result` reads it
    again)."""

    id: str
    workflow: str
    state: RunState
    params: dict[str, Any]
    result: Any
    error: str | None
    trigger: str
    tasks: dict[str, TaskResult]

    @property
    def succeeded(self) -> bool:
        """Whether the run ended successfully."""
        return self.state is RunState.SUCCEEDED

    @property
    def finished(self) -> bool:
        """Whether the run reached a final state (it may wait on time or a person)."""
        return self.state.finished

    def task(self, name: str) -> TaskResult:
        """The task called `name`; `KeyError` listing the run's tasks when there is none."""
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise KeyError(f"run {self.id} has no task {name!r} (its tasks: {known})") from None

    def failed_tasks(self) -> list[TaskResult]:
        """The tasks that failed (their items too, for a mapped task), in run order."""
        out: list[TaskResult] = []
        for task in self.tasks.values():
            if task.state is TaskState.FAILED and not task.items:
                out.append(task)
            out.extend(i for i in task.items if i.state is TaskState.FAILED)
        return out

    def describe(self) -> str:
        """The run in a few lines: its state and error, then each task's state (and the
        error of each failed task with its attempts); what a failed assertion prints."""
        lines = [f"run {self.id} of {self.workflow!r} is {self.state.value}"]
        if self.error:
            lines[0] += f": {self.error}"
        for task in self.tasks.values():
            lines.append(f"  {task.name}: {task.state.value} ({len(task.attempts)} attempt(s))")
        failed = self.failed_tasks()
        if failed:
            lines.append("failed tasks:")
            for task in failed:
                lines.append(f"  {task.name}: {task.error or 'no error recorded'}")
                for attempt in task.attempts:
                    if attempt.error and attempt.error != task.error:
                        lines.append(f"    attempt {attempt.number}: {attempt.error}")
        return "\n".join(lines)

    def assert_succeeded(self) -> RunResult:
        """Fail the test, naming every failed task and its error, unless the run succeeded;
        returns the run for chaining."""
        if not self.succeeded:
            raise AssertionError(self.describe())
        return self

    def assert_failed(self, *tasks: str) -> RunResult:
        """Fail the test unless the run failed (and, when named, exactly these tasks did)."""
        if self.state is not RunState.FAILED:
            raise AssertionError(f"expected the run to fail\n{self.describe()}")
        if tasks:
            names = sorted({t.name.split("[")[0] for t in self.failed_tasks()})
            if names != sorted(tasks):
                raise AssertionError(
                    f"expected failed tasks {sorted(tasks)}, got {names}\n{self.describe()}"
                )
        return self


def build_result(
    run: RunRecord,
    task_runs: list[TaskRunRecord],
    attempts: list[AttemptRecord],
    logs: list[LogRecord],
) -> RunResult:
    """A `RunResult` from the records the App reads."""
    by_task: dict[int, list[AttemptResult]] = {}
    for a in sorted(attempts, key=lambda a: (a.task_run_id, a.number)):
        by_task.setdefault(a.task_run_id, []).append(
            AttemptResult(a.number, a.outcome, a.error, a.error_type)
        )
    lines: dict[int, list[str]] = {}
    for line in logs:
        lines.setdefault(line.task_run_id, []).append(line.line)

    def one(t: TaskRunRecord, name: str, items: tuple[TaskResult, ...] = ()) -> TaskResult:
        return TaskResult(
            name=name,
            state=t.state,
            result=t.result,
            error=t.error,
            attempts=tuple(by_task.get(t.id, ())),
            items=items,
            logs=tuple(lines.get(t.id, ())),
        )

    items: dict[str, list[TaskRunRecord]] = {}
    for t in task_runs:
        if t.kind == "item":
            items.setdefault(t.task_name, []).append(t)
    tasks: dict[str, TaskResult] = {}
    for t in task_runs:
        if t.kind == "item":
            continue
        name = t.task_name  # an undo step is "undo:<task>"
        mapped = tuple(
            one(i, f"{t.task_name}[{i.map_index}]")
            for i in sorted(items.get(t.task_name, []), key=lambda i: i.map_index)
        )
        tasks[name] = one(t, name, mapped)
    return RunResult(
        id=run.id,
        workflow=run.workflow,
        state=run.state,
        params=dict(run.params),
        result=run.result,
        error=run.error,
        trigger=run.trigger,
        tasks=tasks,
    )

"""`Harness`: run workflows in a test, in this process, on a store of their own, under a
clock the test moves.

The engine is the real one: a real store (a SQLite file in a temporary folder unless a
database URL is given), the real worker running tasks in this process's threads, the real
scheduler firing schedules and ending runs past their timeout. Only time is the test's: it
stands still until the harness moves it. `run` moves it only when nothing else can happen
(every task waits on a retry's backoff), straight to when the next task is due, so a run
whose task retries after an hour's backoff finishes in milliseconds; `advance` moves it by
as much as the test says, firing every schedule due on the way.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrion.app import App, Settings, load_workflows
from orchestrion.clock import FakeClock
from orchestrion.errors import OrchestrionError
from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import RunState, TaskState
from orchestrion.store.records import RunFilter
from orchestrion.testing.results import RunResult, build_result
from orchestrion.testing.stubs import Stub, python_workflow, stub_ref, stubbed

if TYPE_CHECKING:
    from orchestrion.triggers.scheduler import Scheduler
    from orchestrion.worker.loop import Worker

__all__ = ["Harness", "HarnessError"]

#: How long (in real seconds) `run` lets a run's tasks work before giving up on it.
DEFAULT_PATIENCE = 60.0
#: A schedule's next fire is asked of the scheduler with this horizon (seconds).
_FAR = 10 * 365 * 86400.0


class HarnessError(OrchestrionError):
    """The harness cannot go on: a run does not finish, or its worker died."""


class Harness:
    """Workflows, stubs, runs and a clock for one test. Use it as a context manager (or
    `open` / `close`); the pytest fixture ``orchestrion_harness`` gives one per test."""

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        database_url: str | None = None,
        start: float | dt.datetime | None = None,
        concurrency: int = 4,
        patience: float = DEFAULT_PATIENCE,
    ) -> None:
        """`directory` holds the SQLite file (default: a temporary folder removed on
        `close`); `database_url` puts the store elsewhere (a fresh PostgreSQL schema, say).
        The clock starts at `start` (default: now). `patience` is how long, in real
        seconds, tasks may work before `run` gives up."""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if database_url is None:
            if directory is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="orchestrion-test-")
                directory = self._tmp.name
            database_url = f"sqlite:///{Path(directory) / 'orchestrion.db'}"
        if isinstance(start, dt.datetime):
            start = start.timestamp()
        #: The harness's clock: it moves only by `advance` (and by `run`, to a task's retry).
        self.clock = FakeClock(time.time() if start is None else start)
        self.concurrency = concurrency
        self.patience = patience
        # Short leases: a test that kills nothing never waits on one, and heartbeats
        # are real-time threads (the fake clock only says what time they record).
        settings = Settings(database_url=database_url, lease_seconds=30.0, heartbeat_every=0.5)
        self.app = App(settings, clock=self.clock)
        self._workflows: dict[str, WorkflowSpec] = {}
        self._stubs: dict[tuple[str | None, str], Stub] = {}
        self._scheduler: Scheduler | None = None
        self._open = False

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> Harness:
        """Open the store (made and migrated on first use)."""
        self.app.open()
        self._open = True
        self._sync()
        return self

    def close(self) -> None:
        """Close the store and remove the temporary folder, if the harness made one."""
        if self._scheduler is not None:
            self._scheduler.release()
            self._scheduler = None
        self._open = False
        self.app.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Harness:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ workflows

    def load(self, *paths: str | Path) -> list[str]:
        """Load workflow files (.py or .yaml) and register them; the workflows' names.
        A Python file's tasks run the functions this process imported, so a test's
        monkeypatching applies to them."""
        names: list[str] = []
        for path in paths:
            for item in load_workflows(path):
                spec = item.spec
                if item.callables:
                    spec = python_workflow(spec)
                    self.app.code.add(item.callables)
                elif item.code is not None:
                    self.app.code.add_bundle(item.code)
                    self.app.workflows.store_code(item.code)
                self._workflows[spec.name] = spec
                names.append(spec.name)
        self._sync()
        return names

    def stub(
        self,
        task: str,
        *,
        workflow: str | None = None,
        result: Any = None,
        raises: BaseException | type[BaseException] | None = None,
        times: int | None = None,
        fn: Callable[..., Any] | None = None,
    ) -> Stub:
        """Replace task `task`'s body (in every workflow, or in `workflow` only): return
        `result`, raise `raises` (on the first `times` calls only, when given), or call
        `fn` with the task's inputs. The returned `Stub` records its calls."""
        made = Stub(task, result=result, raises=raises, times=times, fn=fn)
        self._stubs[(workflow, task)] = made
        if self._open:  # else registered when the harness opens
            self._sync()
        return made

    def calls(self, task: str, *, workflow: str | None = None) -> list[dict[str, Any]]:
        """The inputs of every call of the stub of `task`."""
        stub = self._stubs.get((workflow, task))
        if stub is None:
            raise KeyError(f"task {task!r} is not stubbed")
        return stub.calls

    def _stubs_of(self, workflow: str) -> dict[str, Stub]:
        found = {t: s for (w, t), s in self._stubs.items() if w is None}
        found.update({t: s for (w, t), s in self._stubs.items() if w == workflow})
        return found

    def _sync(self) -> None:
        """Register every loaded workflow as its stubs make it (an unchanged one keeps
        its version)."""
        for name, spec in self._workflows.items():
            stubs = {
                t: s for t, s in self._stubs_of(name).items() if t in {x.name for x in spec.tasks}
            }
            if stubs:
                self.app.code.override({stub_ref(name, t): s for t, s in stubs.items()})
                spec = stubbed(spec, stubs)
            self.app.workflows.register_spec(json_data(spec), source=f"harness:{name}")

    # ------------------------------------------------------------------ runs

    def trigger(self, workflow: str, params: dict[str, Any] | None = None) -> str:
        """Start a run without driving it; its id (`run` starts and drives one)."""
        self._sync()
        return self.app.runs.trigger(workflow, params or {}).id

    def run(self, workflow: str, params: dict[str, Any] | None = None) -> RunResult:
        """Start a run of `workflow` and drive it until it finishes, or until it waits on
        something time alone does not bring (a schedule, an approval): its result."""
        run_id = self.trigger(workflow, params)
        self._drive(until=run_id)
        return self.result(run_id)

    def wait(self, run_id: str) -> RunResult:
        """Drive a run started by `trigger` (or by a schedule) as `run` does."""
        self._drive(until=run_id)
        return self.result(run_id)

    def advance(self, seconds: float | dt.timedelta = 0.0, **delta: float) -> list[RunResult]:
        """Move the clock forward (``advance(90)``, ``advance(hours=1)``), firing the
        schedules due on the way and running what becomes due; the runs started
        meanwhile (by schedules or other runs' ends), as they stand at the end."""
        if isinstance(seconds, dt.timedelta):
            seconds = seconds.total_seconds()
        seconds += dt.timedelta(**delta).total_seconds()
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._sync()
        before = {r.id for r in self.app.runs.list_runs(RunFilter(limit=100_000))}
        target = self.clock.now() + seconds
        scheduler = self._ticker()
        while True:
            scheduler.tick()
            # Up to the next schedule's fire at most: it is due before later retries.
            horizon = min(target, scheduler.next_wake(self.clock.now()))
            self._drive(until=None, horizon=horizon)
            now = self.clock.now()
            if now >= target:
                break
            self.clock.advance(max(0.0, min(target, scheduler.next_wake(now)) - now))
        runs = self.app.runs.list_runs(RunFilter(limit=100_000))
        return [self.result(r.id) for r in reversed(runs) if r.id not in before]

    def result(self, run_id: str) -> RunResult:
        """A run as it stands now."""
        runs = self.app.runs
        run = runs.get_run(run_id)
        return build_result(run, runs.task_runs(run.id), runs.attempts(run.id), self._logs(run.id))

    def runs(self, workflow: str | None = None) -> list[RunResult]:
        """Every run (of `workflow`), oldest first."""
        found = self.app.runs.list_runs(RunFilter(workflow=workflow, limit=100_000))
        return [self.result(r.id) for r in reversed(found)]

    def cancel(self, run_id: str) -> RunResult:
        """Cancel a run; the run as it stands after."""
        self.app.runs.cancel(run_id)
        return self.result(run_id)

    @property
    def now(self) -> dt.datetime:
        """The harness's time, as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.clock.now(), dt.UTC)

    # ------------------------------------------------------------------ driving

    def _logs(self, run_id: str) -> list[Any]:
        out: list[Any] = []
        after = 0
        while True:
            page = self.app.runs.logs(run_id, after_id=after)
            if not page:
                return out
            out.extend(page)
            after = page[-1].id

    def _queues(self) -> tuple[str, ...]:
        queues = {"default"}
        for record in self.app.workflows.list_workflows():
            queues.update(t.queue for t in record.spec.tasks)
        return tuple(sorted(queues))

    def _ticker(self) -> Scheduler:
        """The scheduler that fires schedules and times runs out when the clock moves
        (no leases: it is the only one; no broker consumers: nothing to connect to)."""
        if self._scheduler is None:
            self._scheduler = self.app.runtime.scheduler(
                "harness", use_leases=False, max_sleep=_FAR, connections=None, retention=None
            )
        return self._scheduler

    def _drive(self, *, until: str | None, horizon: float | None = None) -> None:
        """Let a worker run what is due; when nothing is running or due, move the clock to
        the next retry (not past `horizon`). Stops once run `until` finished, or when
        nothing more can happen by `horizon`."""
        queues = self._queues()
        deadline = time.monotonic() + self.patience
        with self.app.runtime.in_process_worker(queues, self.concurrency) as worker:
            while True:
                if until is not None and self.app.runs.get_run(until).state.finished:
                    return
                self._check(worker, until, deadline)
                if worker.busy == 0 and self._idle(queues, horizon):
                    # Seen idle twice, a moment apart: a claim or a report in flight
                    # between two reads cannot pass for the end of the work.
                    self.app.runtime.wait_for_change(0.05)
                    if worker.busy == 0 and self._idle(queues, horizon):
                        return
                self.app.runtime.wait_for_change(0.02)

    def _idle(self, queues: tuple[str, ...], horizon: float | None) -> bool:
        """With no attempt counted by the worker: True when nothing can happen before
        `horizon`. When the next task is due later, the clock moves to then (and the
        scheduler ticks: timeouts and schedules see the time pass)."""
        if self._claimed():  # a claim is recorded before the worker counts the attempt
            return False
        due = self.app.runs.next_ready_at(queues)
        if due is None or (horizon is not None and due > horizon):
            return True
        now = self.clock.now()
        if due > now:
            self.clock.advance(due - now + 0.001)
            self._ticker().tick()
            self.app.runtime.wake_workers()
        return False

    def _claimed(self) -> bool:
        """Whether some task run is running (claimed) in the store."""
        for run in self.app.runs.list_runs(RunFilter(state=RunState.RUNNING, limit=100_000)):
            if any(t.state is TaskState.RUNNING for t in self.app.runs.task_runs(run.id)):
                return True
        return False

    def _check(self, worker: Worker, until: str | None, deadline: float) -> None:
        if worker.health.fatal is not None:
            raise HarnessError(f"the harness's worker stopped: {worker.health.fatal}")
        if time.monotonic() > deadline:
            what = f"run {until}" if until else "the runs"
            detail = self.result(until).describe() if until else ""
            raise HarnessError(
                f"{what} did not finish within {self.patience:.0f} s of real time"
                f" (a task that never returns?)\n{detail}"
            )


def json_data(spec: WorkflowSpec) -> dict[str, Any]:
    """A spec as the JSON data `register_spec` takes."""
    data: dict[str, Any] = json.loads(spec.to_json())
    return data

"""`App`: the one facade that the CLI (and later the API and UI) call.

It owns the store, the code registry of loaded workflow files, and the in-process worker
and housekeeping loop used by ``orchestrion run``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrion.clock import Clock, SystemClock
from orchestrion.config import Settings
from orchestrion.engine.maintenance import Maintenance, sweep
from orchestrion.errors import IllegalTransition, NotFound, OrchestrionError, SpecError
from orchestrion.spec.model import WorkflowSpec
from orchestrion.spec.params import resolve_params
from orchestrion.store import open_store
from orchestrion.store.base import (
    AttemptRecord,
    BackfillRecord,
    EventReceipt,
    EventRecord,
    LogRecord,
    RunFilter,
    RunRecord,
    Store,
    TaskRunRecord,
    WorkerRecord,
    WorkflowRecord,
)
from orchestrion.triggers import service
from orchestrion.triggers.scheduler import Scheduler
from orchestrion.triggers.service import ScheduleInfo
from orchestrion.worker.code import CodeRegistry
from orchestrion.worker.loop import Worker, WorkerSettings

__all__ = ["App", "load_workflows"]

ProgressCallback = Callable[[RunRecord, list[TaskRunRecord]], None]


def spec_from_data(data: Any, *, source: str) -> WorkflowSpec:
    """A spec from JSON data, with pydantic's complaints turned into one `SpecError`."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise SpecError("a workflow spec must be a JSON object", source=source)
    try:
        return WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        more = len(exc.errors()) - 1
        extra = f" (and {more} more)" if more else ""
        raise SpecError(f"{first['msg']}{extra}", source=source, path=path or None) from None


def load_workflows(path: str | os.PathLike[str]) -> list[tuple[WorkflowSpec, dict[str, Any]]]:
    """Specs (and, for Python files, their callables by ref) from a .py, .yaml or .yml file.
    Loading YAML never runs code; loading Python imports the file."""
    file = Path(path)
    if not file.exists():
        raise SpecError(f"no such file: {file}", source=str(file))
    suffix = file.suffix.lower()
    if suffix in (".yaml", ".yml"):
        from orchestrion.spec.yaml_loader import load_yaml_file

        return [(load_yaml_file(file), {})]
    if suffix == ".py":
        from orchestrion.spec.python import Workflow, load_python_file

        found: dict[str, Workflow] = {}
        pending = list(load_python_file(file))
        while pending:  # the file's workflows, then the sub-workflows they call
            wf = pending.pop(0)
            if wf.name not in found:
                found[wf.name] = wf
                pending.extend(wf.subworkflows.values())
        return [(wf.spec, dict(wf.callables)) for wf in found.values()]
    raise SpecError(
        f"unsupported workflow file type {suffix or '(none)'!r}: use .py, .yaml or .yml",
        source=str(file),
    )


class App:
    def __init__(self, settings: Settings | None = None, clock: Clock | None = None) -> None:
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        self.code = CodeRegistry()
        self._store: Store | None = None

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> App:
        if self._store is None:
            self._store = open_store(self.settings.database_url)
        return self

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> App:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store(self) -> Store:
        if self._store is None:
            raise OrchestrionError("the App is not open: use `with App(...) as app` or app.open()")
        return self._store

    # ------------------------------------------------------------------ workflows

    def load(self, path: str | os.PathLike[str]) -> list[WorkflowSpec]:
        """Load a workflow file, make its code available to local workers, register it."""
        loaded = load_workflows(path)
        self.register_loaded(loaded, source=path)
        return [spec for spec, _ in loaded]

    def register_loaded(
        self, loaded: list[tuple[WorkflowSpec, dict[str, Any]]], *, source: str | os.PathLike[str]
    ) -> None:
        """Register what `load_workflows` returned (split from loading so that callers can
        check their choice and parameters before anything is written)."""
        where = str(Path(source).resolve())
        for spec, callables in loaded:
            self.code.add(callables)
            self.store.register_workflow(spec, source=where, now=self.clock.now())

    def workflow(self, name: str, version: str | None = None) -> WorkflowSpec:
        return self.store.get_workflow(name, version).spec

    def workflow_record(self, name: str, version: str | None = None) -> WorkflowRecord:
        return self.store.get_workflow(name, version)

    def list_workflows(self) -> list[WorkflowRecord]:
        return self.store.list_workflows()

    def workflow_versions(self, name: str) -> list[WorkflowRecord]:
        return self.store.list_versions(name)

    def register_spec(self, data: dict[str, Any], *, source: str | None) -> WorkflowRecord:
        """Register a spec given as JSON data (the API's and `deploy`'s way in)."""
        spec = spec_from_data(data, source=source or "request")
        self.store.register_workflow(spec, source=source, now=self.clock.now())
        return self.store.get_workflow(spec.name, spec.version)

    def paused_workflows(self) -> set[str]:
        return self.store.paused_workflows()

    def set_paused(self, name: str, paused: bool) -> None:
        self.store.get_workflow(name)  # NotFound for an unknown workflow
        self.store.set_paused(name, paused, now=self.clock.now())

    # ------------------------------------------------------------------ runs

    def trigger(
        self,
        workflow: str,
        params: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        trigger: str = "manual",
        priority: int = 0,
    ) -> RunRecord:
        spec = self.workflow(workflow)
        resolved = resolve_params(spec, params or {})
        return self.store.create_run(
            spec,
            resolved,
            now=self.clock.now(),
            trigger=trigger,
            priority=priority,
            idempotency_key=idempotency_key,
        )

    def cancel(self, run_id: str) -> bool:
        return self.store.cancel_run(run_id, now=self.clock.now())

    def retry(self, run_id: str) -> bool:
        return self.store.retry_run(run_id, now=self.clock.now())

    def mark_task(self, run_id: str, task: str, *, succeeded: bool) -> RunRecord:
        """Set a task's outcome by hand (see `Store.mark_task`)."""
        run = self.store.get_run(run_id)
        self.store.mark_task(run.id, task, succeeded=succeeded, now=self.clock.now())
        return self.store.get_run(run.id)

    def rerun_from(self, run_id: str, task: str) -> RunRecord:
        """Rerun from a chosen task as a new run (see `Store.rerun_from`)."""
        new_id = self.store.rerun_from(self.store.get_run(run_id).id, task, now=self.clock.now())
        return self.store.get_run(new_id)

    def cancel_or_raise(self, run_id: str) -> None:
        """Cancel a run; `IllegalTransition` when it already finished."""
        run = self.store.get_run(run_id)
        if not self.store.cancel_run(run.id, now=self.clock.now()):
            state = self.store.get_run(run.id).state.value
            raise IllegalTransition(f"run {run.id} is already {state}")

    def retry_or_raise(self, run_id: str) -> None:
        """Re-open a failed or canceled run; `IllegalTransition` names why not otherwise."""
        run = self.store.get_run(run_id)
        if not self.store.retry_run(run.id, now=self.clock.now()):
            state = self.store.get_run(run.id).state.value
            why = "it was compensated; start a new run" if state == "failed" else f"it is {state}"
            raise IllegalTransition(f"run {run.id} cannot be retried: {why}")

    def prepare_resume(self, run_id: str) -> RunRecord:
        """Make a crashed or failed run runnable here: reload its code, reclaim the leases of
        dead local workers, re-open it if it ended in failure."""
        run = self.store.get_run(run_id)
        record = self.store.get_workflow(run.workflow, run.version)
        if record.source and Path(record.source).exists():
            for spec, callables in load_workflows(record.source):
                self.code.add(callables)
                self.store.register_workflow(spec, source=record.source, now=self.clock.now())
        self.recover_dead_workers()
        sweep(self.store, self.clock.now())
        run = self.store.get_run(run.id)
        if run.state.value in ("failed", "canceled"):
            self.store.retry_run(run.id, now=self.clock.now())
        return self.store.get_run(run.id)

    def recover_dead_workers(self) -> int:
        """Expire the leases of workers on this host whose process is gone, so their task runs
        are retried now instead of after the lease time."""
        host, count = socket.gethostname(), 0
        for worker in self.store.list_workers():
            if worker.host == host and worker.state == "running" and not _alive(worker.pid):
                count += self.store.expire_worker(worker.id, now=self.clock.now())
        return count

    def run_until_done(
        self,
        run_id: str,
        *,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        every: float = 0.25,
    ) -> RunRecord:
        """Drive a run to a final state with an in-process worker (``orchestrion run``)."""
        queues = tuple(sorted({t.queue for t in self._all_tasks(run_id)} | {"default"}))
        worker = Worker(
            self.store,
            self.code,
            WorkerSettings(
                queues=queues,
                concurrency=concurrency or self.settings.concurrency,
                lease_seconds=self.settings.lease_seconds,
                heartbeat_every=self.settings.heartbeat_every,
                labels=None,  # a local run runs all of its tasks, whatever they require
            ),
            self.clock,
        )
        housekeeping = Maintenance(self.store, self.clock, every=1.0)
        worker.start()
        housekeeping.start()
        grace = 5.0
        try:
            while True:
                run = self.store.get_run(run_id)
                if on_progress is not None:
                    on_progress(run, self.store.list_task_runs(run.id))
                if run.state.finished:
                    if run.state.value == "canceled":
                        grace = 0.0  # its attempts are moot: stop them now, do not wait
                    return run
                self.store.wait_for_change(every)
        finally:
            housekeeping.stop()
            worker.stop(grace=grace)

    def _all_tasks(self, run_id: str) -> list[Any]:
        run = self.store.get_run(run_id)
        spec = self.workflow(run.workflow, run.version)
        tasks: list[Any] = list(spec.tasks)
        for task in spec.tasks:
            if task.action.kind == "workflow":
                with contextlib.suppress(NotFound):
                    tasks.extend(self.workflow(task.action.workflow).tasks)
        return tasks

    # ------------------------------------------------------------------ reads

    def get_run(self, run_id: str) -> RunRecord:
        return self.store.get_run(run_id)

    def list_runs(self, filt: RunFilter | None = None) -> list[RunRecord]:
        return self.store.list_runs(filt or RunFilter())

    def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        return self.store.list_task_runs(self.store.get_run(run_id).id)

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        return self.store.list_attempts(self.store.get_run(run_id).id)

    def events(self, run_id: str, after_id: int = 0) -> list[EventRecord]:
        return self.store.list_events(self.store.get_run(run_id).id, after_id=after_id)

    def logs(
        self, run_id: str, task: str | None = None, after_id: int = 0, limit: int = 10_000
    ) -> list[LogRecord]:
        return self.store.get_logs(
            self.store.get_run(run_id).id, task_name=task, after_id=after_id, limit=limit
        )

    def all_events(self, *, after_id: int = 0, limit: int = 1000) -> list[EventRecord]:
        return self.store.list_events(None, after_id=after_id, limit=limit)

    def events_after(
        self, run_id: str | None, after_id: int, limit: int = 500
    ) -> list[EventRecord]:
        """New history rows (of one run, or of all) for live followers."""
        return self.store.list_events(run_id, after_id=after_id, limit=limit)

    def last_event_id(self) -> int:
        return self.store.last_event_id()

    def wait_for_events(self, seen: int, timeout: float) -> int:
        """Block until new history may exist (pushed by this or another process) since the
        change counter was `seen`; returns the current counter."""
        return self.store.wait_for_events(seen, timeout)

    def running_by_worker(self) -> dict[str, list[TaskRunRecord]]:
        return self.store.running_by_worker()

    def list_workers(self) -> list[WorkerRecord]:
        return self.store.list_workers()

    # ------------------------------------------------------------------ triggers

    def send_event(
        self, event_type: str, payload: Any, event_id: str | None = None, *, source: str = "api"
    ) -> list[str]:
        """Start every workflow whose event trigger matches; the ids of the runs started.
        An `event_id` seen before starts nothing new (its first delivery's runs are
        returned); without one, a fresh id is generated."""
        return list(self.receive_event(event_type, payload, event_id, source=source).run_ids)

    def receive_event(
        self, event_type: str, payload: Any, event_id: str | None = None, *, source: str = "api"
    ) -> EventReceipt:
        """`send_event` with the full receipt (duplicate flag, trigger errors)."""
        event_id = event_id if event_id is not None else f"ev-{secrets.token_hex(12)}"
        return service.send_event(
            self.store, self.clock.now(), event_type, payload, event_id, source=source
        )

    def create_backfill(
        self,
        workflow: str,
        start: str | float,
        end: str | float,
        *,
        schedule: str | None = None,
        max_active: int = 1,
        dry_run: bool = False,
    ) -> BackfillRecord:
        """Runs for every nominal time of a schedule in [start, end] (ISO dates or
        datetimes in the schedule's time zone; a date-only end includes its day), paced by
        the scheduler at most `max_active` at once, at a priority below fresh runs. A dry
        run records nothing and returns the plan."""
        return service.create_backfill(
            self.store,
            self.clock.now(),
            workflow,
            start,
            end,
            schedule=schedule,
            max_active=max_active,
            dry_run=dry_run,
        )

    def list_backfills(self, workflow: str | None = None) -> list[BackfillRecord]:
        return self.store.list_backfills(workflow=workflow)

    def get_backfill(self, backfill_id: str) -> BackfillRecord:
        return self.store.get_backfill(backfill_id)

    def cancel_backfill(self, backfill_id: str) -> bool:
        """Stop a backfill and cancel its unfinished runs; False if it had already ended."""
        return self.store.cancel_backfill(backfill_id, now=self.clock.now())

    def list_schedules(self) -> list[ScheduleInfo]:
        """Every schedule of the latest workflow versions, with its next fire time."""
        return service.list_schedules(self.store)

    def scheduler(self, holder_id: str | None = None, **options: Any) -> Scheduler:
        """A scheduler on this App's store and clock (run it with `run_forever`)."""
        return Scheduler(self.store, self.clock, holder_id, **options)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True

"""`App`: the one facade that the CLI (and later the API and UI) call.

It owns the store, the code registry of loaded workflow files, and the in-process worker
and housekeeping loop used by ``orchestrion run``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrion import app_reads, secret_service
from orchestrion.accounts import Accounts
from orchestrion.auth.secret_box import KeyRing, Secret, load_key_ring
from orchestrion.clock import Clock, SystemClock
from orchestrion.config import Settings
from orchestrion.errors import IllegalTransition, NotFound, OrchestrionError, SpecError
from orchestrion.spec.loading import load_workflows, spec_from_data
from orchestrion.spec.model import NAME_PATTERN, WorkflowSpec
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
    SecretMeta,
    Store,
    TaskRunRecord,
    WorkerRecord,
    WorkflowRecord,
)
from orchestrion.store.sql_slots import QueueLimit
from orchestrion.triggers import service, webhooks
from orchestrion.triggers.events import listening_namespaces
from orchestrion.triggers.maintenance import Maintenance, sweep
from orchestrion.triggers.scheduler import Scheduler
from orchestrion.triggers.service import ScheduleInfo
from orchestrion.worker.code import CodeRegistry
from orchestrion.worker.liveness import alive
from orchestrion.worker.loop import Worker, WorkerSettings
from orchestrion.worker.sizing import DEFAULT_CONCURRENCY

__all__ = ["Actor", "App", "load_workflows", "spec_from_data"]

ProgressCallback = Callable[[RunRecord, list[TaskRunRecord]], None]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts through this App when no request does: a local CLI user (``cli:ana``).
    With an actor set, every mutating App method appends its own audit record; an App
    behind the API has none, because the API audits each request itself."""

    name: str
    kind: str = "cli"


class App:
    def __init__(
        self,
        settings: Settings | None = None,
        clock: Clock | None = None,
        *,
        actor: Actor | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        self.actor = actor
        self.code = CodeRegistry()
        self._store: Store | None = None
        self._accounts: Accounts | None = None

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

    @property
    def accounts(self) -> Accounts:
        """Users, tokens, sessions and the audit log (one per App: the login limiter
        remembers failures across requests)."""
        if self._accounts is None:
            self._accounts = Accounts(self.store, self.clock)
        return self._accounts

    @contextlib.contextmanager
    def audited(
        self,
        action: str,
        obj: str,
        *,
        workflow: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> Iterator[None]:
        """One audit record for the action in the block, with its outcome, when this App
        acts for someone (`actor`); nothing otherwise (the API audits its own requests)."""
        if self.actor is None:
            yield
            return
        outcome, detail = "ok", None
        try:
            yield
        except OrchestrionError as exc:
            outcome, detail = "failed", str(exc)
            raise
        finally:
            namespace = None
            if workflow is not None:
                with contextlib.suppress(NotFound):
                    namespace = self.namespace_of(workflow)
            self.accounts.audit(
                actor=self.actor.name,
                actor_kind=self.actor.kind,
                action=action,
                object=obj,
                namespace=namespace,
                params=params,
                outcome=outcome,
                detail=detail,
                source="local",
            )

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
            if self.actor is None:
                self.store.register_workflow(spec, source=where, now=self.clock.now())
                continue
            with self.audited(
                "workflow.deploy",
                f"workflow {spec.namespace}/{spec.name}",
                params={"version": spec.version, "source": where},
            ):
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

    def namespace_of(self, workflow: str) -> str:
        """The namespace of a workflow's newest version (`NotFound` for an unknown one)."""
        return self.store.get_workflow(workflow).namespace

    def namespaces_of(self, workflows: Iterable[str]) -> dict[str, str]:
        """Namespaces of several workflows in one read (unknown names are left out)."""
        wanted = set(workflows)
        return {r.name: r.namespace for r in self.store.list_workflows() if r.name in wanted}

    def paused_workflows(self) -> set[str]:
        return self.store.paused_workflows()

    def set_paused(self, name: str, paused: bool) -> None:
        action = "workflow.pause" if paused else "workflow.unpause"
        with self.audited(action, f"workflow {name}", workflow=name):
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
        with self.audited(
            "run.trigger", f"workflow {workflow}", workflow=workflow, params={"params": params}
        ):
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
        args = {"task": task, "succeeded": succeeded}
        with self.audited("run.mark", f"run {run_id}", params=args):
            run = self.store.get_run(run_id)
            self.store.mark_task(run.id, task, succeeded=succeeded, now=self.clock.now())
            return self.store.get_run(run.id)

    def rerun_from(self, run_id: str, task: str) -> RunRecord:
        """Rerun from a chosen task as a new run (see `Store.rerun_from`)."""
        with self.audited("run.rerun", f"run {run_id}", params={"from_task": task}):
            old = self.store.get_run(run_id)
            new_id = self.store.rerun_from(old.id, task, now=self.clock.now())
            return self.store.get_run(new_id)

    def cancel_or_raise(self, run_id: str) -> None:
        """Cancel a run; `IllegalTransition` when it already finished."""
        with self.audited("run.cancel", f"run {run_id}"):
            run = self.store.get_run(run_id)
            if not self.store.cancel_run(run.id, now=self.clock.now()):
                state = self.store.get_run(run.id).state.value
                raise IllegalTransition(f"run {run.id} is already {state}")

    def retry_or_raise(self, run_id: str) -> None:
        """Re-open a failed or canceled run; `IllegalTransition` names why not otherwise."""
        with self.audited("run.retry", f"run {run_id}"):
            run = self.store.get_run(run_id)
            if not self.store.retry_run(run.id, now=self.clock.now()):
                state = self.store.get_run(run.id).state.value
                why = (
                    "it was compensated; start a new run" if state == "failed" else f"it is {state}"
                )
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
            if worker.host == host and worker.state == "running" and not alive(worker.pid):
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
                concurrency=concurrency or self.settings.concurrency or DEFAULT_CONCURRENCY,
                lease_seconds=self.settings.lease_seconds,
                heartbeat_every=self.settings.heartbeat_every,
                http_allow=self.settings.http_allow,
                labels=None,  # a local run runs all of its tasks, whatever they require
            ),
            self.clock,
            secrets=self.resolve_secrets,
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

    # ------------------------------------------------------------ web UI reads (issue 5)
    # Composite reads for summary pages: a fixed number of batched store reads each.

    def workflow_summaries(
        self, *, per: int = 10, visible: app_reads.Visible = None
    ) -> list[app_reads.WorkflowSummary]:
        """Every (visible) workflow with its paused flag, schedules and newest `per` runs."""
        return app_reads.workflow_summaries(self.store, per=per, visible=visible)

    def overview(self, *, rows: int = 10, visible: app_reads.Visible = None) -> app_reads.Overview:
        """Runs of the last 24 h by state, running runs, recent failures, workers and their
        load, and the next scheduled fires (of the `visible` workflows, when given)."""
        return app_reads.overview(self.store, now=self.clock.now(), rows=rows, visible=visible)

    def task_inputs(self, run_id: str, task: str) -> app_reads.TaskInputs:
        """The parameters, upstream results and (for a mapped task) items of `task`."""
        run = self.store.get_run(run_id)
        spec = self.workflow(run.workflow, run.version)
        try:
            task_spec = spec.task(task.removeprefix("undo:"))
        except KeyError:
            raise NotFound(f"run {run.id} has no task {task!r}") from None
        return app_reads.task_inputs(self.store, run, task_spec)

    def task_detail(self, run_id: str, task: str, item: int = -1) -> app_reads.TaskDetail:
        """One task of a run for its panel: task runs (or one item's), items, attempts,
        inputs; reads only that task's rows."""
        run = self.store.get_run(run_id)
        spec = self.workflow(run.workflow, run.version)
        known = {t.name: t for t in spec.tasks}
        return app_reads.task_detail(self.store, run, known.get(task), task, item)

    def find_events(
        self, *, kind: str = "", run_id: str = "", workflow: str = "", before: int = 0,
        limit: int = 200,
    ) -> list[EventRecord]:  # fmt: skip
        """The event history newest first, filtered (see `Store.find_events`)."""
        return self.store.find_events(
            kind=kind, run_id=run_id, workflow=workflow, before=before, limit=limit
        )

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
        with self.audited("events.send", f"event {event_type}", params={"id": event_id}):
            return service.send_event(
                self.store, self.clock.now(), event_type, payload, event_id, source=source
            )

    # -- for the HTTP edge (web-edges, issue 13): so that `web`/`api` import no trigger internals

    def event_namespaces(self, event_type: str) -> set[str]:
        """The namespaces whose workflows have a trigger on this event type: where sending
        it needs ``events.send``."""
        return listening_namespaces((r.spec for r in self.list_workflows()), event_type)

    def verify_webhook(
        self, name: str, headers: Mapping[str, str], body: bytes
    ) -> webhooks.Delivery:
        """A request to webhook `name`, verified with its configuration in the environment
        (read per request: a secret set later counts); send it with `receive_event`."""
        return webhooks.accept(name, os.environ, headers, body, self.clock.now())

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
        args = {"start": start, "end": end, "schedule": schedule, "max_active": max_active}
        with (
            contextlib.nullcontext()
            if dry_run
            else self.audited(
                "backfill.create", f"workflow {workflow}", workflow=workflow, params=args
            )
        ):
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
        with self.audited("backfill.cancel", f"backfill {backfill_id}"):
            return self.store.cancel_backfill(backfill_id, now=self.clock.now())

    def list_schedules(self, workflow: str | None = None) -> list[ScheduleInfo]:
        """Every schedule of the latest workflow versions (or of `workflow`'s), with its
        next fire time."""
        records = None if workflow is None else [self.workflow_record(workflow)]
        return service.list_schedules(self.store, records)

    def scheduler(self, holder_id: str | None = None, **options: Any) -> Scheduler:
        """A scheduler on this App's store and clock (run it with `run_forever`)."""
        return Scheduler(self.store, self.clock, holder_id, **options)

    # ------------------------------------------------------------------ secrets
    # Values go in (set) and, for workers only, come out (resolve_secrets); every other
    # read returns names and metadata. Sealing happens here, so the store never sees one.

    @property
    def key_ring(self) -> KeyRing:
        """The configured master keys, or `SecretError` saying how to configure one."""
        if self.settings.key_ring is None:
            return load_key_ring({}, dev_mode=False)  # raises, with the how-to
        return self.settings.key_ring

    def set_secret(self, namespace: str, name: str, value: str | Secret) -> bool:
        """Create or replace ``namespace/name``; True if it was created."""
        with self.audited("secret.set", f"secret {namespace}/{name}"):  # never the value
            return secret_service.put(
                self.store, self.key_ring, namespace, name, value, self.clock.now()
            )

    def list_secrets(self, namespace: str | None = None) -> list[SecretMeta]:
        """Names and metadata (never values), of one namespace or all."""
        return self.store.list_secrets(namespace)

    def delete_secret(self, namespace: str, name: str) -> None:
        """Delete ``namespace/name``, or `NotFound`."""
        with self.audited("secret.delete", f"secret {namespace}/{name}"):
            secret_service.check_name(namespace, name)
            if not self.store.delete_secret(namespace, name, now=self.clock.now()):
                raise NotFound(f"secret {namespace}/{name} does not exist")

    def rotate_secrets(self) -> int:
        """Re-encrypt every secret under the current (first) master key; how many changed.
        Afterwards the older keys may be removed from ``ORCHESTRION_MASTER_KEY``."""
        with self.audited("secrets.rotate", "secrets"):
            return secret_service.reseal_all(self.store, self.key_ring, self.clock.now())

    def resolve_secrets(self, namespace: str, names: Collection[str]) -> dict[str, Secret]:
        """The values of `names` in `namespace`, for a worker about to run a task that
        declared them. `NotFound` names a missing one."""
        if not names:
            return {}
        return secret_service.resolve(self.store, self.key_ring, namespace, names)

    # ------------------------------------------------------------------ slots (queue limits)
    # Per-key limits come with the workflow (a task's concurrency_key and key_limit); queue
    # limits are the operator's, set here (see orchestrion.store.slots).

    def set_queue_limit(self, queue: str, max_running: int) -> None:
        """At most `max_running` task runs of `queue` run at once, across all workers."""
        with self.audited("queue.limit", f"queue {queue}", params={"max_running": max_running}):
            if not re.fullmatch(NAME_PATTERN, queue):
                raise SpecError(f"bad queue name {queue[:100]!r}")
            if max_running < 1:
                raise SpecError("a queue limit is at least 1")
            self.store.set_queue_limit(queue, max_running, now=self.clock.now())

    def clear_queue_limit(self, queue: str) -> None:
        """Let `queue` run without a limit again; `NotFound` if it had none."""
        with self.audited("queue.unlimit", f"queue {queue}"):
            if not self.store.clear_queue_limit(queue, now=self.clock.now()):
                raise NotFound(f"queue {queue[:100]!r} has no limit")

    def queue_limits(self) -> list[QueueLimit]:
        """Every queue limit, with how many of the queue's task runs are running now."""
        return self.store.queue_limits(now=self.clock.now())

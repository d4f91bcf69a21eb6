"""`App.runtime`: the runtime builder, the one place outside tests that builds a `Worker`,
a `Scheduler` or the housekeeping loop (`Maintenance`), and wires them to the App's store,
code registry, clock and secrets.

``orchestrion worker`` runs `Runtime.worker` (planned by `plan_worker`), ``orchestrion
scheduler`` and ``orchestrion server`` a `Runtime.service_scheduler`, ``orchestrion run``
`Runtime.run_until_done`. What is not wiring stays with the command: signals, child
processes, serving the API over HTTP, printing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

import msgspec

from orchestrion.app.core import Core, Facet
from orchestrion.app.settings import Settings
from orchestrion.brokers.endpoint import ConnectionResolver
from orchestrion.errors import NotFound, OrchestrionError, StoreError
from orchestrion.spec.model import SubWorkflowAction, TaskSpec
from orchestrion.store.records import RunRecord, TaskRunRecord
from orchestrion.telemetry.tracing import Tracer, start_tracing
from orchestrion.triggers.leases import DutyLease
from orchestrion.triggers.maintenance import Maintenance
from orchestrion.triggers.traces import RunSpans
from orchestrion.worker.executor_choice import executor_from_name
from orchestrion.worker.executors import Executor
from orchestrion.worker.loop import Worker, WorkerSettings
from orchestrion.worker.secrets import HIDDEN_ENV, SecretResolver
from orchestrion.worker.sizing import DEFAULT_CONCURRENCY, default_concurrency

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.app.projects.sync import SyncDuty
    from orchestrion.triggers.notifications import Notifications
    from orchestrion.triggers.openlineage import LineageEmitter
    from orchestrion.triggers.scheduler import Scheduler
    from orchestrion.triggers.waits import WaitDuty
    from orchestrion.worker.containers.reaper import ContainerReaper

__all__ = [
    "DEFAULT_CONCURRENCY",
    "ProgressCallback",
    "Runtime",
    "WorkerPlan",
    "hide_master_key",
    "plan_worker",
]

#: Called on every poll of `Runtime.run_until_done` with the run and its task runs.
ProgressCallback = Callable[[RunRecord, list[TaskRunRecord]], None]


class WorkerPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker process will run, settled before its database is opened, so that a
    bad ``--executor`` is refused before anything else happens."""

    queues: tuple[str, ...]
    concurrency: int
    labels: Mapping[str, str]
    #: The ``--executor`` name, and the executor it made (None: the worker's threads).
    executor_name: str
    executor: Executor | None


def plan_worker(
    settings: Settings,
    *,
    queues: tuple[str, ...],
    concurrency: int | None,
    labels: Mapping[str, str] | None,
    executor: str,
) -> WorkerPlan:
    """The plan for ``orchestrion worker``: concurrency from the flag, else the settings,
    else sized by executor (`orchestrion.worker.sizing`); `OrchestrionError` for an
    unknown executor."""
    return WorkerPlan(
        queues=queues,
        concurrency=concurrency or settings.concurrency or default_concurrency(executor),
        labels=dict(labels or {}),
        executor_name=executor,
        executor=executor_from_name(executor),
    )


def hide_master_key() -> None:
    """Drop the master key from this process's environment: the worker has it in its
    settings already, and tasks (Python code in this process, and the processes it
    starts) need not see it."""
    for name in HIDDEN_ENV:
        os.environ.pop(name, None)


#: The action kinds of steps that wait without a worker (`orchestrion.spec.waits`).
_WAITING = ("approval", "wait")


class Runtime(Facet):
    """Builds the long-running parts over an open App."""

    def __init__(
        self, core: Core, *, secrets: SecretResolver, connections: ConnectionResolver
    ) -> None:
        super().__init__(core)
        self._secrets = secrets
        self._connections = connections

    @contextlib.contextmanager
    def worker(self, plan: WorkerPlan, *, grace: float) -> Iterator[Worker]:
        """A started worker for `plan`. On leaving it stops (in-flight attempts get `grace`
        seconds to finish, or are released) and its executor is closed. Its spans go where
        the ``OTEL_*`` environment says, if it says (`start_tracing`)."""
        tracer = start_tracing("orchestrion")
        worker = Worker(
            self.store.runs,
            self.store.workflows,
            self.store.notifier,
            self._core.code,
            WorkerSettings(
                queues=plan.queues,
                concurrency=plan.concurrency,
                lease_seconds=self._core.settings.lease_seconds,
                heartbeat_every=self._core.settings.heartbeat_every,
                http_allow=self._core.settings.http_allow,
                labels=dict(plan.labels),
                containers=self._core.settings.containers,
                results=self._core.result_files(),
            ),
            self.clock,
            secrets=self._secrets,
            executor=plan.executor,
            tracer=tracer,
            connections=self._connections,
            cache=lambda: self.store.cache,
        )
        # Workers take part in reaping under the maintenance duty's lease (the one
        # schedulers hold), so a killed worker's tasks are retried while only workers run.
        housekeeping = self.leased_maintenance(f"worker:{worker.id}")
        reaper = self._container_reaper()
        spans = None if tracer is None else self.run_spans(f"worker:{worker.id}", tracer)
        worker.start()
        housekeeping.start()
        if reaper is not None:
            reaper.start()
        if spans is not None:
            spans.start()
        try:
            yield worker
        finally:
            if reaper is not None:
                reaper.stop()
            housekeeping.stop()
            worker.stop(grace=grace)
            if spans is not None:
                spans.stop()  # after the worker: runs its last outcomes ended get spans
            if tracer is not None:
                tracer.shutdown()
            if plan.executor is not None:
                plan.executor.close()

    def _container_reaper(self) -> ContainerReaper | None:
        """On a machine with a container engine, what removes the containers of attempts
        whose lease was reaped (a worker killed mid-task); it looks once per lease."""
        settings = self._core.settings
        if not settings.containers.configured():
            return None
        from orchestrion.worker.containers.reaper import ContainerReaper

        every = max(settings.lease_seconds, 1.0)
        return ContainerReaper(self.store.reads.attempts_of, settings.containers, every=every)

    def leased_maintenance(self, holder_id: str, every: float = 2.0) -> Maintenance:
        """The housekeeping loop under the ``maintenance`` duty's lease: it sweeps only
        while no other process (a scheduler, another worker) holds that duty."""
        lease = DutyLease(
            self.store.triggers, "maintenance", holder_id, self._core.settings.lease_seconds
        )
        return Maintenance(self.store.runs, self.clock, every=every, lease=lease)

    def run_spans(self, holder_id: str, tracer: Tracer, *, close_tracer: bool = False) -> RunSpans:
        """The ``traces`` duty under its lease: a root span for every run that ends, however
        it ends (`orchestrion.triggers.traces`). Only processes that trace take part."""
        lease = DutyLease(
            self.store.triggers, "traces", holder_id, self._core.settings.lease_seconds
        )
        return RunSpans(
            self.store.runs,
            self.store.triggers,
            tracer,
            self.clock,
            lease=lease,
            close_tracer=close_tracer,
        )

    def scheduler(self, holder_id: str | None = None, **options: Any) -> Scheduler:
        """A scheduler on this App's store and clock (run it with `run_forever`)."""
        # Imported by the commands that run one: `orchestrion run` has no use for it.
        from orchestrion.triggers.scheduler import Scheduler

        return Scheduler(
            self.store.triggers,
            self.store.workflows,
            self.store.runs,
            self.clock,
            holder_id,
            connections=options.pop("connections", self._connections),
            retention=(
                options.pop("retention") if "retention" in options else self._core.pruning()
            ),
            assets=self.store.assets,
            policies=self.store.policies,
            **options,
        )

    def lineage(self) -> LineageEmitter | None:
        """The OpenLineage duty of ``ORCHESTRION_OPENLINEAGE_URL``, or None when unset."""
        url = self._core.settings.openlineage_url
        if url is None:
            return None
        from orchestrion.triggers.openlineage import LineageEmitter

        store = self.store
        return LineageEmitter(
            url,
            reads=store.reads,
            workflows=store.workflows,
            triggers=store.triggers,
            assets=store.assets,
        )

    def service_scheduler(self) -> Scheduler:
        """The scheduler ``orchestrion scheduler`` and ``server`` run: its duties fail over
        within the configured lease (``ORCHESTRION_LEASE_SECONDS``); it also runs the
        notifications duty."""
        scheduler = self.scheduler(lease_ttl=self._core.settings.lease_seconds)
        scheduler.notifications = self.notifications(scheduler.holder_id)
        scheduler.waits = self.wait_duty(scheduler.holder_id)
        scheduler.sync = self.sync_duty(scheduler.holder_id)
        scheduler.lineage = self.lineage()
        tracer = start_tracing("orchestrion")
        if tracer is not None:  # runs canceled or timed out here get their spans too
            scheduler.traces = self.run_spans(scheduler.holder_id, tracer, close_tracer=True)
        return scheduler

    def sync_duty(self, holder_id: str) -> SyncDuty:
        """The ``sync`` duty under its lease: each configured Git source's new commits,
        validated and applied (`orchestrion.app.projects.sync`)."""
        from orchestrion.app.projects.sync import SyncDuty

        settings = self._core.settings
        # The lease is renewed by each pass: it must outlive the time between two, or every
        # scheduler's own timer would find it lapsed and take its turn.
        ttl = max(settings.lease_seconds, 2 * settings.sync_every)
        lease = DutyLease(self.store.triggers, "sync", holder_id, ttl)
        app = cast("App", self._core)  # the Core is the App: projects are its facet
        return SyncDuty(app, lease=lease, every=settings.sync_every)

    def wait_duty(self, holder_id: str | None, **options: Any) -> WaitDuty:
        """The ``waits`` duty (timeouts and sensor checks of waiting steps), under its lease
        when given a holder (`orchestrion.triggers.waits`)."""
        from orchestrion.triggers.waits import WaitDuty

        settings = self._core.settings
        lease = None
        if holder_id is not None:
            lease = DutyLease(self.store.triggers, "waits", holder_id, settings.lease_seconds)
        return WaitDuty(
            self.store.waits,
            self.store.workflows,
            self.clock,
            allow=settings.http_allow,
            connections=self._connections,
            reads=self.store.reads,
            lease=lease,
            **options,
        )

    def notifications(self, holder_id: str, **options: Any) -> Notifications:
        """The ``notifications`` duty under its lease: outbox rows from the history and
        from late runs, sent with retries (`orchestrion.triggers.notifications`)."""
        from orchestrion.triggers.notifications import Notifications
        from orchestrion.triggers.notify_send import Outbound

        settings = self._core.settings
        lease = DutyLease(self.store.triggers, "notifications", holder_id, settings.lease_seconds)
        return Notifications(
            self.store.notifications,
            self.store.triggers,
            self.store.workflows,
            self.store.reads,
            self.clock,
            self._open_secret,
            outbound=Outbound(allow=settings.http_allow),
            lease=lease,
            **options,
        )

    def _open_secret(self, namespace: str, name: str) -> str:
        return self._secrets(namespace, [name])[name].reveal()

    @contextlib.contextmanager
    def scheduler_in_background(self) -> Iterator[Scheduler]:
        """`service_scheduler` running in a daemon thread until the block ends."""
        scheduler = self.service_scheduler()
        stop = threading.Event()
        thread = threading.Thread(
            target=scheduler.run_forever, args=(stop,), daemon=True, name="scheduler"
        )
        thread.start()
        try:
            yield scheduler
        finally:
            stop.set()
            thread.join(timeout=10)

    def follow_other_processes(self) -> None:
        """Let live streams see history that other processes (the server's workers) write."""
        self.store.notifier.listen(work=False, history=True)

    def run_until_done(
        self,
        run_id: str,
        *,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        every: float = 0.25,
    ) -> RunRecord:
        """Drive a run to a final state with an in-process worker (``orchestrion run``)."""
        tasks = self._all_tasks(run_id)
        queues = tuple(sorted({t.queue for t in tasks} | {"default"}))
        settings = self._core.settings
        tracer = start_tracing("orchestrion")
        worker = self._local_worker(
            queues, concurrency or settings.concurrency or DEFAULT_CONCURRENCY, tracer
        )
        housekeeping = Maintenance(self.store.runs, self.clock, every=1.0)
        spans = None if tracer is None else self.run_spans(f"run:{worker.id}", tracer)
        # Only for a workflow with container tasks: a killed `orchestrion run` left its
        # container running, and `--resume` removes it once the old lease is reaped.
        uses_containers = any(t.action.kind == "container" for t in tasks)
        reaper = self._container_reaper() if uses_containers else None
        # A workflow with waiting steps: their timeouts and sensors are resolved here too
        # (no lease: a scheduler elsewhere may do the same; resolutions are guarded).
        waits = self.wait_duty(None) if any(t.action.kind in _WAITING for t in tasks) else None
        helpers = [h for h in (reaper, waits) if h is not None]
        if spans is not None:
            spans.start()  # before the worker: the cursor is placed before the run can end
        worker.start()
        housekeeping.start()
        for helper in helpers:
            helper.start()
        grace = 5.0
        try:
            while True:
                _check_worker(worker, run_id, settings.store_patience)
                run = self.store.reads.get_run(run_id)
                if on_progress is not None:
                    on_progress(run, self.store.reads.list_task_runs(run.id))
                if run.state.finished:
                    if run.state.value == "canceled":
                        grace = 0.0  # its attempts are moot: stop them now, do not wait
                    return run
                self.store.notifier.wait_for_change(every)
        finally:
            for helper in helpers:
                helper.stop()
            housekeeping.stop()
            worker.stop(grace=grace)
            if spans is not None:
                spans.stop()  # emits the span of the run that just ended
            if tracer is not None:
                tracer.shutdown()

    @contextlib.contextmanager
    def in_process_worker(self, queues: tuple[str, ...], concurrency: int = 4) -> Iterator[Worker]:
        """A started worker in this process that runs every task of `queues`, whatever it
        requires, on the App's clock; stopped when the block ends. Nothing sweeps beside
        it: whoever drives it moves time (`orchestrion.testing`)."""
        worker = self._local_worker(queues, concurrency, None)
        worker.start()
        try:
            yield worker
        finally:
            worker.stop(grace=5.0)

    def _local_worker(
        self, queues: tuple[str, ...], concurrency: int, tracer: Tracer | None
    ) -> Worker:
        """A worker in this process for `orchestrion run` and the test harness: every task
        of `queues` whatever it requires (no labels), with the App's result store and task
        cache, so a local run stores large results and reuses cached ones as workers do."""
        settings = self._core.settings
        return Worker(
            self.store.runs,
            self.store.workflows,
            self.store.notifier,
            self._core.code,
            WorkerSettings(
                queues=queues,
                concurrency=concurrency,
                lease_seconds=settings.lease_seconds,
                heartbeat_every=settings.heartbeat_every,
                http_allow=settings.http_allow,
                containers=settings.containers,
                labels=None,
                results=self._core.result_files(),
            ),
            self.clock,
            secrets=self._secrets,
            tracer=tracer,
            connections=self._connections,
            cache=lambda: self.store.cache,
        )

    def wake_workers(self) -> None:
        """Wake this process's idle workers to look for work at once (after the clock moved)."""
        self.store.notifier.wake()

    def wait_for_change(self, seconds: float) -> None:
        """Block until a task run may have become ready (in this process), or `seconds`."""
        self.store.notifier.wait_for_change(seconds)

    def _all_tasks(self, run_id: str) -> list[TaskSpec]:
        """The run's tasks and its sub-workflows' (whose queues a local worker serves)."""
        run = self.store.reads.get_run(run_id)
        spec = self.store.workflows.get_workflow(run.workflow, run.version).spec
        tasks = list(spec.tasks)
        for task in spec.tasks:
            if isinstance(task.action, SubWorkflowAction):
                with contextlib.suppress(NotFound):
                    tasks.extend(self.store.workflows.get_workflow(task.action.workflow).spec.tasks)
        return tasks


def _check_worker(worker: Worker, run_id: str, patience: float) -> None:
    """Stop driving the run, with a message that says how to finish it, when the worker
    cannot go on: a thread of it died, or the database has refused writes (a full disk)
    for longer than `patience` seconds. Nothing recorded so far is lost either way."""
    resume = f"finish the run with `orchestrion run --resume {run_id}`"
    if worker.health.fatal is not None:
        raise OrchestrionError(f"{worker.health.fatal}; {resume}")
    trouble = worker.health.trouble(worker.clock.monotonic())
    if trouble is not None and trouble[0] >= patience:
        seconds, error = trouble
        raise StoreError(
            f"the database has refused writes for {seconds:.0f} s ({error}). What was"
            f" recorded before is kept: once it accepts writes again (free disk space), {resume}"
        )

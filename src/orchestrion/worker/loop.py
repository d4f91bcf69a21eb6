"""The worker: claim -> run -> report, with heartbeats that extend leases and fence lost ones.

Threads: one claims work and hands it to a pool of `concurrency` threads (shell tasks run
as subprocesses from those threads); one heartbeats every `heartbeat_every` seconds, which
also flushes captured logs, stops attempts whose lease was lost or whose run was canceled,
and enforces timeouts of Python tasks that ignore cancellation
(`orchestrion.worker.heartbeat`). The attempts running here, which all these threads
share, are kept by `orchestrion.worker.attempts`; captured log lines wait in
`orchestrion.worker.logs` until they are flushed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import msgspec

from orchestrion.auth.secret_box import Secret
from orchestrion.auth.ssrf import AllowList
from orchestrion.brokers.endpoint import ConnectionResolver, Endpoint
from orchestrion.clock import Clock, SystemClock
from orchestrion.errors import OrchestrionError, SecretError, StoreError
from orchestrion.spec.model import TaskSpec, WorkflowSpec
from orchestrion.store.notifier import Notifier
from orchestrion.store.records import Claim, Outcome, WorkerRecord
from orchestrion.store.runs import RunStore
from orchestrion.store.workflows import WorkflowStore
from orchestrion.telemetry.tracing import Tracer, in_span, traceparent
from orchestrion.worker import runner
from orchestrion.worker.assets import with_assets
from orchestrion.worker.attempts import Attempts
from orchestrion.worker.capture import install_capture, uninstall_capture
from orchestrion.worker.code import CodeRegistry
from orchestrion.worker.containers.settings import ContainerSettings
from orchestrion.worker.context import TaskContext
from orchestrion.worker.executors import Executor
from orchestrion.worker.health import StoreHealth, guarded, next_delay
from orchestrion.worker.heartbeat import Heartbeat
from orchestrion.worker.kinds import connection_names
from orchestrion.worker.large_results import ResultFiles
from orchestrion.worker.logs import LogBuffer
from orchestrion.worker.reporting import GroupReporter
from orchestrion.worker.secrets import SecretResolver, masked_outcome, masked_sink, masker_for
from orchestrion.worker.sizing import DEFAULT_CONCURRENCY
from orchestrion.worker.tracing import AttemptTracing

if TYPE_CHECKING:
    from orchestrion.store.cache import CacheStore

__all__ = ["Worker", "WorkerSettings"]

#: How long a worker keeps retrying the report of a finished attempt through an outage.
_REPORT_PATIENCE = 600.0

log = logging.getLogger("orchestrion.worker")

#: After the grace period, how long to wait for released attempts to notice cancellation.
_CANCEL_WAIT = 2.0
#: The longest wait between two claims while the store fails.
_CLAIM_BACKOFF_MOST = 10.0


class WorkerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How a worker runs: the queues it serves, how many attempts at once, its lease and heartbeat
    timing, its labels, its id and where HTTP tasks may go."""

    queues: tuple[str, ...] = ("default",)
    concurrency: int = DEFAULT_CONCURRENCY
    lease_seconds: float = 30.0
    heartbeat_every: float = 2.0
    #: How long an idle worker sleeps before looking again (woken at once in-process).
    poll_every: float = 1.0
    #: This worker's labels (``--label gpu=a100``): it claims only task runs whose
    #: ``requires`` they satisfy. None: any task run, whatever it requires (the in-process
    #: worker of ``orchestrion run``).
    labels: Mapping[str, str] | None = msgspec.field(default_factory=dict)
    worker_id: str = msgspec.field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    )
    #: Non-public destinations HTTP tasks may reach (loopback, private, metadata: refused).
    http_allow: AllowList = msgspec.field(default_factory=AllowList)
    #: Where container tasks run (the engine's API) and their work folders.
    containers: ContainerSettings = msgspec.field(default_factory=ContainerSettings)
    #: The object store for large results and file artifacts; None: results stay in the
    #: database (up to its cap) and artifacts cannot be published.
    results: ResultFiles | None = None


class Worker:
    """One worker: it claims task runs from its queues and runs up to `concurrency` attempts at
    once, keeping their leases alive until each outcome is reported. `start` begins the work, `stop`
    ends it gracefully."""

    def __init__(
        self,
        runs: RunStore,
        workflows: WorkflowStore,
        notifier: Notifier,
        code: CodeRegistry,
        settings: WorkerSettings | None = None,
        clock: Clock | None = None,
        secrets: SecretResolver | None = None,
        executor: Executor | None = None,
        tracer: Tracer | None = None,
        connections: ConnectionResolver | None = None,
        cache: Callable[[], CacheStore] | None = None,
    ) -> None:
        """The worker claims, heartbeats and reports through `runs`, reads the specs of the
        runs it executes from `workflows`, and waits for work on `notifier`. `executor` runs
        Python tasks' code (None: this worker's threads); whoever made it closes it, after
        `stop`. With a `tracer`, each attempt and each run an outcome ends is a span.
        `cache` makes, on a cached task's first use, the store where cached tasks look their
        results up (None: they always run)."""
        self.runs = runs
        self.workflows = workflows
        self.notifier = notifier
        self._executor = executor
        #: For tasks that ask for ``executor: process`` on a worker whose default differs;
        #: made on first use, closed by `stop`.
        self._process_executor: Executor | None = None
        self._executor_lock = threading.Lock()
        self._secrets = secrets
        self._connections = connections
        self._cache = cache
        self.code = code
        self.settings = settings or WorkerSettings()
        self.clock = clock or SystemClock()
        self.id = self.settings.worker_id
        self._tracing = (
            None if tracer is None else AttemptTracing(runs, tracer, self.clock, self.id)
        )
        self._attempts = Attempts()
        self._slot_free = threading.Event()
        self._stopping = threading.Event()  # stop claiming
        self._halt = threading.Event()  # stop heartbeating: every attempt ended or released
        self._logs = LogBuffer(runs, self.clock)
        #: What fails in the store, and whether a thread died (read by whoever runs us).
        self.health = StoreHealth()
        self._heartbeat = Heartbeat(
            runs=runs,
            worker_id=self.id,
            attempts=self._attempts,
            logs=self._logs,
            report=self._report,
            clock=self.clock,
            every=self.settings.heartbeat_every,
            lease_seconds=self.settings.lease_seconds,
            halt=self._halt,
            health=self.health,
        )
        self._specs: dict[tuple[str, str], WorkflowSpec] = {}
        self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="task")
        self._threads: list[threading.Thread] = []
        #: A task thread's state: running an attempt, and the next one it claimed itself.
        self._local = threading.local()
        self._reporter = GroupReporter(
            self._finish_durably,
            hand_over=self._hand_over,
            # A task thread that claimed its next task sends no more than its batch.
            should_hand_over=lambda: getattr(self._local, "next", None) is not None,
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Register this worker in the store, route task output to the attempts' logs, and start the
        claiming and heartbeat threads."""
        now = self.clock.now()
        self.runs.register_worker(
            WorkerRecord(
                id=self.id,
                host=socket.gethostname(),
                pid=os.getpid(),
                queues=self.settings.queues,
                started_at=now,
                heartbeat_at=now,
                state="running",
                labels=dict(self.settings.labels or {}),
                slots=self.settings.concurrency,
            )
        )
        self.notifier.listen()
        install_capture()
        for target, name in ((self._claim_loop, "claim"), (self._heartbeat.run, "heartbeat")):
            thread = threading.Thread(
                target=guarded(name, target, self.health), name=f"worker-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info("worker.started", extra={"worker": self.id, "queues": self.settings.queues})

    def stop(self, grace: float = 10.0) -> None:
        """Stop claiming at once; wait up to `grace` for in-flight attempts (their leases
        still kept alive by heartbeats), then release the rest at once, so that another
        worker retries them without spending their retries, and ask them to stop."""
        self._stopping.set()
        self._slot_free.set()
        self.notifier.wake()
        claimer = self._threads[0] if self._threads else None
        for _ in range(100):  # 5 s; re-wake: a wake-up may land just before a wait
            if claimer is None or not claimer.is_alive():
                break
            claimer.join(timeout=0.05)
            self.notifier.wake()
        self._drain(grace)
        # Heartbeats end before the release: one landing between expiring this worker's
        # leases and reaping them would extend a lease again, and the attempt, asked to
        # stop, would then be recorded as its outcome instead of as lost.
        self._halt.set()
        for thread in self._threads[1:]:
            thread.join(timeout=5.0)
        self._release()
        self._drain(_CANCEL_WAIT)  # attempts that honour cancellation end quickly
        # A task that ignores cancellation cannot be stopped; its lease is released and
        # its outcome will be superseded, so do not wait for it here.
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._process_executor is not None:
            self._process_executor.close()
        self._logs.flush()
        with contextlib.suppress(OrchestrionError):
            self.runs.worker_heartbeat(self.id, now=self.clock.now(), state="stopped")
        uninstall_capture()

    def _drain(self, seconds: float) -> None:
        deadline = self.clock.monotonic() + seconds
        while self._active_count() and self.clock.monotonic() < deadline:
            self._slot_free.wait(0.05)
            self._slot_free.clear()

    def _release(self) -> None:
        """Give up the leases of the attempts still running and ask them to stop."""
        active = self._attempts.snapshot()
        if not active:
            return
        try:
            now = self.clock.now()
            self.runs.expire_worker(self.id, now=now)
            released = self.runs.reap_expired(now=now)
            log.warning("worker.released", extra={"worker": self.id, "attempts": released})
        except OrchestrionError:
            log.exception("worker.release_failed")  # the leases lapse on their own
        for each in active:
            each.ctx.cancel_event.set()

    def _active_count(self) -> int:
        return len(self._attempts)

    @property
    def busy(self) -> int:
        """How many attempts are still running here (after `stop`: tasks that ignored it)."""
        return self._active_count()

    # ------------------------------------------------------------------ claiming

    def _claim_loop(self) -> None:
        delay = 0.0  # the back-off while the store fails
        while not self._stopping.is_set():
            free = self.settings.concurrency - self._active_count()
            if free <= 0:
                self._slot_free.wait(self.settings.poll_every)
                self._slot_free.clear()
                continue
            try:
                claims = self.runs.claim(
                    worker_id=self.id,
                    queues=self.settings.queues,
                    limit=free,
                    lease_seconds=self.settings.lease_seconds,
                    now=self.clock.now(),
                    labels=self.settings.labels,
                )
                for claim in claims:
                    self._submit(claim)
                idle = 0.0 if claims else self._idle_wait()
            except OrchestrionError as exc:
                # A database that refuses (restarting, disk full): wait longer each time,
                # never give up; the heartbeat and reports say how long it has lasted.
                self.health.failed("claim", exc, self.clock.monotonic())
                delay = next_delay(delay, self.settings.poll_every, _CLAIM_BACKOFF_MOST)
                log.warning("worker.claim_failed", extra={"error": str(exc), "retry_in": delay})
                self._stopping.wait(delay)
                continue
            delay = 0.0
            self.health.succeeded("claim")
            if idle:
                self.notifier.wait_for_change(idle)

    def _idle_wait(self) -> float:
        wait = self.settings.poll_every
        next_at = self.runs.next_ready_at(
            self.settings.queues, self.settings.labels, now=self.clock.now()
        )
        if next_at is not None:
            wait = max(0.0, min(wait, next_at - self.clock.now()))
        return wait

    def _submit(self, claim: Claim, *, inline: bool = False) -> None:
        """Run `claim` on a task thread. `inline`: a task thread that just claimed it
        (with the report of its own attempt) runs it next itself, without handing it to
        another thread: the hop of a chain costs no thread switch."""
        spec = self._spec(claim.workflow, claim.version)
        task = spec.task(claim.task_name.removeprefix("undo:"))
        ctx = TaskContext(
            run_id=claim.run_id,
            task_run_id=claim.task_run_id,
            task_name=claim.task_name,
            workflow=claim.workflow,
            attempt=claim.attempt,
            map_index=claim.map_index if claim.map_index >= 0 else None,
            idempotency_key=claim.idempotency_key,
            params=claim.params,
            log_sink=self._logs.sink_for(claim),
            # The kinds time real processes and sockets: time.monotonic, not self.clock.
            deadline=None if task.timeout is None else time.monotonic() + task.timeout,
        )
        deadline = None if task.timeout is None else self.clock.monotonic() + task.timeout + 1.0
        self._attempts.add(claim, ctx, deadline)  # stops our older attempt, fenced, if any
        local = self._local
        if inline and getattr(local, "running", False) and getattr(local, "next", None) is None:
            local.next = (claim, spec, ctx, task)
            return
        self._pool.submit(self._run, claim, spec, ctx, task)

    def _spec(self, name: str, version: str) -> WorkflowSpec:
        spec = self._specs.get((name, version))
        if spec is None:
            spec = self.workflows.get_workflow(name, version).spec
            self._specs[(name, version)] = spec
        return spec

    def _run(self, claim: Claim, spec: WorkflowSpec, ctx: TaskContext, task: TaskSpec) -> None:
        """A task thread: run the attempt, then whatever its report claimed for it."""
        local = self._local
        local.running, local.next = True, None
        job: tuple[Claim, WorkflowSpec, TaskContext, TaskSpec] | None = (claim, spec, ctx, task)
        try:
            while job is not None:
                self._run_one(*job)
                job, local.next = local.next, None
        finally:
            local.running = False
            if job is not None:  # escaped by a BaseException: another thread runs it
                with contextlib.suppress(RuntimeError):  # the pool is shut down
                    self._pool.submit(self._run, *job)

    def _run_one(self, claim: Claim, spec: WorkflowSpec, ctx: TaskContext, task: TaskSpec) -> None:
        handed = False  # its outcome is queued: the attempt ends once that is recorded
        try:
            ids = None if self._tracing is None else self._tracing.begin(claim)
            if ids is None:
                outcome = self._execute(claim, spec, ctx, task)
            else:
                with in_span(*ids):
                    ctx = msgspec.structs.replace(ctx, traceparent=traceparent(*ids))
                    outcome = self._execute(claim, spec, ctx, task)
                    self._traced_end(claim, outcome)
            if task.produces:  # after masking (metadata is in the result until here)
                outcome = with_assets(outcome, task, claim)
            if outcome is not None:
                handed = self._report(
                    claim.task_run_id, outcome, then=functools.partial(self._ended, claim)
                )
        except Exception:  # a bug in the runner must not kill the worker thread silently
            log.exception("worker.attempt_crashed", extra={"task_run_id": claim.task_run_id})
        finally:
            if not handed:
                self._ended(claim)

    def _hand_over(self, send: Callable[[], None]) -> None:
        """Run `send` on a task thread (`RuntimeError` once the pool is shut down)."""
        self._pool.submit(send)

    def _ended(self, claim: Claim) -> None:
        """The attempt of `claim` is over here (its outcome recorded, if it had one)."""
        self._attempts.remove(claim)
        self._slot_free.set()

    def _execute(
        self, claim: Claim, spec: WorkflowSpec, ctx: TaskContext, task: TaskSpec
    ) -> Outcome | None:
        """Open the task's declared secrets, run it, and mask every value in what it says."""
        declared = task.secrets
        values: dict[str, Secret] = {}
        if declared:
            try:
                if self._secrets is None:
                    raise SecretError("this worker has no access to secrets (no master key)")
                values = dict(self._secrets(spec.namespace, sorted(set(declared.values()))))
            except OrchestrionError as exc:
                return Outcome(
                    task_run_id=claim.task_run_id,
                    epoch=claim.epoch,
                    status="failed",
                    error=f"cannot open the task's secrets: {exc}",
                    error_types=(f"{type(exc).__module__}.{type(exc).__qualname__}",),
                )
        endpoints: dict[str, Endpoint] = {}
        hidden: dict[str, Secret] = {}
        action = task.undo if claim.kind == "undo" else task.action
        name = ""
        try:  # a publish task's connection, and those a plugin kind names
            for name in connection_names(action):
                if self._connections is None:
                    raise SecretError("this worker has no access to connections")
                endpoints[name] = opened = self._connections(spec.namespace, name)
                if opened.password is not None:  # masked like a declared secret
                    hidden[f"connection:{name}"] = opened.password
        except OrchestrionError as exc:
            return Outcome(
                task_run_id=claim.task_run_id,
                epoch=claim.epoch,
                status="failed",
                error=f"cannot open connection {name!r}: {exc}" if name else str(exc),
                error_types=(f"{type(exc).__module__}.{type(exc).__qualname__}",),
            )
        masker = None
        if values or hidden:  # a task with nothing to mask pays nothing for masking
            masker = masker_for({**values, **hidden})
            ctx = msgspec.structs.replace(
                ctx, secret_values=values, log_sink=masked_sink(ctx.log_sink, masker)
            )
        run = functools.partial(
            runner.execute,
            claim,
            spec,
            ctx,
            self.code,
            self._start_child,
            http_allow=self.settings.http_allow,
            executor=self._executor_for(task),
            connections=endpoints,
            containers=self.settings.containers,
            results=self.settings.results,
        )
        outcome = self._cached(claim, spec, ctx, task, run)
        if outcome is None or masker is None:
            return outcome
        return masked_outcome(outcome, masker)

    def _cached(
        self,
        claim: Claim,
        spec: WorkflowSpec,
        ctx: TaskContext,
        task: TaskSpec,
        run: Callable[[], Outcome | None],
    ) -> Outcome | None:
        """`run` the body, or for a cached task, reuse its entry when one is usable."""
        if task.cache is None or claim.kind == "undo" or self._cache is None:
            return run()  # what every uncached task pays: this one test
        from orchestrion.worker.caching import run_cached

        return run_cached(self._cache(), self.clock, claim, spec, task, ctx, self.code, run)

    def _traced_end(self, claim: Claim, outcome: Outcome | None) -> None:
        assert self._tracing is not None
        try:
            self._tracing.end(claim, outcome)
        except Exception:  # tracing must never fail a task
            log.warning("trace.attempt_span_failed", exc_info=True)
        if outcome is None:  # it waits on a child run: no report will end it
            self._tracing.forget(claim.task_run_id)

    def _executor_for(self, task: TaskSpec) -> Executor | None:
        """The task's own choice (``executor:``) over this worker's default."""
        if task.executor == "thread":
            return None
        if task.executor == "process" and getattr(self._executor, "name", None) != "process":
            with self._executor_lock:
                if self._process_executor is None:
                    from orchestrion.worker.process_executor import ProcessExecutor

                    self._process_executor = ProcessExecutor()
                return self._process_executor
        return self._executor

    def _report(
        self, task_run_id: int, outcome: Outcome, then: Callable[[], None] | None = None
    ) -> bool:
        """Queue `outcome` for the store (`then` runs once it is recorded); False if it is
        not to be sent (already reported, or no longer running here)."""
        if not self._attempts.to_report(task_run_id, outcome.epoch):
            return False
        self._logs.flush()  # the attempt's log is complete before its outcome
        self._reporter.report(outcome, then=then)
        return True

    def _finish_durably(self, outcomes: Sequence[Outcome]) -> None:
        """Report outcomes, retrying with backoff while the database is unreachable.

        An outcome is never dropped for a passing outage: the attempt's heartbeats keep
        failing too, so if the outage outlasts the lease another worker re-runs the task,
        and this late report is then recorded as superseded, never as the outcome.
        """
        delay = 0.1
        deadline = self.clock.monotonic() + _REPORT_PATIENCE
        while True:
            try:
                now = self._finish_and_claim(outcomes)
                self.health.succeeded("report")
                if self._tracing is not None:
                    self._tracing.after_finish(outcomes, now)
                return
            except StoreError as exc:
                ids = [o.task_run_id for o in outcomes]
                self.health.failed("report", exc, self.clock.monotonic())
                # Stopped (heartbeats ended, leases released or lapsing): the attempt will
                # be run again elsewhere or on resume; waiting on would only hold the exit.
                if self.clock.monotonic() > deadline or self._halt.is_set():
                    log.error("worker.report_abandoned", extra={"task_run_ids": ids})
                    return
                log.warning(
                    "worker.report_retry",
                    extra={"task_run_ids": ids, "delay": delay, "error": str(exc)},
                )
                self._halt.wait(delay)
                delay = min(delay * 2, 5.0)

    def _finish_and_claim(self, outcomes: Sequence[Outcome]) -> float:
        """Finish; if that made work ready, claim in the same transaction for the slots
        these outcomes free (their threads end right after), and run what came back. The
        time the outcomes were recorded at."""
        now = self.clock.now()
        if self._stopping.is_set():
            self.runs.finish(outcomes, now=now)
            return now
        finishing = sum(1 for o in outcomes if self._attempts.ending(o, self.clock.monotonic()))
        _, claims = self.runs.finish_and_claim(
            outcomes,
            now=now,
            worker_id=self.id,
            queues=self.settings.queues,
            limit=self.settings.concurrency - self._active_count() + finishing,
            lease_seconds=self.settings.lease_seconds,
            labels=self.settings.labels,
        )
        for i, claim in enumerate(claims):
            self._submit(claim, inline=i == 0)
        return now

    def _start_child(self, claim: Claim, workflow: str, params: dict[str, Any]) -> str | None:
        from orchestrion.spec.params import resolve_params

        spec = self.workflows.get_workflow(workflow).spec
        return self.runs.start_child_run(
            claim, spec, resolve_params(spec, params), now=self.clock.now()
        )

"""`App.runs`: start, control and recover runs, and read their history.

Driving a run to its end with an in-process worker (``orchestrion run``) is
`App.runtime.run_until_done`: the runtime is the one place that builds workers.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrion.app.core import Facet
from orchestrion.errors import IllegalTransition
from orchestrion.spec.loading import load_workflows
from orchestrion.spec.params import resolve_params
from orchestrion.store.records import (
    AttemptRecord,
    EventRecord,
    LogRecord,
    RunFilter,
    RunRecord,
    TaskRunRecord,
)
from orchestrion.triggers.maintenance import sweep
from orchestrion.worker.liveness import alive

if TYPE_CHECKING:
    from orchestrion.auth.principals import Principal
    from orchestrion.store.policy_records import Finding

__all__ = ["Runs"]


class Runs(Facet):
    """Runs, their task runs, attempts, events and logs."""

    # ------------------------------------------------------------------ control

    def trigger(
        self,
        workflow: str,
        params: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        trigger: str = "manual",
        priority: int = 0,
        no_cache: bool = False,
        principal: Principal | None = None,
        findings: list[Finding] | None = None,
    ) -> RunRecord:
        """Start a run of the newest version of `workflow` (parameters checked and
        defaulted by its spec); an `idempotency_key` seen before returns that run.
        `no_cache`: its cached tasks compute and overwrite their entries.

        The admission policies decide first: `PolicyDenied` starts nothing; a required
        approval starts the run behind an approval gate; warnings and approvals are
        appended to `findings`."""
        audit: dict[str, Any] = {"params": params}
        with self._core.audited(
            "run.trigger", f"workflow {workflow}", workflow=workflow, params=audit
        ):
            spec = self.store.workflows.get_workflow(workflow).spec
            resolved = resolve_params(spec, params or {})
            found: list[Finding] = []
            if self.store.policies.current_policies():  # else: nothing to import or check
                from orchestrion.app.policies import Policies

                spec = Policies(self._core).admit_run(
                    spec, resolved, trigger=trigger, principal=principal, findings=found
                )
            if found:  # on file with the trigger (a local user's record)
                audit["policy_findings"] = [str(f) for f in found]
            if findings is not None:
                findings.extend(found)
            return self.store.runs.create_run(
                spec,
                resolved,
                now=self.clock.now(),
                trigger=trigger,
                priority=priority,
                idempotency_key=idempotency_key,
                no_cache=no_cache,
            )

    def cancel(self, run_id: str) -> bool:
        """Cancel a run; False when it had already finished."""
        return self.store.runs.cancel_run(run_id, now=self.clock.now())

    def retry(self, run_id: str) -> bool:
        """Re-open a failed or canceled run; False when it cannot be."""
        return self.store.runs.retry_run(run_id, now=self.clock.now())

    def mark_task(self, run_id: str, task: str, *, succeeded: bool) -> RunRecord:
        """Set a task's outcome by hand (see `RunStore.mark_task`)."""
        args = {"task": task, "succeeded": succeeded}
        with self._core.audited("run.mark", f"run {run_id}", params=args):
            run = self.store.reads.get_run(run_id)
            self.store.runs.mark_task(run.id, task, succeeded=succeeded, now=self.clock.now())
            return self.store.reads.get_run(run.id)

    def rerun_from(self, run_id: str, task: str) -> RunRecord:
        """Rerun from a chosen task as a new run (see `RunStore.rerun_from`)."""
        with self._core.audited("run.rerun", f"run {run_id}", params={"from_task": task}):
            old = self.store.reads.get_run(run_id)
            new_id = self.store.runs.rerun_from(old.id, task, now=self.clock.now())
            return self.store.reads.get_run(new_id)

    def cancel_or_raise(self, run_id: str) -> None:
        """Cancel a run; `IllegalTransition` when it already finished."""
        with self._core.audited("run.cancel", f"run {run_id}"):
            run = self.store.reads.get_run(run_id)
            if not self.store.runs.cancel_run(run.id, now=self.clock.now()):
                state = self.store.reads.get_run(run.id).state.value
                raise IllegalTransition(f"run {run.id} is already {state}")

    def retry_or_raise(self, run_id: str) -> None:
        """Re-open a failed or canceled run (a compensated one: re-run its undo steps that
        failed); `IllegalTransition` names why not otherwise."""
        with self._core.audited("run.retry", f"run {run_id}"):
            run = self.store.reads.get_run(run_id)
            if not self.store.runs.retry_run(run.id, now=self.clock.now()):
                state = self.store.reads.get_run(run.id).state.value
                why = (
                    "it was compensated and every undo step succeeded; start a new run"
                    if state in ("failed", "canceled")
                    else f"it is {state}"
                )
                raise IllegalTransition(f"run {run.id} cannot be retried: {why}")

    # ------------------------------------------------------------------ recovery

    def prepare_resume(self, run_id: str) -> RunRecord:
        """Make a crashed or failed run runnable here: reload its code, reclaim the leases of
        dead local workers, re-open it if it ended in failure."""
        run = self.store.reads.get_run(run_id)
        record = self.store.workflows.get_workflow(run.workflow, run.version)
        if record.spec.code is None and record.source and Path(record.source).exists():
            # Code from before versions carried it: this process needs the file loaded.
            # A version with code runs from its snapshot, whatever the file holds now.
            for item in load_workflows(record.source):
                self._core.code.add(item.callables)
        self.recover_dead_workers()
        sweep(self.store.runs, self.clock.now())
        run = self.store.reads.get_run(run.id)
        if run.state.value in ("failed", "canceled"):
            self.store.runs.retry_run(run.id, now=self.clock.now())
        return self.store.reads.get_run(run.id)

    def recover_dead_workers(self) -> int:
        """Expire the leases of workers on this host whose process is gone, so their task runs
        are retried now instead of after the lease time."""
        host, count = socket.gethostname(), 0
        for worker in self.store.reads.list_workers():
            if worker.host == host and worker.state == "running" and not alive(worker.pid):
                count += self.store.runs.expire_worker(worker.id, now=self.clock.now())
        return count

    def wait_until_finished(self, run_id: str, *, every: float = 0.5) -> RunRecord:
        """Block until the run reaches a final state (woken by changes in this process,
        looking again at least every `every` seconds); the finished run."""
        while not (run := self.store.reads.get_run(run_id)).state.finished:
            self.store.notifier.wait_for_change(every)
        return run

    # ------------------------------------------------------------------ reads

    def next_ready_at(self, queues: Sequence[str]) -> float | None:
        """When the next queued or retry-waiting task run on `queues` may be claimed (a
        time already past: now); None when none waits. What a clock-driven test harness
        moves its clock to."""
        return self.store.runs.next_ready_at(queues, None, now=self.clock.now())

    def get_run(self, run_id: str) -> RunRecord:
        """One run (an unambiguous id prefix will do), or `NotFound`."""
        return self.store.reads.get_run(run_id)

    def list_runs(self, filt: RunFilter | None = None) -> list[RunRecord]:
        """Runs newest first, filtered."""
        return self.store.reads.list_runs(filt or RunFilter())

    def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """Every task run of a run."""
        return self.store.reads.list_task_runs(self.store.reads.get_run(run_id).id)

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """Every attempt of every task run of a run."""
        return self.store.reads.list_attempts(self.store.reads.get_run(run_id).id)

    def events(self, run_id: str, after_id: int = 0) -> list[EventRecord]:
        """A run's history after the event id `after_id`."""
        return self.store.reads.list_events(self.store.reads.get_run(run_id).id, after_id=after_id)

    def logs(
        self, run_id: str, task: str | None = None, after_id: int = 0, limit: int = 10_000
    ) -> list[LogRecord]:
        """Captured output lines of a run's attempts (of one task, when given)."""
        return self.store.reads.get_logs(
            self.store.reads.get_run(run_id).id, task_name=task, after_id=after_id, limit=limit
        )

    def all_events(self, *, after_id: int = 0, limit: int = 1000) -> list[EventRecord]:
        """The history of all runs after the event id `after_id`."""
        return self.store.reads.list_events(None, after_id=after_id, limit=limit)

    def events_after(
        self, run_id: str | None, after_id: int, limit: int = 500
    ) -> list[EventRecord]:
        """New history rows (of one run, or of all) for live followers."""
        return self.store.reads.list_events(run_id, after_id=after_id, limit=limit)

    def last_event_id(self) -> int:
        """The id of the newest history row (0 when there is none)."""
        return self.store.reads.last_event_id()

    def wait_for_events(self, seen: int, timeout: float) -> int:
        """Block until new history may exist (pushed by this or another process) since the
        change counter was `seen`; returns the current counter."""
        return self.store.notifier.wait_for_events(seen, timeout)

    def find_events(
        self, *, kind: str = "", run_id: str = "", workflow: str = "", before: int = 0,
        limit: int = 200,
    ) -> list[EventRecord]:  # fmt: skip
        """The event history newest first, filtered (see `ReadStore.find_events`)."""
        return self.store.reads.find_events(
            kind=kind, run_id=run_id, workflow=workflow, before=before, limit=limit
        )

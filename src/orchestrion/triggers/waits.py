"""The ``waits`` duty: timeouts of waiting steps, and the checks of polling sensors.

Both are due-times in the store (`task_waits.deadline`, `task_waits.check_at`), never a
sleeping worker: each pass resolves the timeouts that fell due (as the step's
``on_timeout`` says) and takes the sensor checks that are due, each under a short lease
(`WaitStore.claim_checks`), checking them on a few threads. A check that comes true
resolves its step; one that does not is due again `every` seconds later. The resolution is
a guarded compare-and-set, so two schedulers (or a decision racing a timeout) resolve a
step once.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from orchestrion.auth.ssrf import AllowList
from orchestrion.brokers.endpoint import ConnectionResolver
from orchestrion.clock import Clock
from orchestrion.errors import NotFound
from orchestrion.spec.model import WorkflowSpec
from orchestrion.spec.waits import ApprovalAction, WaitAction
from orchestrion.store.reads import ReadStore
from orchestrion.store.wait_records import WaitRecord, WaitResolution
from orchestrion.store.waits import WaitStore
from orchestrion.store.workflows import WorkflowStore
from orchestrion.triggers.leases import DutyLease
from orchestrion.triggers.maintenance import PassLoop
from orchestrion.triggers.sensors import NOT_YET, CheckFailed, SensorError, SqlSource, check_sensor

__all__ = ["WaitDuty", "WaitPass", "timeout_resolution"]

log = logging.getLogger("orchestrion.waits")


@dataclass
class WaitPass:
    """What one pass did: the task runs timed out, checked, and come true."""

    timed_out: list[int] = field(default_factory=list)
    checked: list[int] = field(default_factory=list)
    came_true: list[int] = field(default_factory=list)


def timeout_resolution(action: ApprovalAction | WaitAction, after: float | None) -> WaitResolution:
    """How a step's timeout ends it, by its ``on_timeout``."""
    waited = f" after {after:g}s" if after is not None else ""
    data: dict[str, str] = {"on_timeout": action.on_timeout}
    if isinstance(action, ApprovalAction):
        if action.on_timeout == "approve":
            result = {"approved": True, "by": "timeout", "reason": f"no decision{waited}"}
            return WaitResolution(outcome="succeed", event="wait.timeout", result=result, data=data)
        verb = "rejected" if action.on_timeout == "reject" else "failed"
        error = f"approval timed out{waited}: {verb}"
        return WaitResolution(outcome="fail", event="wait.timeout", error=error, data=data)
    if action.on_timeout == "succeed":
        return WaitResolution(outcome="succeed", event="wait.timeout", result=None, data=data)
    error = f"wait for {action.waits_for} timed out{waited}"
    return WaitResolution(outcome="fail", event="wait.timeout", error=error, data=data)


class WaitDuty:
    """One process's share of the duty (under the ``waits`` lease when given one)."""

    def __init__(
        self,
        waits: WaitStore,
        workflows: WorkflowStore,
        clock: Clock,
        *,
        allow: AllowList | None = None,
        connections: ConnectionResolver | None = None,
        reads: ReadStore | None = None,
        lease: DutyLease | None = None,
        every: float = 0.5,
        check_lease: float = 60.0,
        threads: int = 4,
    ) -> None:
        self.waits = waits
        self.workflows = workflows
        self.clock = clock
        self.allow = allow or AllowList()
        #: How a SQL sensor opens its named connection, and reads its run's params; both
        #: injected by the app layer, which owns the secrets (None: SQL sensors cannot run).
        self.connections = connections
        self.reads = reads
        self.lease = lease
        self.every = every
        #: A claimed check not finished by then is due again (its checker died).
        self.check_lease = check_lease
        self.threads = threads
        self._specs: dict[tuple[str, str], tuple[WorkflowSpec, str]] = {}
        self._loop = PassLoop("waits", self.pass_once, every, lease)

    # ------------------------------------------------------------------ loop

    def start(self) -> None:
        """Pass every `every` seconds, on a daemon thread."""
        self._loop.start()

    def stop(self) -> None:
        """Stop after the pass in progress (waiting at most 15 s) and free the lease."""
        self._loop.stop()

    # ------------------------------------------------------------------ one pass

    def pass_once(self, now: float | None = None) -> WaitPass | None:
        """Resolve due timeouts and run due checks, if this process holds the duty; None if
        it does not."""
        now = self.clock.now() if now is None else now
        if self.lease is not None and not self.lease.holds(now):
            return None
        report = WaitPass()
        for wait in self.waits.due_deadlines(now=now):
            action = self._action(wait)
            if action is None:
                continue
            after = None if wait.deadline is None else wait.deadline - wait.created_at
            if self.waits.resolve(wait.task_run_id, timeout_resolution(action, after), now=now):
                report.timed_out.append(wait.task_run_id)
        claimed = self.waits.claim_checks(now=now, lease=self.check_lease)
        if claimed:
            with ThreadPoolExecutor(max_workers=min(self.threads, len(claimed))) as pool:
                for wait, came_true in zip(claimed, pool.map(self._check, claimed), strict=True):
                    report.checked.append(wait.task_run_id)
                    if came_true:
                        report.came_true.append(wait.task_run_id)
        return report

    def _check(self, wait: WaitRecord) -> bool:
        """Check one sensor; True when it resolved its step."""
        action = self._action(wait)
        if not isinstance(action, WaitAction):
            return False
        try:
            sql = self._sql_source(wait, action)
        except NotFound:  # the run or its workflow was deleted meanwhile
            return False
        try:
            result = check_sensor(action, allow=self.allow, sql=sql)
        except SensorError as exc:
            failed = WaitResolution(outcome="fail", event="wait.sensor", error=str(exc))
            return self.waits.resolve(wait.task_run_id, failed, now=self.clock.now())
        except CheckFailed as exc:  # recorded, and checked again: see `sensors`
            now = self.clock.now()
            self.waits.check_again(wait.task_run_id, now + action.every, error=str(exc))
            return False
        now = self.clock.now()
        if result is NOT_YET:
            self.waits.check_again(wait.task_run_id, now + action.every)
            return False
        done = WaitResolution(
            outcome="succeed",
            event="wait.sensor",
            result=result,
            data={"sensor": action.waits_for, "checks": wait.checks},
        )
        return self.waits.resolve(wait.task_run_id, done, now=now)

    def _sql_source(self, wait: WaitRecord, action: WaitAction) -> SqlSource | None:
        if action.sql is None or self.connections is None or self.reads is None:
            return None
        resolve = self.connections
        namespace = self._workflow(wait)[1]
        params = self.reads.get_run(wait.run_id).params
        return SqlSource(connection=lambda name: resolve(namespace, name), params=params)

    def _workflow(self, wait: WaitRecord) -> tuple[WorkflowSpec, str]:
        """The spec and namespace of the wait's workflow version (`NotFound`)."""
        key = (wait.workflow, wait.version)
        found = self._specs.get(key)
        if found is None:
            record = self.workflows.get_workflow(*key)
            found = self._specs[key] = (record.spec, record.namespace)
        return found

    def _action(self, wait: WaitRecord) -> ApprovalAction | WaitAction | None:
        try:
            spec = self._workflow(wait)[0]
        except NotFound:
            return None
        action = spec.task(wait.task).action
        return action if isinstance(action, ApprovalAction | WaitAction) else None

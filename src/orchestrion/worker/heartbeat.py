"""The worker's heartbeat thread: it keeps leases alive and stops what must stop.

Every `every` seconds it extends the leases of the attempts running here and records the
worker as alive; attempts whose lease the store reports lost are cancelled (another worker
may already run them). More often (every half second at most) it flushes captured logs and
reports the timeout of Python tasks that ignore cancellation: a thread cannot be killed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from orchestrion.clock import Clock
from orchestrion.errors import OrchestrionError, TaskTimeout
from orchestrion.store.records import Outcome
from orchestrion.store.runs import RunStore
from orchestrion.worker.attempts import Attempts
from orchestrion.worker.health import StoreHealth
from orchestrion.worker.logs import LogBuffer

__all__ = ["Heartbeat"]

log = logging.getLogger("orchestrion.worker")


class Heartbeat:
    """The heartbeat of worker `worker_id`, run on its own thread by `run` until `halt`."""

    def __init__(
        self,
        *,
        runs: RunStore,
        worker_id: str,
        attempts: Attempts,
        logs: LogBuffer,
        report: Callable[[int, Outcome], object],
        clock: Clock,
        every: float,
        lease_seconds: float,
        halt: threading.Event,
        health: StoreHealth | None = None,
    ) -> None:
        """`report` sends an outcome the heartbeat decides (a timeout) the way a task
        thread sends its own; `halt` ends the loop."""
        self._runs = runs
        self._worker_id = worker_id
        self._attempts = attempts
        self._logs = logs
        self._report = report
        self._clock = clock
        self._every = every
        self._lease_seconds = lease_seconds
        self._halt = halt
        self._health = health or StoreHealth()
        self._last_beat = 0.0

    def run(self) -> None:
        """The thread's loop: flush logs, then beat, until `halt` is set."""
        while not self._halt.wait(min(self._every, 0.5)):
            self._logs.flush()
            if self._halt.is_set():
                break
            self._beat()

    def _beat(self) -> None:
        if self._clock.monotonic() - self._last_beat < self._every:
            self._enforce_timeouts()
            return
        self._last_beat = self._clock.monotonic()
        leases = self._attempts.leases()
        try:
            lost = self._runs.heartbeat(
                worker_id=self._worker_id,
                leases=leases,
                lease_seconds=self._lease_seconds,
                now=self._clock.now(),
            )
            self._runs.worker_heartbeat(self._worker_id, now=self._clock.now())
        except OrchestrionError as exc:
            # Retried at the next beat; the lease lapses if this lasts (the attempt is then
            # fenced and run again), and `health` tells whoever runs the worker.
            self._health.failed("heartbeat", exc, self._clock.monotonic())
            log.warning("worker.heartbeat_failed", extra={"error": str(exc)})
            return
        self._health.succeeded("heartbeat")
        gone = set(lost)
        self._attempts.cancel([(tr, epoch) for tr, epoch in leases if tr in gone])
        self._enforce_timeouts()

    def _enforce_timeouts(self) -> None:
        """A Python thread cannot be killed: report its timeout now and let it be fenced."""
        for active in self._attempts.late(self._clock.monotonic()):
            active.ctx.cancel_event.set()
            exc = TaskTimeout("timed out; the task did not stop when asked")
            outcome = Outcome(
                task_run_id=active.claim.task_run_id,
                epoch=active.claim.epoch,
                status="failed",
                error=str(exc),
                timed_out=True,
                error_types=("orchestrion.errors.TaskTimeout",),
            )
            self._report(active.claim.task_run_id, outcome)

"""The housekeeping loop: reap expired leases and end runs past their deadline.

Readiness never waits on this loop (it is decided in the transaction that finishes each
task); this only catches what time alone changes.
"""

from __future__ import annotations

import logging
import threading

from orchestrion.clock import Clock
from orchestrion.errors import OrchestrionError
from orchestrion.store.runs import RunStore

__all__ = ["Maintenance", "sweep"]

log = logging.getLogger("orchestrion.engine")


#: Priority ageing: a task run waiting to be claimed gains AGE_STEP priority per AGE_EVERY
#: seconds, at most AGE_MOST times. A backfill's runs (priority -100) thus pass fresh work
#: (0) after about 5 minutes of waiting; a task's own priority range is -1000..1000.
AGE_EVERY = 30.0
AGE_STEP = 10
AGE_MOST = 100


def sweep(runs: RunStore, now: float) -> tuple[int, list[str]]:
    """One pass: (leases reaped, runs timed out); also ages waiting task runs' priority."""
    reaped = runs.reap_expired(now=now)
    timed_out = runs.timeout_runs(now=now)
    runs.age_priorities(now=now, every=AGE_EVERY, step=AGE_STEP, most=AGE_MOST)
    if reaped:
        log.info("engine.reaped", extra={"count": reaped})
    for run_id in timed_out:
        log.info("run.timed_out", extra={"run_id": run_id})
    return reaped, timed_out


class Maintenance:
    """Runs `sweep` every `every` seconds in a daemon thread until stopped."""

    def __init__(self, runs: RunStore, clock: Clock, every: float = 2.0) -> None:
        self.runs = runs
        self.clock = clock
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)

    def start(self) -> None:
        """Start sweeping, on a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the sweep in progress, if any (waiting at most 5 s for it)."""
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                sweep(self.runs, self.clock.now())
            except OrchestrionError:
                log.exception("engine.sweep_failed")

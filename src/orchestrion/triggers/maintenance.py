"""The housekeeping loop: reap expired leases, end runs past their deadline, fold metrics.

Readiness never waits on this loop (it is decided in the transaction that finishes each
task); this only catches what time alone changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from orchestrion.clock import Clock
from orchestrion.store.runs import RunStore
from orchestrion.triggers.leases import DutyLease

__all__ = ["Maintenance", "backoff", "sweep"]

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
    # Bounded scrapes: the deltas a scrape sums stay few (docs/operating.md).
    runs.fold_metrics(now=now)
    if reaped:
        log.info("engine.reaped", extra={"count": reaped})
    for run_id in timed_out:
        log.info("run.timed_out", extra={"run_id": run_id})
    return reaped, timed_out


class Maintenance:
    """Runs `sweep` every `every` seconds in a daemon thread until stopped.

    With a `lease` (the ``maintenance`` duty's, `DutyLease`) it sweeps only while it holds
    that lease: worker processes run one, so that expired leases are reaped while only
    workers are up, and never by two processes at once (a scheduler holds the same lease).
    """

    def __init__(
        self, runs: RunStore, clock: Clock, every: float = 2.0, *, lease: DutyLease | None = None
    ) -> None:
        self.runs = runs
        self.clock = clock
        self.every = every
        self.lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)

    def start(self) -> None:
        """Start sweeping, on a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the sweep in progress, if any (waiting at most 5 s for it), and give
        the lease up for another process."""
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5.0)
        if self.lease is not None and not self._thread.is_alive():
            self.lease.release()

    def pass_once(self) -> bool:
        """One sweep if this process may do it (no lease, or the lease held); whether it
        swept."""
        now = self.clock.now()
        if self.lease is not None and not self.lease.holds(now):
            return False
        sweep(self.runs, now)
        return True

    def _loop(self) -> None:
        failures = 0
        while not self._stop.wait(backoff(self.every, failures)):
            try:
                self.pass_once()
                failures = 0
            except Exception:  # a daemon loop: log, back off, keep going
                # Any error, not only ours: a database error (a full disk, a restart) must
                # not end the thread silently; the next pass retries, later and later.
                failures += 1
                log.exception("engine.sweep_failed", extra={"failures": failures})


def backoff(every: float, failures: int, most: float = 30.0) -> float:
    """The wait before the next pass: `every`, doubled per failure in a row, at most
    `most` (or `every` if that is longer)."""
    return min(every * (1 << min(failures, 16)), max(most, every))


class PassLoop:
    """Call `pass_once` every `every` seconds on a daemon thread, backing off after errors
    (a duty's loop: logged, never ending the thread); `stop` frees `lease` once the thread
    has ended, so another process takes the duty over at once."""

    def __init__(
        self,
        name: str,
        pass_once: Callable[[], object],
        every: float,
        lease: DutyLease | None = None,
    ) -> None:
        self._name = name
        self._pass_once = pass_once
        self._every = every
        self._lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the pass in progress (waiting at most 15 s) and free the lease."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=15.0)
        if self._lease is not None and not self._thread.is_alive():
            self._lease.release()

    def _loop(self) -> None:
        failures = 0
        while not self._stop.wait(backoff(self._every, failures)):
            try:
                self._pass_once()
                failures = 0
            except Exception:  # a daemon loop: log, back off, keep going
                failures += 1
                log.exception(f"{self._name}.pass_failed", extra={"failures": failures})

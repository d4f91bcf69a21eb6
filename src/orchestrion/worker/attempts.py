"""The attempts running on one worker, shared by its threads.

The claiming thread adds an attempt, its task thread removes it, the heartbeat cancels it
when its lease is lost or its time is up, and the reporter marks it reported. Each entry is
keyed by task run but belongs to one claim: an older attempt of a task run claimed again
here (its lease lost, its retry now ours) is told apart by its epoch, so that the older
attempt can neither report for, nor remove, the newer one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import msgspec

from orchestrion.store.records import Claim, Outcome
from orchestrion.worker.context import TaskContext

__all__ = ["Active", "Attempts"]


class Active(msgspec.Struct):
    """One attempt running here: its claim, what its code sees, and when it times out."""

    claim: Claim
    ctx: TaskContext
    #: The `Clock.monotonic` time after which the attempt is reported as timed out.
    deadline: float | None
    #: True once an outcome was handed to the reporter (a timeout, or the task's own).
    reported: bool = False


class Attempts:
    """The attempts running on this worker, by task run id, behind one lock."""

    def __init__(self) -> None:
        self._active: dict[int, Active] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._active)

    def add(self, claim: Claim, ctx: TaskContext, deadline: float | None) -> None:
        """Track the attempt of `claim`. An older attempt of the same task run still here
        lost its lease and is fenced by the store: it is asked to stop."""
        with self._lock:
            stale = self._active.get(claim.task_run_id)
            if stale is not None:
                stale.ctx.cancel_event.set()
            self._active[claim.task_run_id] = Active(claim=claim, ctx=ctx, deadline=deadline)

    def remove(self, claim: Claim) -> None:
        """Forget the attempt of `claim` once its thread ends, unless a newer attempt of
        its task run took its place."""
        with self._lock:
            active = self._active.get(claim.task_run_id)
            if active is not None and active.claim.epoch == claim.epoch:
                del self._active[claim.task_run_id]

    def snapshot(self) -> list[Active]:
        """The attempts running now."""
        with self._lock:
            return list(self._active.values())

    def leases(self) -> list[tuple[int, int]]:
        """The (task run, epoch) leases that the heartbeat extends."""
        with self._lock:
            return [(a.claim.task_run_id, a.claim.epoch) for a in self._active.values()]

    def cancel(self, leases: Sequence[tuple[int, int]]) -> None:
        """Cancel the attempts whose (task run, epoch) lease is gone. The epoch matters: a
        lease reported lost may be of an attempt that finished meanwhile and whose retry,
        a newer epoch of the same task run, already runs here."""
        with self._lock:
            for tr, epoch in leases:
                active = self._active.get(tr)
                if active is not None and active.claim.epoch == epoch:
                    active.ctx.cancel_event.set()

    def to_report(self, task_run_id: int, epoch: int) -> bool:
        """Whether an outcome of attempt `epoch` of `task_run_id` is to be sent, marking the
        attempt reported: an attempt's outcome is sent once (its timeout or its own result,
        whichever comes first), and none for a task run that no longer runs here."""
        with self._lock:
            active = self._active.get(task_run_id)
            if active is None:
                return False
            if active.claim.epoch == epoch:
                if active.reported:
                    return False
                active.reported = True
            # else: an older attempt of a task run claimed again here; the store records
            # its outcome as superseded without touching the newer attempt.
            return True

    def ending(self, outcome: Outcome, now: float) -> bool:
        """True if `outcome` is of an attempt running here whose thread is ending (not a
        timed-out one whose thread goes on, nor an older attempt); `now` is monotonic."""
        with self._lock:
            active = self._active.get(outcome.task_run_id)
            return (
                active is not None
                and active.claim.epoch == outcome.epoch
                and (active.deadline is None or now <= active.deadline)
            )

    def late(self, now: float) -> list[Active]:
        """The attempts past their deadline (monotonic `now`) not yet reported."""
        with self._lock:
            return [
                a
                for a in self._active.values()
                if a.deadline is not None and now > a.deadline and not a.reported
            ]

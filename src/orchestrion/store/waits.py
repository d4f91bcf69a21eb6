"""`WaitStore`: the store role of steps that wait without a worker (approvals, signals,
events, sensors). Every resolution is a guarded compare-and-set of the waiting task run
(waiting -> succeeded / failed) with its event rows, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from orchestrion.store.wait_records import SignalReceipt, WaitRecord, WaitResolution

__all__ = ["EventMatch", "WaitStore"]

#: Decides, for a waiting task run (its id and run id), whether an event resolves it.
EventMatch = Callable[[int, str], WaitResolution | None]


class WaitStore(Protocol):
    """Waiting task runs, their resolutions, and the signals kept for runs."""

    def get_wait(self, run_id: str, task: str) -> WaitRecord:
        """The wait of a run's task (a unique run id prefix will do); `NotFound` when the
        task is not waiting on an approval, a signal, an event or a sensor."""
        ...

    def list_waits(self, *, run_id: str | None = None, limit: int = 500) -> list[WaitRecord]:
        """Waiting steps, oldest first (of one run, when given)."""
        ...

    def resolve(self, task_run_id: int, resolution: WaitResolution, *, now: float) -> bool:
        """End the wait as `resolution` says; False when it no longer waits (decided,
        delivered, timed out or canceled meanwhile)."""
        ...

    def send_signal(
        self, run_id: str, name: str, data: Any, *, sent_by: str | None, now: float
    ) -> SignalReceipt:
        """Keep the signal for the run and deliver it to a step waiting on it, if any (in
        the same transaction); `IllegalTransition` when the run already finished."""
        ...

    def deliver_event(self, event_type: str, match: EventMatch, *, now: float) -> list[int]:
        """Resolve the steps waiting on events of `event_type` that `match` accepts; the
        task run ids resolved."""
        ...

    def due_deadlines(self, *, now: float, limit: int = 100) -> list[WaitRecord]:
        """The waits whose timeout fell due."""
        ...

    def claim_checks(self, *, now: float, lease: float, limit: int = 50) -> list[WaitRecord]:
        """Take the sensor checks that are due: each is not due again until `now + lease`
        (a scheduler that dies mid-check leaves it due then)."""
        ...

    def check_again(self, task_run_id: int, at: float, *, error: str | None = None) -> None:
        """A sensor's check came back false: the next one is due at `at`. With `error` (a
        check that could not run, such as a SQL sensor's failed query) a
        ``wait.check_failed`` event records it in the run's history."""
        ...

    def count_waiting(self) -> int:
        """How many steps wait without a worker."""
        ...

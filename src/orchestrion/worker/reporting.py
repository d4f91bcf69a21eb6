"""Group commit for outcomes: attempts that end together are reported in one store call.

A task thread hands its outcome to `GroupReporter.report` and goes on at once. If no
thread is sending, it becomes the sender: it sends what is queued (its own outcome, and
whatever other threads queued meanwhile) in transactions of up to `MAX_BATCH` outcomes,
until nothing is left. A busy worker thus pays a transaction's fixed cost (BEGIN, COMMIT,
the locks of the run's counter rows) once per batch instead of once per task; an idle one
reports a lone outcome at once, with no added delay.

The others do not wait for their outcome to be recorded: they would only queue up to
learn that it was, one thread switch each. What must not happen before it is recorded
happens in the callback each outcome comes with (`report(then=...)`): the worker keeps
the attempt registered until then, so its lease is still heartbeated and its slot still
taken while the outcome waits (through a database outage too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from orchestrion.store.records import Outcome

__all__ = ["GroupReporter"]

log = logging.getLogger("orchestrion.worker")

#: At most this many outcomes in one transaction.
MAX_BATCH = 64

_Queued = tuple[Outcome, Callable[[], None] | None]


class GroupReporter:
    """Sends the outcomes of attempts that end together in one store call, one sending thread at a
    time (see the module docstring)."""

    def __init__(
        self,
        send: Callable[[Sequence[Outcome]], None],
        *,
        hand_over: Callable[[Callable[[], None]], None] | None = None,
        should_hand_over: Callable[[], bool] = lambda: False,
    ) -> None:
        """`send` records a batch durably (retrying through outages) or raises. A sender
        for whom `should_hand_over` turns true after a batch (a task thread with a task of
        its own to run next) leaves what is still queued to `hand_over` (which runs the
        callable it is given on another thread) instead of sending it too."""
        self._send = send
        self._hand_over = hand_over
        self._should_hand_over = should_hand_over
        self._lock = threading.Lock()  # guards the queue and the sending flag
        self._queue: list[_Queued] = []
        self._sending = False

    @property
    def pending(self) -> int:
        """Outcomes waiting for the sender."""
        with self._lock:
            return len(self._queue)

    def report(self, outcome: Outcome, *, then: Callable[[], None] | None = None) -> None:
        """Queue `outcome`, and send the queue if no thread is sending; `then` runs once
        the outcome is recorded (or given up, which the sender logs)."""
        with self._lock:
            self._queue.append((outcome, then))
            if self._sending:
                return
            self._sending = True
        self._drain()

    def _drain(self) -> None:
        """Send batches until the queue is empty (or handed over); this thread is the
        sender until it returns."""
        while True:
            with self._lock:
                if not self._queue:
                    self._sending = False
                    return
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                self._send_batch([o for o, _ in batch])
            finally:
                for _, then in batch:
                    if then is not None:
                        then()
            if self._hand_over is not None and self._should_hand_over():
                with self._lock:
                    if not self._queue:
                        self._sending = False
                        return
                try:
                    self._hand_over(self._drain)  # still sending: the other thread is
                    return
                except RuntimeError:  # nobody to hand over to (shutting down): go on
                    continue

    def _send_batch(self, batch: Sequence[Outcome]) -> None:
        try:
            self._send(batch)
            return
        except Exception:
            if len(batch) == 1:
                extra = {"task_run_id": batch[0].task_run_id}
                log.exception("worker.report_failed", extra=extra)
                return
            # One outcome the store refuses must not take the others down with it.
            log.warning("worker.batch_report_failed", extra={"outcomes": len(batch)})
        for outcome in batch:
            try:
                self._send([outcome])
            except Exception:
                log.exception("worker.report_failed", extra={"task_run_id": outcome.task_run_id})

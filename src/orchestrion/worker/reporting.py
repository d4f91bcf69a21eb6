"""Group commit for outcomes: attempts that end together are reported in one store call.

Each task thread hands its outcome to `GroupReporter.report` and returns once it is
recorded, as before. But only one thread at a time talks to the store: while it does,
outcomes of other threads queue up, and the next thread through sends all of them in one
`RunStore.finish` (one transaction). An idle worker reports a lone outcome at once, with no
added delay; a busy one pays the transaction's fixed cost (BEGIN, COMMIT, locks of the
run's counter rows) once per batch instead of once per task.
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


class GroupReporter:
    """Sends the outcomes of attempts that end together in one store call, one sending thread at a
    time (see the module docstring)."""

    def __init__(self, send: Callable[[Sequence[Outcome]], None]) -> None:
        #: Records a batch durably (retrying through outages) or raises.
        self._send = send
        self._lock = threading.Lock()  # guards the queue and the counters
        self._turn = threading.Lock()  # held by the one thread that sends
        self._queue: list[tuple[int, Outcome]] = []
        self._next = 0
        self._sent = -1  # every ticket up to this one was handed to the store

    @property
    def pending(self) -> int:
        """Outcomes waiting for the sender in turn."""
        with self._lock:
            return len(self._queue)

    def report(self, outcome: Outcome) -> None:
        """Record `outcome` (with whatever else is waiting); return once it is recorded."""
        with self._lock:
            ticket = self._next
            self._next += 1
            self._queue.append((ticket, outcome))
        while True:
            with self._turn:
                with self._lock:
                    if self._sent >= ticket:
                        return
                    batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                    self._sent = batch[-1][0]  # tickets are queued in order
                self._send_batch([o for _, o in batch])

    def _send_batch(self, batch: Sequence[Outcome]) -> None:
        try:
            self._send(batch)
        except Exception:
            if len(batch) == 1:
                raise
            # One outcome the store refuses must not take the others down with it.
            log.warning("worker.batch_report_failed", extra={"outcomes": len(batch)})
            for outcome in batch:
                try:
                    self._send([outcome])
                except Exception:
                    extra = {"task_run_id": outcome.task_run_id}
                    log.exception("worker.report_failed", extra=extra)

"""`App.queues`: the operator's per-queue concurrency limits.

Per-key limits come with the workflow (a task's concurrency_key and key_limit); queue
limits are the operator's, set here (see `orchestrion.store.sql.runs`).
"""

from __future__ import annotations

import re

from orchestrion.app.core import Facet
from orchestrion.errors import NotFound, SpecError
from orchestrion.spec.model import NAME_PATTERN
from orchestrion.store.records import QueueLimit

__all__ = ["Queues"]


class Queues(Facet):
    """How many task runs of a queue may run at once, across all workers."""

    def set_queue_limit(self, queue: str, max_running: int) -> None:
        """At most `max_running` task runs of `queue` run at once, across all workers."""
        with self._core.audited(
            "queue.limit", f"queue {queue}", params={"max_running": max_running}
        ):
            if not re.fullmatch(NAME_PATTERN, queue):
                raise SpecError(f"bad queue name {queue[:100]!r}")
            if max_running < 1:
                raise SpecError("a queue limit is at least 1")
            self.store.runs.set_queue_limit(queue, max_running, now=self.clock.now())

    def clear_queue_limit(self, queue: str) -> None:
        """Let `queue` run without a limit again; `NotFound` if it had none."""
        with self._core.audited("queue.unlimit", f"queue {queue}"):
            if not self.store.runs.clear_queue_limit(queue, now=self.clock.now()):
                raise NotFound(f"queue {queue[:100]!r} has no limit")

    def queue_limits(self) -> list[QueueLimit]:
        """Every queue limit, with how many of the queue's task runs are running now."""
        return self.store.reads.queue_limits(now=self.clock.now())

"""Round trips to the database server, counted per store verb (for benchmarks).

A round trip is one wait for the server: a statement whose result the code waits for, or
a COMMIT. Statements sent without waiting (pipelined, their results arriving with the next
wait) cost none. The PostgreSQL store adds every wait of the calling thread to a
thread-local counter, and the verbs that matter for throughput (claim, finish, heartbeat)
record the difference under their name, with how many task runs they handled, so that a
benchmark can print round trips per task.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["TripCounter", "VerbTrips"]


@dataclass
class VerbTrips:
    """What one verb cost so far: calls, task runs handled, round trips, statements."""

    calls: int = 0
    items: int = 0
    round_trips: int = 0
    statements: int = 0

    def per_item(self) -> float:
        """Round trips per task run handled (0 before any)."""
        return self.round_trips / self.items if self.items else 0.0


class TripCounter:
    """Round trips and statements per verb, across the threads of one store."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._verbs: dict[str, VerbTrips] = {}

    def add(self, round_trips: int, statements: int) -> None:
        """Count waits of the calling thread."""
        local = self._local
        local.trips = getattr(local, "trips", 0) + round_trips
        local.statements = getattr(local, "statements", 0) + statements

    def _now(self) -> tuple[int, int]:
        return getattr(self._local, "trips", 0), getattr(self._local, "statements", 0)

    @contextmanager
    def verb(self, name: str) -> Iterator[list[int]]:
        """Record the waits of the body under `name`; the body appends the number of task
        runs it handled to the yielded list."""
        items: list[int] = []
        trips, statements = self._now()
        try:
            yield items
        finally:
            after_trips, after_statements = self._now()
            with self._lock:
                stats = self._verbs.setdefault(name, VerbTrips())
                stats.calls += 1
                stats.items += sum(items)
                stats.round_trips += after_trips - trips
                stats.statements += after_statements - statements

    def snapshot(self) -> dict[str, VerbTrips]:
        """A copy of the counts so far, by verb."""
        with self._lock:
            return {k: VerbTrips(**vars(v)) for k, v in self._verbs.items()}

    def reset(self) -> None:
        """Forget the counts (a benchmark's warm-up is over)."""
        with self._lock:
            self._verbs.clear()

"""Time is an argument: engine, retry and trigger code take a `Clock` or a `now`.

Times are float seconds since the epoch (UTC) everywhere inside Orchestrion; they are
converted to datetimes only at the edges, for people.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """Where time comes from: the code that decides anything takes one, so tests can move time by
    hand (`FakeClock`)."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for measuring intervals."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """Seconds since the epoch, from the system."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds on the system's monotonic clock."""
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to; for tests."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """The wall time, as last set or advanced."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Moves only with `advance`: a jump of the wall clock by `set` leaves it alone."""
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds`, as real time passing would."""
        with self._lock:
            self._now += seconds
            self._mono += seconds

    def set(self, when: float) -> None:
        """Jump the wall clock (it may go backwards, as real clocks do)."""
        with self._lock:
            self._now = when

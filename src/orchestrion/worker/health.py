"""How the worker's store calls are going, for whoever runs the worker to act on.

A worker's background threads (claim, heartbeat) and its reports retry a failing store with
back-off rather than die: a database restart or a full disk is waited out. They record
here what fails and since when, so that ``orchestrion run`` can end with a clear message
once writes have failed for longer than it will wait, and any process can tell that a
thread ended on an unexpected error (`fatal`) instead of going on without it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["StoreHealth", "guarded", "next_delay"]

log = logging.getLogger("orchestrion.worker")


def next_delay(delay: float, first: float, most: float) -> float:
    """The back-off after another failure in a row: `first`, then doubled, at most `most`."""
    return first if delay <= 0 else min(delay * 2, most)


class StoreHealth:
    """Failing store calls by kind (``claim``, ``heartbeat``, ``report``), and a thread's
    death. Thread-safe; times are the clock's monotonic seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: dict[str, float] = {}
        self._last_error = ""
        #: Set once a background thread ended on an unexpected error: what and why.
        self.fatal: str | None = None

    def failed(self, kind: str, error: BaseException, now: float) -> None:
        """A `kind` call failed with `error` (the first failure in a row starts the clock)."""
        with self._lock:
            self._since.setdefault(kind, now)
            self._last_error = f"{kind}: {error}"

    def succeeded(self, kind: str) -> None:
        """A `kind` call went through: that kind is healthy again."""
        if kind in self._since:
            with self._lock:
                self._since.pop(kind, None)

    def trouble(self, now: float) -> tuple[float, str] | None:
        """(seconds the oldest failing kind has failed, the last error), or None if none
        is failing."""
        with self._lock:
            if not self._since:
                return None
            return now - min(self._since.values()), self._last_error

    def died(self, thread: str, error: BaseException) -> None:
        """Record that `thread` ended on `error`."""
        self.fatal = f"the worker's {thread} thread stopped: {type(error).__name__}: {error}"


def guarded(name: str, target: Callable[[], None], health: StoreHealth) -> Callable[[], None]:
    """`target` for a thread: an error it does not handle is logged and recorded in
    `health` (never a thread that vanishes with a traceback on stderr only)."""

    def run() -> None:
        try:
            target()
        except Exception as exc:  # the last line of defence of a background thread
            health.died(name, exc)  # first: recorded even if logging fails
            log.critical("worker.thread_died", extra={"worker_thread": name}, exc_info=True)

    return run

"""`Notifier`: the wake-up seam. Waiters block until something may have changed instead of
polling at a fixed interval; a wake-up is an accelerator, never a source of truth (every
waiter also wakes on its timeout and looks for itself)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Notifier"]


class Notifier(Protocol):
    """Wake-ups within this process, and after `listen` from other processes' commits."""

    def listen(self, *, work: bool = True, history: bool = False) -> None:
        """Also wake on other processes' commits: `wait_for_change` (work) and
        `wait_for_events` (history)."""
        ...

    def wake(self) -> None:
        """Wake this process's `wait_for_change` callers now (a worker that is stopping)."""
        ...

    def wait_for_change(self, timeout: float) -> None:
        """Block until some task run may have become ready, or `timeout` passes.

        In-process wake-up for workers sharing this store (and, after `listen`, for other
        processes' commits). Returns at once if a wake-up came after the calling thread's
        last `RunStore.claim` began, so that none is lost between a claim and this wait."""
        ...

    def wait_for_events(self, seen: int, timeout: float) -> int:
        """Block until event rows may have been written since the change counter was `seen`,
        or `timeout` passes; returns the counter (compare it to decide whether to look)."""
        ...

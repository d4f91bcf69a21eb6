"""`SqlNotifier`: the `Notifier` of both dialects, over a `Database`'s change counters
(`Signals`) and its way of hearing other processes' commits (`Database.listen`)."""

from __future__ import annotations

from orchestrion.store.sql.database import Database

__all__ = ["SqlNotifier"]


class SqlNotifier:
    """See `orchestrion.store.notifier.Notifier` for the contract of every method."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def listen(self, *, work: bool = True, history: bool = False) -> None:
        self._db.listen(work=work, history=history)

    def wake(self) -> None:
        self._db.signals.work()

    def wait_for_change(self, timeout: float) -> None:
        self._db.signals.wait_for_change(timeout)

    def wait_for_events(self, seen: int, timeout: float) -> int:
        return self._db.signals.wait_for_events(seen, timeout)

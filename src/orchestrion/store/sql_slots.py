"""The queue-limit verbs shared by both dialects, as a mixin of `SqlStore` (see `slots`).

A limit is a row of ``queue_limits``; claims read it with their candidates. Every change
writes its event row in the same transaction.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from orchestrion.store.advance import Advance
from orchestrion.store.records import QueueLimit

__all__ = ["SqlSlotVerbs"]

T = TypeVar("T")


class SqlSlotVerbs(abc.ABC):
    """Set, clear and list queue limits over the two plumbing hooks."""

    @abc.abstractmethod
    def _transact(self, now: float, fn: Callable[[Advance], T]) -> T:
        """Run `fn` in one write transaction and return its result."""

    @abc.abstractmethod
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one statement (``?`` placeholders), outside any write transaction."""

    def set_queue_limit(self, queue: str, max_running: int, *, now: float) -> None:
        if max_running < 1:
            raise ValueError("a queue limit is at least 1")

        def fn(adv: Advance) -> None:
            adv.tx.execute(
                "INSERT INTO queue_limits (queue, max_running, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (queue) DO UPDATE SET max_running = excluded.max_running,"
                " updated_at = excluded.updated_at",
                (queue, max_running, now),
            )
            adv.event(
                None, None, "queue.limit_set", data={"queue": queue, "max_running": max_running}
            )

        self._transact(now, fn)

    def clear_queue_limit(self, queue: str, *, now: float) -> bool:
        def fn(adv: Advance) -> bool:
            gone = adv.tx.execute(
                "DELETE FROM queue_limits WHERE queue = ? RETURNING queue", (queue,)
            ).fetchone()
            if gone is None:
                return False
            adv.event(None, None, "queue.limit_cleared", data={"queue": queue})
            return True

        return self._transact(now, fn)

    def queue_limits(self, *, now: float) -> list[QueueLimit]:
        rows = self._read(
            "SELECT ql.queue, ql.max_running, ql.updated_at, (SELECT count(*) FROM task_runs r"
            " WHERE r.state = 'running' AND r.queue = ql.queue AND r.lease_expires_at > ?)"
            " AS running FROM queue_limits ql ORDER BY ql.queue",
            (now,),
        )
        return [
            QueueLimit(
                queue=r["queue"],
                max_running=int(r["max_running"]),
                running=int(r["running"]),
                updated_at=float(r["updated_at"]),
            )
            for r in rows
        ]

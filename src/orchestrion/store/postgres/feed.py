"""A gap-free event feed on PostgreSQL: `list_events(after_id)` never skips an event.

Event ids come from an identity sequence, drawn at insert and visible at commit, so ids
become visible out of order: a reader that saw id 11 may later see 10 appear, when the
transaction that drew 10 commits after the one that drew 11. A cursor past 11 would skip
10 for good (the API's live stream resumes from the last id it sent).

So a reader only goes as far as the **horizon**: the highest id below which every id is
either visible or given up for lost. A missing id is a transaction still committing, or
one that rolled back (a deadlock retried, a PostgreSQL restart skipping sequence values):
the reader waits for it, and gives it up once it has been missing for `patience` seconds.
Event rows are inserted by the last statement before COMMIT, so a committing transaction
fills its gap within milliseconds; a rolled-back one costs its readers `patience` once.

Ids far below the newest (`WINDOW`) count as settled without looking, so a fresh process
does not scan the whole table; the horizon only moves up, and is shared by the store's
readers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from orchestrion.store.postgres.queries import PG

__all__ = ["EventFeed"]

Read = Callable[[str, Sequence[Any]], list[Any]]

#: Ids this far below the newest one are taken as settled.
WINDOW = 10_000


class EventFeed:
    """The horizon of the history that one store's readers share (see the module
    docstring): it only moves up."""

    def __init__(self, patience: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.patience = patience
        self._clock = clock
        self._lock = threading.Lock()
        self._settled = 0  # every id up to this one is visible or given up
        self._missing_since: dict[int, float] = {}  # first id of a gap -> when first seen

    def horizon(self, read: Read, after: int = 0) -> int:
        """The highest id such that no event above `after` and at or below it can still
        appear."""
        with self._lock:
            settled = self._settled
        rows = read(PG.event_horizon, (max(after, settled), WINDOW))
        floor = int(rows[0]["floor"])
        now = self._clock()
        reached = floor
        with self._lock:
            for row in rows:
                event_id = row["id"]
                if event_id is None:
                    break
                if event_id > reached + 1:  # ids reached+1 .. event_id-1 are missing
                    since = self._missing_since.setdefault(reached + 1, now)
                    if now - since < self.patience:
                        break
                reached = int(event_id)
            self._missing_since = {k: v for k, v in self._missing_since.items() if k > reached}
            # Below the floor all is settled, unless the floor was a cursor above what
            # this feed had settled (ids between were not looked at).
            if floor != after or after <= settled:
                self._settled = max(self._settled, reached)
        return reached

"""Portable reads for the trigger verbs: schedule state, fires, finished runs, backfills.

Each function takes the dialect's `read(sql, params) -> rows` so the SQL lives once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from orchestrion.errors import NotFound
from orchestrion.states import RunEvent, RunState, run_target
from orchestrion.store.record import replace
from orchestrion.store.records import BackfillRecord, FinishedRun, FireRecord, ScheduleState
from orchestrion.store.sql import rows
from orchestrion.store.sql.named import marks, where
from orchestrion.store.sql.queries import Q

__all__ = [
    "Read",
    "finished_runs",
    "get_backfill",
    "get_cursor",
    "list_backfills",
    "list_fires",
    "queued_fire_keys",
    "schedule_states",
]

Read = Callable[[str, Sequence[Any]], list[Any]]

#: The event kinds that end a run: ``run.<event>`` of each run event that leads to a
#: finished state (succeed, fail, cancel).
_RUN_ENDS = tuple(f"run.{e.value}" for e in RunEvent if run_target(e).finished)
_FINISHED_RUNS = Q.finished_runs.fill(ends=marks(len(_RUN_ENDS)))


def schedule_states(read: Read) -> dict[str, ScheduleState]:
    """Every schedule's state, by schedule key."""
    return {r["schedule_key"]: rows.SCHEDULE_STATE(r) for r in read(Q.schedule_states, ())}


def queued_fire_keys(read: Read) -> set[str]:
    """The schedules with a fire queued behind a run still going."""
    return {r["schedule_key"] for r in read(Q.queued_fire_keys, ())}


def list_fires(read: Read, key: str | None, limit: int) -> list[FireRecord]:
    """The newest fires, of every schedule (by id) or of one (by nominal time)."""
    found = read(Q.fires, (limit,)) if key is None else read(Q.fires_of_schedule, (key, limit))
    return [rows.FIRE(r) for r in found]


def finished_runs(read: Read, after: int, limit: int) -> tuple[list[FinishedRun], int]:
    """Runs that ended after event `after`, in history order, each in the state it ended
    in (it may have been retried since), and the position to resume from. A negative
    `after` returns no runs and the current end of the history.

    Event ids are assigned in commit order (SQLite writes one at a time), so nothing can
    appear later below the returned position.
    """
    top = int(read(Q.last_event_id, ())[0]["m"] or 0)
    if after < 0:
        return [], top
    ended = read(_FINISHED_RUNS, (after, top, *_RUN_ENDS, limit))
    found = [
        FinishedRun(
            event_id=r["event_id"],
            run=replace(rows.RUN(r), state=RunState(r["ended"])),
        )
        for r in ended
    ]
    position = found[-1].event_id if len(found) >= limit else max(top, after)
    return found, position


def get_cursor(read: Read, name: str) -> int | None:
    """A reader's position in the history (None: it never set one)."""
    found = read(Q.cursor, (name,))
    return None if not found else int(found[0]["position"])


def get_backfill(read: Read, backfill_id: str) -> BackfillRecord:
    """One backfill, with its runs counted by state, or `NotFound`."""
    found = read(Q.backfill, (backfill_id,))
    if not found:
        raise NotFound(f"no backfill with id {backfill_id!r}")
    return _backfill(read, found[0])


def list_backfills(read: Read, workflow: str | None, state: str | None) -> list[BackfillRecord]:
    """Backfills, newest first, of a workflow and in a state where given."""
    conditions: list[str] = []
    params: list[Any] = []
    if workflow is not None:
        conditions.append(Q.backfills_where_workflow)
        params.append(workflow)
    if state is not None:
        conditions.append(Q.backfills_where_state)
        params.append(state)
    found = read(Q.backfills_page.fill(where=where(*conditions)), params)
    return [_backfill(read, r) for r in found]


def _backfill(read: Read, row: Any) -> BackfillRecord:
    counts = {r["state"]: r["n"] for r in read(Q.backfill_run_counts, (f"backfill:{row['id']}",))}
    return rows.BACKFILL(row, counts=counts)

"""Portable reads for the trigger verbs: schedule state, fires, finished runs, backfills.

Each function takes the dialect's `read(sql, params) -> rows` so the SQL lives once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from orchestrion.errors import NotFound
from orchestrion.states import RunState
from orchestrion.store.records import BackfillRecord, FinishedRun, FireRecord, ScheduleState
from orchestrion.store.sql import queries
from orchestrion.store.sql.advance import loads

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

#: The event kinds that end a run (`orchestrion.states.RunEvent` values).
_RUN_ENDS = ("run.succeed", "run.fail", "run.cancel")


def schedule_states(read: Read) -> dict[str, ScheduleState]:
    rows = read("SELECT * FROM schedule_state", ())
    return {
        r["schedule_key"]: ScheduleState(
            schedule_key=r["schedule_key"],
            workflow=r["workflow"],
            cursor=r["cursor"],
            last_fire=r["last_fire"],
        )
        for r in rows
    }


def queued_fire_keys(read: Read) -> set[str]:
    return {r["schedule_key"] for r in read("SELECT DISTINCT schedule_key FROM fires"
                                             " WHERE state = 'queued'", ())}  # fmt: skip


def list_fires(read: Read, key: str | None, limit: int) -> list[FireRecord]:
    if key is None:
        rows = read("SELECT * FROM fires ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = read(
            "SELECT * FROM fires WHERE schedule_key = ? ORDER BY nominal DESC LIMIT ?",
            (key, limit),
        )
    return [
        FireRecord(
            id=r["id"],
            schedule_key=r["schedule_key"],
            workflow=r["workflow"],
            nominal=r["nominal"],
            state=r["state"],
            run_id=r["run_id"],
            params=loads(r["params"]),
            error=r["error"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


def finished_runs(read: Read, after: int, limit: int) -> tuple[list[FinishedRun], int]:
    """Runs that ended after event `after`, in history order, each in the state it ended
    in (it may have been retried since), and the position to resume from. A negative
    `after` returns no runs and the current end of the history.

    Event ids are assigned in commit order (SQLite writes one at a time), so nothing can
    appear later below the returned position.
    """
    top = int(read("SELECT max(id) AS m FROM events", ())[0]["m"] or 0)
    if after < 0:
        return [], top
    rows = read(
        "SELECT e.id AS event_id, e.to_state AS ended, r.* FROM events e JOIN runs r"
        " ON r.id = e.run_id WHERE e.id > ? AND e.id <= ? AND e.kind IN (?, ?, ?)"
        " ORDER BY e.id LIMIT ?",
        (after, top, *_RUN_ENDS, limit),
    )
    found = [
        FinishedRun(
            event_id=r["event_id"],
            run=dataclasses.replace(queries.run_record(r), state=RunState(r["ended"])),
        )
        for r in rows
    ]
    position = found[-1].event_id if len(found) >= limit else max(top, after)
    return found, position


def get_cursor(read: Read, name: str) -> int | None:
    rows = read("SELECT position FROM cursors WHERE name = ?", (name,))
    return None if not rows else int(rows[0]["position"])


def get_backfill(read: Read, backfill_id: str) -> BackfillRecord:
    rows = read("SELECT * FROM backfills WHERE id = ?", (backfill_id,))
    if not rows:
        raise NotFound(f"no backfill with id {backfill_id!r}")
    return _backfill(read, rows[0])


def list_backfills(read: Read, workflow: str | None, state: str | None) -> list[BackfillRecord]:
    sql, params = "SELECT * FROM backfills WHERE 1 = 1", list[Any]()
    if workflow is not None:
        sql, params = sql + " AND workflow = ?", [*params, workflow]
    if state is not None:
        sql, params = sql + " AND state = ?", [*params, state]
    return [_backfill(read, r) for r in read(sql + " ORDER BY created_at DESC, id", params)]


def _backfill(read: Read, row: Any) -> BackfillRecord:
    counts = {
        r["state"]: r["n"]
        for r in read(
            "SELECT r.state AS state, count(*) AS n FROM fires f JOIN runs r ON r.id = f.run_id"
            " WHERE f.schedule_key = ? GROUP BY r.state",
            (f"backfill:{row['id']}",),
        )
    }
    return BackfillRecord(
        id=row["id"],
        workflow=row["workflow"],
        version=row["version"],
        schedule_key=row["schedule_key"],
        start=row["range_start"],
        end=row["range_end"],
        max_active=row["max_active"],
        priority=row["priority"],
        state=row["state"],
        total=row["total"],
        created=row["created"],
        cursor=row["cursor"],
        counts=counts,
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )

"""Slots: how many task runs may run at once, per task, per queue and per concurrency key.

Three limits bound a claim:

- a task's ``concurrency`` (``conc_key`` = ``workflow:task``, ``conc_limit`` on the row);
- an operator's queue limit (table ``queue_limits``, set with ``orchestrion queues
  set-limit``);
- a task's ``concurrency_key`` template, rendered when the task run becomes ready
  (`slot_keys.slot_key`, with the task's ``key_limit`` as ``slot_limit``), shared across tasks,
  workflows and runs.

A slot is not a counter: it is a running task run, counted when a claim decides. Queue and
key slots count only task runs whose lease is unexpired, so the slot of a worker that was
SIGKILLed frees itself when its lease expires, before the reaper even turns the attempt
`lost`; nothing is incremented that a crash could leak. The claim makes the count stable
(SQLite by writing alone; PostgreSQL by one advisory lock per limited name, see
`postgres.claim`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.named import marks
from orchestrion.store.sql.queries import Q

__all__ = ["lock_names", "within_limits"]

# A claim's candidates carry their limits (``Q.slot_cols``) and pass over full ones
# (``Q.conc_filter``, ``Q.slot_filter``); `within_limits` then counts exactly.

#: Each kind of limit, the statement counting its running task runs, and whether that
#: count takes the lease's expiry as a parameter. The task limit counts running rows (as
#: it always has); queue and key slots count unexpired leases only.
_COUNTS = (
    ("conc", Q.running_per_conc_key, False),
    ("queue", Q.running_per_queue, True),
    ("key", Q.running_per_slot_key, True),
)
_KINDS = tuple(kind for kind, _, _ in _COUNTS)


def _names(row: Any) -> list[tuple[str, str, int]]:
    """(kind, name, limit) of every limit that holds candidate `row`."""
    out: list[tuple[str, str, int]] = []
    if row["conc_key"] is not None:
        out.append(("conc", row["conc_key"], row["conc_limit"]))
    if row["queue_limit"] is not None:
        out.append(("queue", row["queue"], row["queue_limit"]))
    if row["slot_key"] is not None:
        out.append(("key", row["slot_key"], row["slot_limit"]))
    return out


def lock_names(rows: Sequence[Any]) -> list[str]:
    """The sorted advisory-lock names a PostgreSQL claim of `rows` takes before counting.
    (Kinds are prefixed; a hash collision only makes claimers queue behind each other.)"""
    return sorted({f"{kind}/{name}" for row in rows for kind, name, _ in _names(row)})


def _running(adv: Advance, rows: Sequence[Any]) -> dict[tuple[str, str], int]:
    """Running task runs per limited name of `rows`, in one statement."""
    wanted: dict[str, set[str]] = {kind: set() for kind in _KINDS}
    for row in rows:
        for kind, name, _ in _names(row):
            wanted[kind].add(name)
    parts: list[str] = []
    params: list[Any] = []
    for kind, count, leased in _COUNTS:
        names = sorted(wanted[kind])
        if not names:
            continue
        parts.append(count.fill(names=marks(len(names))))
        params.extend(names)
        if leased:
            params.append(adv.now)
    if not parts:
        return {}
    return {
        (r["kind"], r["name"]): int(r["n"])
        for r in adv.tx.execute(" UNION ALL ".join(parts), params).fetchall()
    }


def within_limits(adv: Advance, rows: Sequence[Any], limit: int) -> list[Any]:
    """The first `limit` of the candidate `rows` that fit every limit holding them,
    counting running task runs now (the caller makes that count stable)."""
    running = _running(adv, rows)
    chosen: list[Any] = []
    for row in rows:
        if len(chosen) >= limit:
            break
        names = _names(row)
        if any(running.get((kind, name), 0) >= most for kind, name, most in names):
            continue
        for kind, name, _ in names:
            running[(kind, name)] = running.get((kind, name), 0) + 1
        chosen.append(row)
    return chosen

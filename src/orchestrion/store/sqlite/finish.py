"""Finishing a batch of attempts on SQLite: the successes set-wise, the rest one by one.

A worker reports the outcomes of attempts that ended together in one transaction
(`worker.reporting`). Recording each success alone costs eight statements and their
Python around them: read the row, close the attempt, move the row, read it again, count it
into its group or downstream rows, count it into its run. Here the batch's successes
(tasks and mapped items, the common outcome) are read in one statement and recorded with
one `executemany` each for the attempts and the moves, then counted once per mapped
group, per set of downstream rows and per run, however many of the batch they hold.
The decisions stay `Advance`'s (`group_counted`, `decide_counted`, `count_finished`), in
the same transaction, as PostgreSQL's batch finish (`postgres.finish`) takes them.

Counting a run's finished task runs last is safe: until then its counter is at least the
number still to count, so no decision in between can see it reach zero early.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from orchestrion.errors import StoreError
from orchestrion.states import TASK_TRANSITIONS, TaskEvent, TaskState, task_target
from orchestrion.store.records import Outcome
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.finish_batch import Successes, apply_rest, successes
from orchestrion.store.sql.named import marks
from orchestrion.store.sql.queries import Q
from orchestrion.store.sqlite.queries import SQLITE

__all__ = ["finish"]

_RUNNING = TaskState.RUNNING.value
_SUCCEEDED = task_target(TaskEvent.SUCCEED).value
_SUCCEED_EVENT = f"task.{TaskEvent.SUCCEED.value}"
assert (TaskState.RUNNING, TaskEvent.SUCCEED) in TASK_TRANSITIONS


def finish(adv: Advance, outcomes: Sequence[Outcome]) -> tuple[list[int], list[int]]:
    """Record `outcomes`: (applied, superseded task run ids)."""
    fast, first = successes(outcomes)
    moved = _succeed(adv, fast) if fast else set()
    return apply_rest(adv, outcomes, moved, first)


def _succeed(adv: Advance, fast: Successes) -> set[int]:
    """Move the running task runs of `fast` whose epoch matches to succeeded, and count
    them; the ones that do not match go the general way (recorded as superseded)."""
    tx, now = adv.tx, adv.now
    if len(fast) == 1:  # a lone report (a chain, an idle worker): one statement less
        ((task_run_id, (outcome, encoded)),) = fast.items()
        moved = tx.execute(
            SQLITE.succeed_one, (_SUCCEEDED, encoded, now, task_run_id, _RUNNING, outcome.epoch)
        ).fetchone()
        rows = [] if moved is None else [moved]
    else:
        rows = _move_all(adv, fast)
    if not rows:
        return set()
    tx.executemany(
        Q.close_attempt,
        [(now, "succeeded", None, None, None, row["id"], row["lease_epoch"]) for row in rows],
    )
    for row in rows:
        adv.event(row["run_id"], row["id"], _SUCCEED_EVENT, _RUNNING, _SUCCEEDED)
        if row["kind"] == "task":
            adv.remember_result(row["run_id"], row["task_name"], fast[row["id"]][1])
    _count(adv, rows)
    return {row["id"] for row in rows}


def _move_all(adv: Advance, fast: Successes) -> list[Any]:
    """Move the running task runs of `fast` whose epoch matches to succeeded: their rows
    (as read before the move)."""
    ids = sorted(fast)
    rows = [
        row
        for row in adv.tx.execute(SQLITE.running_rows.fill(ids=marks(len(ids))), ids).fetchall()
        if row["lease_epoch"] == fast[row["id"]][0].epoch
    ]
    moves = adv.tx.executemany(
        SQLITE.succeed_running,
        [
            (_SUCCEEDED, fast[row["id"]][1], adv.now, row["id"], _RUNNING, row["lease_epoch"])
            for row in rows
        ],
    )
    if moves.rowcount != len(rows):  # one writer: nothing can move them since the read
        raise StoreError(f"{len(rows) - moves.rowcount} task runs moved while finishing")
    return rows


def _count(adv: Advance, rows: Sequence[Any]) -> None:
    """Count the succeeded `rows` into their groups, downstream rows and runs, then take
    the decisions due."""
    groups: Counter[int] = Counter()
    downstream: defaultdict[str, Counter[str]] = defaultdict(Counter)
    runs: Counter[str] = Counter()
    for row in rows:
        run_id = row["run_id"]
        runs[run_id] += 1
        if row["kind"] == "item":
            groups[row["group_id"]] += 1
            continue
        spec, _ = adv.spec_for_run(run_id)
        downstream[run_id].update(spec.downstream().get(row["task_name"], ()))
    for group_id, n in groups.items():
        adv.group_counted(adv.tx.execute(Q.count_item, (n, n, 0, 0, group_id)).fetchone())
    for run_id, names in downstream.items():
        spec, _ = adv.spec_for_run(run_id)
        by_count: defaultdict[int, list[str]] = defaultdict(list)
        for name, n in names.items():
            by_count[n].append(name)
        for n, same in sorted(by_count.items()):
            counted = adv.tx.execute(
                Q.count_downstream.fill(names=marks(len(same))), (n, n, 0, 0, run_id, *same)
            ).fetchall()
            adv.decide_counted(spec, counted)
    for run_id, n in runs.items():
        adv.count_finished(run_id, n)

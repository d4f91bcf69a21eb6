"""Finishing attempts on PostgreSQL in as few round trips as the outcomes allow.

The common outcome, a task or mapped item that succeeded, is recorded for a whole batch of
attempts by one statement (``PG.succeed_batch``): it takes the locks in the store's order (run rows
``FOR KEY SHARE``, then the task runs), moves each task run from running to succeeded under
the compare-and-set guard ``state = 'running' AND lease_epoch = <the attempt's epoch>``,
closes the attempts, counts the finished task runs into their downstream rows and mapped
groups (one update per row, however many of its upstreams or items the batch holds), and
decrements the runs' unfinished counters. It returns what the decisions need: the ids that
moved, the counted rows and the runs. The decisions themselves stay where SQLite takes them
(`Advance.decide_counted`, `group_counted`, `finalize_run`, the pure planner), inside the
same transaction; when none is due (most finishes of a fan-out), the finish costs that one
statement, which travels with the BEGIN, and the COMMIT, which carries the event rows.

The statement needs each task's downstream task names, from the workflow spec, so the
caller passes what it knows of each task run (`TaskFacts`, immutable once the task run
exists: the store remembers them from its claims) and anything unknown is read first.
Every other outcome (a failure, a skip, an undo step, a too-large result, an attempt whose
lease was lost) goes the general way (`lifecycle.apply_outcome`), which also records a
superseded attempt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, cast

from orchestrion.states import TASK_TRANSITIONS, TaskEvent, TaskState, task_target
from orchestrion.store.postgres.queries import PG
from orchestrion.store.postgres.tx import PgTx
from orchestrion.store.records import Outcome
from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.finish_batch import apply_rest, successes

__all__ = ["COUNTED_TO_ZERO", "TaskFacts", "finish"]

_RUNNING = TaskState.RUNNING.value
_SUCCEEDED = task_target(TaskEvent.SUCCEED).value
assert (TaskState.RUNNING, TaskEvent.SUCCEED) in TASK_TRANSITIONS


class TaskFacts(NamedTuple):
    """What never changes about a task run."""

    run_id: str
    workflow: str
    version: str
    task_name: str
    kind: str


#: The SQLSTATE `orchestrion_expect_zero` fails with.
COUNTED_TO_ZERO = "OR001"


def finish(
    adv: Advance,
    outcomes: Sequence[Outcome],
    known: Mapping[int, TaskFacts],
    *,
    optimistic: bool,
) -> tuple[list[int], list[int]]:
    """Record `outcomes` (applied, superseded task run ids), the successes of tasks and
    items in one statement, the rest one by one as on SQLite, in task run id order.
    `optimistic`: when every success is a mapped item, queue their counting with the
    COMMIT (``PG.count_items``); the transaction fails with `COUNTED_TO_ZERO` if that was
    wrong, and the caller runs it again without."""
    fast, first = successes(outcomes)
    facts = _facts(adv, list(fast), known)
    fast = {k: v for k, v in fast.items() if k in facts and facts[k].kind in ("task", "item")}
    if fast and optimistic and all(facts[i].kind == "item" for i in fast):
        moved = _succeed_items(adv, fast, facts)
    else:
        moved = _succeed(adv, fast, facts) if fast else set()
    return apply_rest(adv, outcomes, moved, first)


def _facts(
    adv: Advance, ids: Sequence[int], known: Mapping[int, TaskFacts]
) -> dict[int, TaskFacts]:
    facts = {i: known[i] for i in ids if i in known}
    missing = [i for i in ids if i not in facts]
    if missing:
        for row in adv.tx.execute(PG.task_facts, (missing,)).fetchall():
            facts[row["id"]] = TaskFacts(
                row["run_id"], row["workflow"], row["version"], row["task_name"], row["kind"]
            )
    return facts


def _succeed(
    adv: Advance, fast: Mapping[int, tuple[Outcome, str]], facts: Mapping[int, TaskFacts]
) -> set[int]:
    ids = sorted(fast)
    edge_src: list[int] = []
    edge_name: list[str] = []
    for i in ids:
        fact = facts[i]
        if fact.kind == "task":
            spec = adv.spec_of(fact.workflow, fact.version)
            for name in spec.downstream().get(fact.task_name, ()):
                edge_src.append(i)
                edge_name.append(name)
    row = adv.tx.execute(
        PG.succeed_batch, (*_move_params(adv, ids, fast, facts), edge_src, edge_name)
    ).fetchone()
    moved = set(row["moved"] or ())
    for i in ids:
        if i in moved:
            adv.event(facts[i].run_id, i, f"task.{TaskEvent.SUCCEED.value}", _RUNNING, _SUCCEEDED)
    runs: list[dict[str, Any]] = row["runs"] or []
    for run in runs:
        adv.remember_run(run)
    for counted in row["counted"] or ():
        _decide(adv, counted)
    for run in runs:
        if run["unfinished"] == 0:
            adv.finalize_run(run["id"])
    return moved


def _succeed_items(
    adv: Advance, fast: Mapping[int, tuple[Outcome, str]], facts: Mapping[int, TaskFacts]
) -> set[int]:
    ids = sorted(fast)
    rows = adv.tx.execute(PG.succeed_items, _move_params(adv, ids, fast, facts)).fetchall()
    groups: Counter[int] = Counter()
    runs: Counter[str] = Counter()
    for row in rows:
        groups[row["group_id"]] += 1
        runs[row["run_id"]] += 1
        adv.event(row["run_id"], row["id"], f"task.{TaskEvent.SUCCEED.value}", _RUNNING, _SUCCEEDED)
    if rows:
        cast(PgTx, adv.tx).queue(
            PG.count_items,
            (list(groups), list(groups.values()), list(runs), list(runs.values())),
        )
    return {row["id"] for row in rows}


def _move_params(
    adv: Advance,
    ids: Sequence[int],
    fast: Mapping[int, tuple[Outcome, str]],
    facts: Mapping[int, TaskFacts],
) -> tuple[Any, ...]:
    return (
        list(ids),
        [fast[i][0].epoch for i in ids],
        [fast[i][1] for i in ids],
        sorted({facts[i].run_id for i in ids}),
        _SUCCEEDED,
        adv.now,
        _RUNNING,
        adv.now,
    )


def _decide(adv: Advance, counted: dict[str, Any]) -> None:
    """Take the decision a counted row may now be due for."""
    if counted.pop("via") == "item":
        adv.group_counted(counted)
    else:
        spec, _ = adv.spec_for_run(counted["run_id"])
        adv.decide_counted(spec, [counted], held=True)  # counted: updated, so locked

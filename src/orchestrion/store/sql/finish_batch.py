"""What both dialects' batch finish share: which outcomes of a batch may take the fast
path (successes), and the general way for the rest.

A dialect records a batch's successes together (PostgreSQL in one statement,
`postgres.finish`; SQLite in a few set-wise statements, `sqlite.finish`); everything
else (a failure, a skip, an undo step, a too-large result, a superseded attempt) goes
through `lifecycle.apply_outcome` one outcome at a time, in task run id order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from orchestrion.store.records import Outcome
from orchestrion.store.sql import lifecycle
from orchestrion.store.sql.advance import MAX_RESULT_BYTES, Advance, dumps

__all__ = ["Successes", "apply_rest", "successes"]

#: Task run id -> (its success, the result's JSON text).
Successes = dict[int, tuple[Outcome, str]]


def successes(outcomes: Sequence[Outcome]) -> tuple[Successes, dict[int, int]]:
    """The successes that may take the fast path, and each task run's first position.

    Only a task run's first report in the batch may: the first report of an attempt is its
    outcome, and a repeat (a success or a failure) is recorded as superseded, never dropped
    or let win. A result over the size cap takes the general way (which fails it)."""
    fast: Successes = {}
    first: dict[int, int] = {}  # task run id -> position of its first report
    for position, outcome in enumerate(outcomes):
        if outcome.task_run_id in first:
            continue
        first[outcome.task_run_id] = position
        # A stored result or artifacts have rows of their own to write: the general way.
        if outcome.status == "succeeded" and outcome.stored is None and not outcome.artifacts:
            encoded = dumps(outcome.result)
            if len(encoded.encode()) <= MAX_RESULT_BYTES:
                fast[outcome.task_run_id] = (outcome, encoded)
    return fast, first


def apply_rest(
    adv: Advance, outcomes: Sequence[Outcome], moved: Collection[int], first: Mapping[int, int]
) -> tuple[list[int], list[int]]:
    """Record every outcome but the fast path's (`moved`) the general way, in task run id
    order and a task run's reports in the order they came: (applied, superseded)."""
    applied, superseded = sorted(moved), []
    rest = sorted(enumerate(outcomes), key=lambda po: (po[1].task_run_id, po[0]))
    for position, outcome in rest:
        if outcome.task_run_id in moved and first[outcome.task_run_id] == position:
            continue
        if lifecycle.apply_outcome(adv, outcome):
            applied.append(outcome.task_run_id)
        else:
            superseded.append(outcome.task_run_id)
    if any(o.cache is not None for o in outcomes):  # only a cached task's outcome has one
        from orchestrion.store.sql.cache import record_cache  # imported by caching runs only

        record_cache(adv, outcomes, applied)
    if any(o.assets for o in outcomes):
        from orchestrion.store.sql.assets import record_produced

        record_produced(adv, outcomes, moved if len(applied) == len(moved) else set(applied))
    return applied, superseded

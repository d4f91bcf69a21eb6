"""The state guards of the store's SQL, derived from the transition tables of
`orchestrion.states`, so that no statement spells a state set by hand.

Each guard is a name that the ``queries.sql`` files write in braces (``state IN
{task_claimable}``) and that `named.load_queries` fills, once at import, with the rendered
SQL literal: an IN list for a set of states (``('queued', 'retry_wait')``), a quoted
literal for one state (``'running'``). A new edge in a transition table changes the SQL
with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType

from orchestrion.states import (
    RunEvent,
    RunState,
    TaskEvent,
    TaskState,
    run_sources,
    task_sources,
    task_target,
)

__all__ = ["GUARDS", "STATE_SETS", "in_list", "literal"]


def literal(state: StrEnum) -> str:
    """One state as a SQL string literal: ``'running'``."""
    value = state.value
    if "'" in value:  # state values are identifiers; refuse anything that needs quoting
        raise ValueError(f"state {value!r} cannot be a plain SQL literal")
    return f"'{value}'"


def in_list(states: Iterable[StrEnum]) -> str:
    """A set of states as the right side of a SQL IN: ``('queued', 'retry_wait')``, in
    the transition table's order."""
    rendered = [literal(s) for s in states]
    if not rendered:
        raise ValueError("an empty state set guards nothing")
    return f"({', '.join(rendered)})"


_STARTABLE = run_sources(RunEvent.START)

#: Every guard as the states it stands for, with where each comes from.
STATE_SETS: Mapping[str, tuple[TaskState, ...] | tuple[RunState, ...]] = MappingProxyType(
    {
        # Task runs a worker may claim (once `ready_at` has passed).
        "task_claimable": task_sources(TaskEvent.CLAIM),
        # The state of a task run under a lease: where a claim puts it.
        "task_leased": (task_target(TaskEvent.CLAIM),),
        # Task runs a cancel stops: every unfinished state.
        "task_cancelable": task_sources(TaskEvent.CANCEL),
        # Task runs not yet decided: readiness (or a skip) is still to come.
        "task_undecided": task_sources(TaskEvent.READY),
        # Where a task run begins: undecided (its upstream counters decide it).
        "task_new": task_sources(TaskEvent.READY),
        # Finished task runs a retry sets back to pending (a compensated run's undo steps
        # that failed or were canceled run again).
        "task_resettable": task_sources(TaskEvent.RESET),
        # Where the items of a mapped task begin: ready at once.
        "task_ready": (task_target(TaskEvent.READY),),
        # Runs waiting for a slot under their workflow's max active runs.
        "run_startable": _STARTABLE,
        # Runs that can still be stopped: every unfinished state.
        "run_cancelable": run_sources(RunEvent.CANCEL),
        # Runs that hold a slot under max active runs: started and not finished.
        "run_active": tuple(s for s in run_sources(RunEvent.CANCEL) if s not in _STARTABLE),
    }
)

#: Single states render as a literal (``state = {task_leased}``, or a value in an INSERT);
#: sets as an IN list (``state IN {task_claimable}``).
_SINGLE = frozenset({"task_leased", "task_new", "task_ready"})


def _render(name: str, states: tuple[StrEnum, ...]) -> str:
    if name not in _SINGLE:
        return in_list(states)
    if len(states) != 1:
        raise ValueError(f"guard {name} stands for one state, not {[s.value for s in states]}")
    return literal(states[0])


#: The rendered guards, by name, as `named.load_queries` substitutes them.
GUARDS: Mapping[str, str] = MappingProxyType(
    {name: _render(name, states) for name, states in STATE_SETS.items()}
)

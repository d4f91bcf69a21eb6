"""The transition tables: the single source of every guard the store applies."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TypeVar

import pytest

from orchestrion.errors import IllegalTransition
from orchestrion.states import (
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    RunEvent,
    RunState,
    TaskEvent,
    TaskState,
    next_run_state,
    next_task_state,
    run_sources,
    run_target,
    task_sources,
    task_target,
)

T, E = TaskState, TaskEvent
R, RE = RunState, RunEvent

# A state and an event, for the reachability walk over either table.
S = TypeVar("S")
Ev = TypeVar("Ev")

#: The task lifecycle as the design draws it, written out independently of the table.
EXPECTED_TASK_EDGES: dict[tuple[TaskState, TaskEvent], TaskState] = {
    (T.PENDING, E.READY): T.QUEUED,
    (T.PENDING, E.SKIP): T.SKIPPED,
    (T.PENDING, E.UPSTREAM_FAILED): T.UPSTREAM_FAILED,
    (T.PENDING, E.EXPAND): T.WAITING,
    (T.PENDING, E.AWAIT): T.WAITING,  # an approval, signal, event or sensor step
    (T.PENDING, E.CANCEL): T.CANCELED,
    (T.PENDING, E.FAIL): T.FAILED,
    (T.PENDING, E.CARRY): T.SUCCEEDED,
    (T.QUEUED, E.CLAIM): T.RUNNING,
    (T.QUEUED, E.CANCEL): T.CANCELED,
    (T.RETRY_WAIT, E.CLAIM): T.RUNNING,
    (T.RETRY_WAIT, E.CANCEL): T.CANCELED,
    (T.RUNNING, E.SUCCEED): T.SUCCEEDED,
    (T.RUNNING, E.FAIL): T.FAILED,
    (T.RUNNING, E.RETRY): T.RETRY_WAIT,
    (T.RUNNING, E.SKIP): T.SKIPPED,
    (T.RUNNING, E.WAIT): T.WAITING,
    (T.RUNNING, E.CANCEL): T.CANCELED,
    (T.WAITING, E.SUCCEED): T.SUCCEEDED,
    (T.WAITING, E.FAIL): T.FAILED,
    (T.WAITING, E.CANCEL): T.CANCELED,
    (T.FAILED, E.REQUEUE): T.QUEUED,
    (T.UPSTREAM_FAILED, E.RESET): T.PENDING,
    (T.FAILED, E.RESET): T.PENDING,
    (T.CANCELED, E.RESET): T.PENDING,
    (T.FAILED, E.REOPEN): T.WAITING,
    (T.CANCELED, E.REOPEN): T.WAITING,
    (T.SUCCEEDED, E.COMPENSATE): T.COMPENSATED,
    (T.SKIPPED, E.RESET): T.PENDING,
    **{
        (s, E.MARK_SUCCEEDED): T.SUCCEEDED
        for s in (
            T.PENDING,
            T.QUEUED,
            T.RUNNING,
            T.RETRY_WAIT,
            T.WAITING,
            T.FAILED,
            T.UPSTREAM_FAILED,
            T.CANCELED,
            T.SKIPPED,
        )
    },
    **{
        (s, E.MARK_FAILED): T.FAILED
        for s in (T.PENDING, T.QUEUED, T.RUNNING, T.RETRY_WAIT, T.WAITING)
    },
}

EXPECTED_RUN_EDGES: dict[tuple[RunState, RunEvent], RunState] = {
    (R.QUEUED, RE.START): R.RUNNING,
    (R.QUEUED, RE.CANCEL): R.CANCELED,
    (R.RUNNING, RE.SUCCEED): R.SUCCEEDED,
    (R.RUNNING, RE.FAIL): R.FAILED,
    (R.RUNNING, RE.COMPENSATE): R.COMPENSATING,
    (R.RUNNING, RE.CANCEL): R.CANCELED,
    (R.COMPENSATING, RE.FAIL): R.FAILED,
    (R.COMPENSATING, RE.CANCEL): R.CANCELED,
    (R.FAILED, RE.RETRY): R.RUNNING,
    (R.CANCELED, RE.RETRY): R.RUNNING,
    (R.FAILED, RE.RETRY_UNDO): R.COMPENSATING,
    (R.CANCELED, RE.RETRY_UNDO): R.COMPENSATING,
}


def test_task_table_is_the_designed_lifecycle() -> None:
    assert TASK_TRANSITIONS == EXPECTED_TASK_EDGES


def test_run_table_is_the_designed_lifecycle() -> None:
    assert RUN_TRANSITIONS == EXPECTED_RUN_EDGES


@pytest.mark.parametrize("event", list(TaskEvent))
def test_every_task_event_has_exactly_one_target(event: TaskEvent) -> None:
    targets = {to for (_, ev), to in TASK_TRANSITIONS.items() if ev is event}
    assert len(targets) == 1, f"{event} leads to {targets}"
    assert task_target(event) in targets


@pytest.mark.parametrize("event", list(RunEvent))
def test_every_run_event_has_exactly_one_target(event: RunEvent) -> None:
    targets = {to for (_, ev), to in RUN_TRANSITIONS.items() if ev is event}
    assert len(targets) == 1, f"{event} leads to {targets}"
    assert run_target(event) in targets


@pytest.mark.parametrize("event", list(TaskEvent))
def test_task_sources_match_the_table(event: TaskEvent) -> None:
    expected = {s for (s, ev) in TASK_TRANSITIONS if ev is event}
    sources = task_sources(event)
    assert set(sources) == expected
    assert len(sources) == len(set(sources))
    assert sources, f"{event} is never legal"


@pytest.mark.parametrize("event", list(RunEvent))
def test_run_sources_match_the_table(event: RunEvent) -> None:
    expected = {s for (s, ev) in RUN_TRANSITIONS if ev is event}
    sources = run_sources(event)
    assert set(sources) == expected
    assert len(sources) == len(set(sources))
    assert sources, f"{event} is never legal"


@pytest.mark.parametrize(("state", "event"), list(itertools.product(TaskState, TaskEvent)), ids=str)
def test_every_task_pair(state: TaskState, event: TaskEvent) -> None:
    """Table-driven over the full product: legal pairs land on the table's target, all
    others raise and name both the event and the state."""
    expected = EXPECTED_TASK_EDGES.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            next_task_state(state, event)
        assert event.value in str(info.value)
        assert state.value in str(info.value)
        assert state not in task_sources(event)
    else:
        assert next_task_state(state, event) is expected
        assert state in task_sources(event)
        assert task_target(event) is expected


@pytest.mark.parametrize(("state", "event"), list(itertools.product(RunState, RunEvent)), ids=str)
def test_every_run_pair(state: RunState, event: RunEvent) -> None:
    expected = EXPECTED_RUN_EDGES.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            next_run_state(state, event)
        assert event.value in str(info.value)
        assert state.value in str(info.value)
        assert state not in run_sources(event)
    else:
        assert next_run_state(state, event) is expected
        assert state in run_sources(event)
        assert run_target(event) is expected


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (T.SUCCEEDED, E.FAIL),
        (T.SUCCEEDED, E.CANCEL),
        (T.SKIPPED, E.READY),
        (T.COMPENSATED, E.COMPENSATE),
        (T.QUEUED, E.SUCCEED),
        (T.PENDING, E.CLAIM),
        (T.RETRY_WAIT, E.SUCCEED),
    ],
)
def test_notable_illegal_task_moves(state: TaskState, event: TaskEvent) -> None:
    with pytest.raises(IllegalTransition):
        next_task_state(state, event)


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (R.SUCCEEDED, RE.RETRY),
        (R.SUCCEEDED, RE.CANCEL),
        (R.FAILED, RE.SUCCEED),
        (R.CANCELED, RE.START),
        (R.COMPENSATING, RE.SUCCEED),
        (R.QUEUED, RE.SUCCEED),
    ],
)
def test_notable_illegal_run_moves(state: RunState, event: RunEvent) -> None:
    with pytest.raises(IllegalTransition):
        next_run_state(state, event)


def test_task_finished_set() -> None:
    finished = {s for s in TaskState if s.finished}
    assert finished == {
        T.SUCCEEDED,
        T.FAILED,
        T.SKIPPED,
        T.UPSTREAM_FAILED,
        T.CANCELED,
        T.COMPENSATED,
    }


def test_run_finished_set() -> None:
    assert {s for s in RunState if s.finished} == {R.SUCCEEDED, R.FAILED, R.CANCELED}


def test_unfinished_task_states_can_always_be_canceled() -> None:
    """Cancel stops anything still in flight; a finished task run is never canceled."""
    for state in TaskState:
        if state.finished:
            assert state not in task_sources(E.CANCEL)
        else:
            assert next_task_state(state, E.CANCEL) is T.CANCELED


def test_unfinished_run_states_can_always_be_canceled() -> None:
    for state in RunState:
        if state.finished:
            assert state not in run_sources(RE.CANCEL)
        else:
            assert next_run_state(state, RE.CANCEL) is R.CANCELED


def test_finished_task_states_leave_only_by_retry_or_compensation() -> None:
    """Once finished, only a run retry (requeue/reset/reopen), compensation or a user's
    "mark succeeded" moves a task."""
    allowed = {E.REQUEUE, E.RESET, E.REOPEN, E.COMPENSATE, E.MARK_SUCCEEDED}
    for (state, event), _ in TASK_TRANSITIONS.items():
        if state.finished:
            assert event in allowed, (state, event)


def test_finished_run_states_leave_only_by_retry() -> None:
    """A retry re-opens a failed run; a compensated one resumes its compensation."""
    for (state, event), target in RUN_TRANSITIONS.items():
        if state.finished:
            assert event in (RE.RETRY, RE.RETRY_UNDO), (state, event)
            assert state is not R.SUCCEEDED
            if event is RE.RETRY_UNDO:
                assert target is R.COMPENSATING


def test_every_state_is_reachable_from_the_start() -> None:
    def reachable(start: S, table: Mapping[tuple[S, Ev], S]) -> set[S]:
        seen, frontier = {start}, [start]
        while frontier:
            cur = frontier.pop()
            for (src, _), dst in table.items():
                if src == cur and dst not in seen:
                    seen.add(dst)
                    frontier.append(dst)
        return seen

    assert reachable(T.PENDING, TASK_TRANSITIONS) == set(TaskState)
    assert reachable(R.QUEUED, RUN_TRANSITIONS) == set(RunState)


def test_every_event_is_used() -> None:
    assert {ev for (_, ev) in TASK_TRANSITIONS} == set(TaskEvent)
    assert {ev for (_, ev) in RUN_TRANSITIONS} == set(RunEvent)

"""The pure planner: readiness, retries, mapped groups, run outcome, compensation order."""

from __future__ import annotations

import itertools

import pytest

from orchestrion import planner
from orchestrion.planner import UpstreamCounts
from orchestrion.spec.model import PythonAction, RetryPolicy, TaskSpec, TriggerRule, WorkflowSpec
from orchestrion.states import RunEvent, TaskEvent, TaskState

T = TaskState
READY, SKIP, UPF = TaskEvent.READY, TaskEvent.SKIP, TaskEvent.UPSTREAM_FAILED


# ---------------------------------------------------------------------------- readiness


def _oracle(rule: TriggerRule, total: int, ok: int, failed: int, skipped: int) -> TaskEvent:
    """The trigger rules written out from their documented meaning, independently."""
    if rule is TriggerRule.ALL_DONE:
        return READY
    if rule is TriggerRule.ALL_SUCCESS:
        return READY if ok == total else (UPF if failed > 0 else SKIP)
    if rule is TriggerRule.NONE_FAILED:
        return UPF if failed > 0 else READY
    if rule is TriggerRule.ONE_SUCCESS:
        return READY if ok > 0 else (UPF if failed > 0 else SKIP)
    if rule is TriggerRule.ONE_FAILED:
        return READY if failed > 0 else SKIP
    assert rule is TriggerRule.ALL_FAILED
    return READY if failed == total else SKIP


def _finished_combos(max_total: int = 5) -> list[tuple[int, int, int, int]]:
    return [
        (total, ok, failed, total - ok - failed)
        for total in range(1, max_total + 1)
        for ok in range(total + 1)
        for failed in range(total - ok + 1)
    ]


COMBOS = _finished_combos()


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_readiness_matches_oracle_on_every_combination(rule: TriggerRule) -> None:
    assert len(COMBOS) > 50
    for total, ok, failed, skipped in COMBOS:
        counts = UpstreamCounts(total=total, succeeded=ok, failed=failed, skipped=skipped)
        assert counts.done == total
        got = planner.readiness(rule, counts)
        assert got is _oracle(rule, total, ok, failed, skipped), (rule, counts, got)


@pytest.mark.parametrize(
    ("rule", "ok", "failed", "skipped", "expected"),
    [
        # all_success
        (TriggerRule.ALL_SUCCESS, 3, 0, 0, READY),
        (TriggerRule.ALL_SUCCESS, 2, 1, 0, UPF),
        (TriggerRule.ALL_SUCCESS, 2, 0, 1, SKIP),  # a skipped branch propagates as a skip
        (TriggerRule.ALL_SUCCESS, 0, 0, 3, SKIP),
        (TriggerRule.ALL_SUCCESS, 1, 1, 1, UPF),  # failure wins over skip
        # all_done
        (TriggerRule.ALL_DONE, 0, 3, 0, READY),
        (TriggerRule.ALL_DONE, 0, 0, 3, READY),
        (TriggerRule.ALL_DONE, 1, 1, 1, READY),
        # none_failed
        (TriggerRule.NONE_FAILED, 3, 0, 0, READY),
        (TriggerRule.NONE_FAILED, 1, 0, 2, READY),
        (TriggerRule.NONE_FAILED, 0, 0, 3, READY),
        (TriggerRule.NONE_FAILED, 2, 1, 0, UPF),
        # one_success
        (TriggerRule.ONE_SUCCESS, 1, 2, 0, READY),
        (TriggerRule.ONE_SUCCESS, 0, 2, 1, UPF),
        (TriggerRule.ONE_SUCCESS, 0, 0, 3, SKIP),
        # one_failed
        (TriggerRule.ONE_FAILED, 2, 1, 0, READY),
        (TriggerRule.ONE_FAILED, 3, 0, 0, SKIP),
        (TriggerRule.ONE_FAILED, 0, 0, 3, SKIP),
        # all_failed
        (TriggerRule.ALL_FAILED, 0, 3, 0, READY),
        (TriggerRule.ALL_FAILED, 1, 2, 0, SKIP),
        (TriggerRule.ALL_FAILED, 0, 2, 1, SKIP),
    ],
)
def test_readiness_examples(
    rule: TriggerRule, ok: int, failed: int, skipped: int, expected: TaskEvent
) -> None:
    counts = UpstreamCounts(total=3, succeeded=ok, failed=failed, skipped=skipped)
    assert planner.readiness(rule, counts) is expected


@pytest.mark.parametrize(
    ("state", "bucket"),
    [
        (T.SUCCEEDED, "ok"),
        (T.COMPENSATED, "ok"),
        (T.SKIPPED, "skipped"),
        (T.FAILED, "failed"),
        (T.UPSTREAM_FAILED, "failed"),
        (T.CANCELED, "failed"),
    ],
)
def test_upstream_bucket(state: TaskState, bucket: str) -> None:
    assert planner.upstream_bucket(state) == bucket


# ---------------------------------------------------------------------------- retries


@pytest.mark.parametrize(
    ("retries", "used", "expected"),
    [(0, 1, False), (1, 1, True), (1, 2, False), (3, 1, True), (3, 3, True), (3, 4, False)],
)
def test_should_retry_counts_attempts(retries: int, used: int, expected: bool) -> None:
    policy = RetryPolicy(retries=retries)
    assert planner.should_retry(policy, used, ("builtins.ValueError",)) is expected


@pytest.mark.parametrize(
    ("retry_on", "types", "expected"),
    [
        # bare class name matches the qualified name's last part
        (("ValueError",), ("builtins.ValueError", "builtins.Exception"), True),
        # qualified name matches exactly
        (("mymod.Transient",), ("mymod.Transient",), True),
        # a base class anywhere in the MRO counts
        (("OSError",), ("builtins.ConnectionError", "builtins.OSError"), True),
        (("mymod.Base",), ("mymod.Child", "mymod.Base"), True),
        # no match
        (("KeyError",), ("builtins.ValueError",), False),
        # a qualified wish does not match a same-named class elsewhere
        (("mymod.Transient",), ("othermod.Transient",), False),
        # no types reported at all
        (("ValueError",), (), False),
        # several wanted, one matches
        (("KeyError", "ValueError"), ("builtins.ValueError",), True),
    ],
)
def test_should_retry_filters_by_retry_on(
    retry_on: tuple[str, ...], types: tuple[str, ...], expected: bool
) -> None:
    policy = RetryPolicy(retries=3, retry_on=retry_on)
    assert planner.should_retry(policy, 1, types) is expected


def test_should_retry_with_empty_retry_on_retries_everything() -> None:
    assert planner.should_retry(RetryPolicy(retries=1), 1, ())
    assert planner.should_retry(RetryPolicy(retries=1), 1, ("x.Whatever",))


def test_timed_out_is_retried_regardless_of_retry_on_but_not_past_the_budget() -> None:
    policy = RetryPolicy(retries=1, retry_on=("KeyError",))
    types = ("orchestrion.errors.TaskTimeout",)
    assert not planner.should_retry(policy, 1, types)
    assert planner.should_retry(policy, 1, types, timed_out=True)
    assert not planner.should_retry(policy, 2, types, timed_out=True)


@pytest.mark.parametrize(
    ("attempt", "expected"), [(1, 2.0), (2, 6.0), (3, 18.0), (4, 54.0), (5, 100.0), (9, 100.0)]
)
def test_retry_delay_is_exponential_and_capped(attempt: int, expected: float) -> None:
    policy = RetryPolicy(retries=10, backoff=2.0, factor=3.0, max_delay=100.0, jitter=0.0)
    assert planner.retry_delay(policy, attempt, "seed") == pytest.approx(expected)


def test_retry_delay_of_zero_backoff_is_zero() -> None:
    policy = RetryPolicy(retries=3, backoff=0.0, jitter=0.5)
    assert planner.retry_delay(policy, 2, "s") == 0.0


def test_retry_delay_jitter_is_within_bounds() -> None:
    policy = RetryPolicy(retries=10, backoff=10.0, factor=2.0, max_delay=1000.0, jitter=0.25)
    for attempt, n in itertools.product(range(1, 6), range(200)):
        nominal = min(10.0 * 2.0 ** (attempt - 1), 1000.0)
        delay = planner.retry_delay(policy, attempt, f"{n}:{attempt}")
        assert nominal * 0.75 <= delay <= nominal


def test_retry_delay_jitter_never_exceeds_the_cap() -> None:
    policy = RetryPolicy(retries=50, backoff=1.0, factor=10.0, max_delay=30.0, jitter=0.5)
    for n in range(100):
        delay = planner.retry_delay(policy, 20, f"s{n}")
        assert 15.0 <= delay <= 30.0


def test_retry_delay_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    policy = RetryPolicy(retries=5, backoff=10.0, jitter=1.0)
    first = [planner.retry_delay(policy, 1, f"task-{n}:1") for n in range(50)]
    again = [planner.retry_delay(policy, 1, f"task-{n}:1") for n in range(50)]
    assert first == again
    assert len(set(first)) == 50  # spread: every seed gives its own delay
    assert planner.retry_delay(policy, 1, "a") != planner.retry_delay(policy, 1, "b")


def test_retry_ready_at_adds_the_delay_to_now() -> None:
    policy = RetryPolicy(retries=5, backoff=4.0, factor=2.0, jitter=0.2)
    delay = planner.retry_delay(policy, 2, "k")
    assert planner.retry_ready_at(policy, 2, "k", 1000.0) == pytest.approx(1000.0 + delay)


# ---------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], TaskEvent.SUCCEED),
        ([T.SUCCEEDED, T.SUCCEEDED], TaskEvent.SUCCEED),
        ([T.SUCCEEDED, T.SKIPPED], TaskEvent.SUCCEED),
        ([T.SKIPPED], TaskEvent.SUCCEED),
        ([T.SUCCEEDED, T.FAILED], TaskEvent.FAIL),
        ([T.CANCELED, T.SUCCEEDED], TaskEvent.FAIL),
        ([T.UPSTREAM_FAILED], TaskEvent.FAIL),
        ([T.COMPENSATED, T.SUCCEEDED], TaskEvent.SUCCEED),
    ],
)
def test_group_outcome(states: list[TaskState], expected: TaskEvent) -> None:
    assert planner.group_outcome(states) is expected
    assert planner.group_outcome(iter(states)) is expected


@pytest.mark.parametrize(
    ("states", "undo", "expected"),
    [
        ([T.SUCCEEDED, T.SUCCEEDED], False, RunEvent.SUCCEED),
        ([T.SUCCEEDED, T.SKIPPED], False, RunEvent.SUCCEED),
        ([T.SUCCEEDED, T.SUCCEEDED], True, RunEvent.SUCCEED),  # nothing failed: no undo
        ([T.SUCCEEDED, T.FAILED], False, RunEvent.FAIL),
        ([T.SUCCEEDED, T.FAILED, T.UPSTREAM_FAILED], False, RunEvent.FAIL),
        ([T.SUCCEEDED, T.FAILED], True, RunEvent.COMPENSATE),
        ([T.FAILED, T.SUCCEEDED], True, RunEvent.COMPENSATE),
        ([T.SKIPPED, T.SKIPPED], False, RunEvent.SUCCEED),
    ],
)
def test_run_outcome(states: list[TaskState], undo: bool, expected: RunEvent) -> None:
    assert planner.run_outcome(states, undo) is expected
    assert planner.run_outcome(iter(states), undo) is expected


# ---------------------------------------------------------------------------- compensation


def _spec(edges: dict[str, tuple[str, ...]], undo: set[str] | None = None) -> WorkflowSpec:
    """A spec whose tasks appear in `edges` order; tasks in `undo` (default all) have undo."""
    with_undo = set(edges) if undo is None else undo
    return WorkflowSpec(
        name="wf",
        tasks=tuple(
            TaskSpec(
                name=name,
                action=PythonAction(ref=f"t:{name}"),
                depends_on=deps,
                undo=PythonAction(ref=f"t:undo_{name}") if name in with_undo else None,
            )
            for name, deps in edges.items()
        ),
    )


def _respects_reverse_dependencies(spec: WorkflowSpec, order: list[str]) -> bool:
    pos = {name: i for i, name in enumerate(order)}
    for task in spec.tasks:
        for dep in task.depends_on:
            if task.name in pos and dep in pos and pos[task.name] > pos[dep]:
                return False
    return True


def test_compensation_order_chain() -> None:
    spec = _spec({"a": (), "b": ("a",), "c": ("b",), "d": ("c",)})
    order = planner.compensation_order(spec, {"a": True, "b": True, "c": True, "d": False})
    assert order == ["c", "b", "a"]


def test_compensation_order_diamond() -> None:
    spec = _spec({"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")})
    order = planner.compensation_order(spec, dict.fromkeys("abcd", True))
    assert order == ["d", "c", "b", "a"]
    assert _respects_reverse_dependencies(spec, order)


def test_compensation_order_fan_out() -> None:
    spec = _spec({"root": (), "x": ("root",), "y": ("root",), "z": ("root",)})
    order = planner.compensation_order(spec, dict.fromkeys(["root", "x", "y", "z"], True))
    assert order == ["z", "y", "x", "root"]  # ties in reverse spec order, root last


def test_compensation_order_when_spec_order_is_not_topological() -> None:
    """Tasks listed before their upstreams are still undone after their dependants."""
    spec = _spec({"c": ("b",), "b": ("a",), "a": ()})
    order = planner.compensation_order(spec, dict.fromkeys("abc", True))
    assert order == ["c", "b", "a"]


def test_compensation_order_only_succeeded_tasks_with_undo() -> None:
    spec = _spec(
        {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c"), "e": ("d",)},
        undo={"a", "c", "d", "e"},
    )
    succeeded = {"a": True, "b": True, "c": True, "d": False}  # e missing: not succeeded
    order = planner.compensation_order(spec, succeeded)
    assert order == ["c", "a"]  # b has no undo, d failed, e never ran


def test_compensation_order_is_a_total_order_on_wide_graphs() -> None:
    edges: dict[str, tuple[str, ...]] = {"s": ()}
    for i in range(6):
        edges[f"m{i}"] = ("s",)
        edges[f"n{i}"] = (f"m{i}", f"m{(i + 1) % 6}")
    edges["end"] = tuple(f"n{i}" for i in range(6))
    spec = _spec(edges)
    order = planner.compensation_order(spec, dict.fromkeys(edges, True))
    assert sorted(order) == sorted(edges)
    assert order[0] == "end" and order[-1] == "s"
    assert _respects_reverse_dependencies(spec, order)
    assert order == planner.compensation_order(spec, dict.fromkeys(edges, True))


def test_compensation_order_nothing_succeeded() -> None:
    spec = _spec({"a": (), "b": ("a",)})
    assert planner.compensation_order(spec, {"a": False, "b": False}) == []
    assert planner.compensation_order(spec, {}) == []


def test_compensation_order_of_a_workflow_without_undo_steps_is_empty() -> None:
    spec = _spec({"a": (), "b": ("a",), "c": ("a",)}, undo=set())
    assert spec.undoable() == frozenset()
    assert planner.compensation_order(spec, dict.fromkeys("abc", True)) == []


def test_a_spec_names_its_leaves_and_its_undoable_tasks() -> None:
    spec = _spec({"a": (), "b": ("a",), "c": ("a",), "d": ("b",)}, undo={"a", "d"})
    assert spec.leaves() == frozenset({"c", "d"})  # a run's result is theirs
    assert spec.undoable() == frozenset({"a", "d"})

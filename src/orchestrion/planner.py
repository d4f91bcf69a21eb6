"""Pure decisions: what a finished task run means for its downstream tasks, its retries,
its mapped group and its run. No I/O, no clock, no randomness: every input is an argument.

The store calls these functions inside the transaction that records an outcome, so that
readiness is decided exactly once, event-driven, without scanning the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import msgspec

from orchestrion.spec.model import RetryPolicy, TriggerRule, WorkflowSpec
from orchestrion.states import RunEvent, TaskEvent, TaskState

__all__ = [
    "MAX_LOST_ATTEMPTS",
    "UpstreamCounts",
    "compensation_order",
    "downstream_closure",
    "group_outcome",
    "readiness",
    "retry_delay",
    "retry_ready_at",
    "run_outcome",
    "should_retry",
    "topological_order",
    "upstream_bucket",
]

#: A task run whose worker died this many times fails: something kills every attempt.
MAX_LOST_ATTEMPTS = 5


class UpstreamCounts(msgspec.Struct, frozen=True):
    """How a task's upstream task runs finished (a mapped group counts once)."""

    total: int
    succeeded: int
    failed: int
    skipped: int

    @property
    def done(self) -> int:
        """How many upstreams finished, whatever the outcome."""
        return self.succeeded + self.failed + self.skipped


def upstream_bucket(state: TaskState) -> str:
    """How a finished upstream counts for trigger rules: "ok", "failed" or "skipped"."""
    if state in (TaskState.SUCCEEDED, TaskState.COMPENSATED):
        return "ok"
    if state is TaskState.SKIPPED:
        return "skipped"
    return "failed"  # failed, upstream_failed, canceled


def readiness(rule: TriggerRule, counts: UpstreamCounts) -> TaskEvent:
    """The event for a task whose upstreams have all finished: READY, SKIP or UPSTREAM_FAILED.

    A skipped upstream propagates as a skip under ``all_success`` (the branch was not
    taken), and never counts as a failure.
    """
    ok, failed, _skipped, total = counts.succeeded, counts.failed, counts.skipped, counts.total
    match rule:
        case TriggerRule.ALL_DONE:
            return TaskEvent.READY
        case TriggerRule.ALL_SUCCESS:
            if ok == total:
                return TaskEvent.READY
            return TaskEvent.UPSTREAM_FAILED if failed else TaskEvent.SKIP
        case TriggerRule.NONE_FAILED:
            return TaskEvent.UPSTREAM_FAILED if failed else TaskEvent.READY
        case TriggerRule.ONE_SUCCESS:
            if ok:
                return TaskEvent.READY
            return TaskEvent.UPSTREAM_FAILED if failed else TaskEvent.SKIP
        case TriggerRule.ONE_FAILED:
            return TaskEvent.READY if failed else TaskEvent.SKIP
        case TriggerRule.ALL_FAILED:
            return TaskEvent.READY if failed == total and total else TaskEvent.SKIP
    raise AssertionError(rule)  # pragma: no cover - every rule is matched above


def should_retry(
    policy: RetryPolicy, attempts_used: int, error_types: Sequence[str], *, timed_out: bool = False
) -> bool:
    """Whether a failed attempt gets another try.

    `attempts_used` counts the failed attempts so far, this one included (lost attempts are
    not counted: a dead worker is not the task's fault). `retry_on` matches a type's
    qualified name or its bare class name anywhere in the exception's MRO.
    """
    if attempts_used > policy.retries:
        return False
    if not policy.retry_on or timed_out:
        return True
    wanted = set(policy.retry_on)
    return any(name in wanted or name.rsplit(".", 1)[-1] in wanted for name in error_types)


def retry_delay(policy: RetryPolicy, attempts_used: int, seed: str) -> float:
    """Exponential backoff capped at `max_delay`, minus up to `jitter` of it.

    Jitter comes from a hash of `seed` (the task run id and attempt), not from a random
    generator: the decision is reproducible, and retries of many task runs still spread.
    """
    base = policy.backoff * policy.factor ** max(attempts_used - 1, 0)
    delay = min(base, policy.max_delay)
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64
    return delay * (1.0 - policy.jitter * fraction)


def retry_ready_at(policy: RetryPolicy, attempts_used: int, seed: str, now: float) -> float:
    """When the retry becomes claimable."""
    return now + retry_delay(policy, attempts_used, seed)


def group_outcome(item_states: Iterable[TaskState]) -> TaskEvent:
    """A mapped group succeeds when every item succeeded or was skipped, else fails."""
    for state in item_states:
        if upstream_bucket(state) == "failed":
            return TaskEvent.FAIL
    return TaskEvent.SUCCEED


def run_outcome(task_states: Iterable[TaskState], has_pending_undo: bool) -> RunEvent:
    """The run's final event once every task run finished.

    A run fails when any task run failed; the conditional branches that were skipped do not
    count. Compensation comes first when undo steps are due.
    """
    failed = any(s is TaskState.FAILED for s in task_states)
    if not failed:
        return RunEvent.SUCCEED
    return RunEvent.COMPENSATE if has_pending_undo else RunEvent.FAIL


def compensation_order(spec: WorkflowSpec, succeeded: Mapping[str, bool]) -> list[str]:
    """Tasks whose undo steps must run, in reverse dependency order (a total order).

    `succeeded` maps task name to whether it succeeded; only succeeded tasks with an undo
    step are compensated. Dependants are undone before the tasks they depend on; ties keep
    reverse spec order so the result is deterministic.
    """
    undoable = spec.undoable()
    if not undoable:  # most workflows: no order to compute at every run's end
        return []
    return [
        name for name in reversed(_topological(spec)) if succeeded.get(name) and name in undoable
    ]


def downstream_closure(spec: WorkflowSpec, task: str) -> set[str]:
    """`task` and every task that depends on it, directly or not."""
    downstream = spec.downstream()
    seen, todo = {task}, [task]
    while todo:
        for child in downstream[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def topological_order(spec: WorkflowSpec) -> list[str]:
    """Task names, every task after all of its upstreams (ties in spec order)."""
    return _topological(spec)


def _topological(spec: WorkflowSpec) -> list[str]:
    indegree = {t.name: len(t.depends_on) for t in spec.tasks}
    downstream = spec.downstream()
    ready = [t.name for t in spec.tasks if not t.depends_on]
    out: list[str] = []
    while ready:
        name = ready.pop(0)
        out.append(name)
        for child in downstream[name]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return out

"""The engine against real SQLite files (PostgreSQL schemas with
``ORCHESTRION_TEST_DATABASE=postgres``): store verbs driven by hand under a `FakeClock`, and
end-to-end runs through the real `Worker` (via `App.runtime.run_until_done`).

Every finished run is checked with `assert_consistent`: replaying its events reproduces every
task run's and the run's state, each event is an edge of the transition table, and the
run's `unfinished` counter is back at 0.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrion import planner
from orchestrion.app import App
from orchestrion.clock import FakeClock
from orchestrion.errors import IllegalTransition
from orchestrion.spec.model import ParamSpec, ParamType, TriggerRule, WhenSpec, WorkflowSpec
from orchestrion.states import RunState, TaskState
from orchestrion.store import open_store
from orchestrion.store.records import Claim, Outcome, RunFilter
from orchestrion.store.sql.advance import MAX_RESULT_BYTES
from orchestrion.store.stores import Stores
from orchestrion.triggers.maintenance import sweep
from orchestrion.worker.code import CodeRegistry
from orchestrion.worker.loop import Worker, WorkerSettings
from tests.helpers import (
    Driver,
    assert_consistent,
    by_name,
    database_url_for,
    make_app,
    py,
    sub,
    unfinished_count,
    wf,
)

S = TaskState


class TransientError(ValueError):
    """A module-level error type, so its qualified name is stable for `retry_on`."""


class Flaky:
    """Fails the first `failures` calls per key (thread-safe), then returns `value(key)`."""

    def __init__(self, failures: int = 1, exc: type[Exception] = RuntimeError) -> None:
        self.failures = failures
        self.exc = exc
        self.calls: Counter[Any] = Counter()
        self.lock = threading.Lock()

    def hit(self, key: Any = None) -> int:
        with self.lock:
            self.calls[key] += 1
            n = self.calls[key]
        if n <= self.failures:
            raise self.exc(f"flaky failure {n} for {key!r}")
        return n


@pytest.fixture
def d(tmp_path: Path) -> Iterator[Driver]:
    drv = Driver(tmp_path / "engine.db")
    yield drv
    drv.close()


def consistent(d: Driver, run_id: str) -> None:
    assert_consistent(d.store, d.path, run_id)


def finish_ok(d: Driver, claim: Claim) -> None:
    outcome = d.execute(claim)
    assert outcome is not None and outcome.status == "succeeded", outcome
    assert d.store.runs.finish([outcome], now=d.now).applied == (claim.task_run_id,)


# ============================================================================ basic flow


def test_linear_chain_passes_results_and_waits_for_upstream(d: Driver) -> None:
    d.add(a=lambda: 1, b=lambda x: x + 1, c=lambda x: x * 10)
    spec = wf(
        "chain",
        py("a"),
        py("b", "a", inputs={"x": "tasks.a"}),
        py("c", "b", inputs={"x": "tasks.b"}),
    )
    run_id = d.start(spec)
    assert d.state(run_id) == {"a": "queued", "b": "pending", "c": "pending"}

    a = d.claim_one("a")
    assert a.attempt == 1 and a.epoch == 1 and a.upstream == {}
    assert d.claim() == []  # b waits for a
    finish_ok(d, a)
    b = d.claim_one("b")
    assert b.upstream == {"a": 1}
    assert d.claim() == []
    finish_ok(d, b)
    c = d.claim_one("c")
    assert c.upstream == {"b": 2}
    finish_ok(d, c)

    run = d.store.reads.get_run(run_id)
    assert run.state is RunState.SUCCEEDED
    assert run.result == {"c": 20}  # the leaves' results
    assert run.error is None
    assert d.state(run_id) == dict.fromkeys("abc", "succeeded")
    consistent(d, run_id)


def test_fan_out_fan_in_with_results_downstream(d: Driver) -> None:
    d.add(
        root=lambda: 10,
        x=lambda v: v + 1,
        y=lambda v: v + 2,
        z=lambda v: v + 3,
        join=lambda x, y, z: [x, y, z],
    )
    spec = wf(
        "fan",
        py("root"),
        *(py(n, "root", inputs={"v": "tasks.root"}) for n in "xyz"),
        py("join", "x", "y", "z", inputs={n: f"tasks.{n}" for n in "xyz"}),
    )
    run_id = d.start(spec)
    finish_ok(d, d.claim_one("root"))
    mids = d.claim()
    assert sorted(c.task_name for c in mids) == ["x", "y", "z"]  # all three at once
    for claim in mids[:2]:
        finish_ok(d, claim)
    assert d.claim() == []  # join needs all three
    finish_ok(d, mids[2])
    join = d.claim_one("join")
    assert join.upstream == {"x": 11, "y": 12, "z": 13}
    finish_ok(d, join)
    run = d.store.reads.get_run(run_id)
    assert run.state is RunState.SUCCEEDED and run.result == {"join": [11, 12, 13]}
    consistent(d, run_id)


def test_idempotency_key_returns_the_same_run(d: Driver) -> None:
    d.add(a=lambda: 1)
    spec = wf("idem", py("a"))
    first = d.start(spec, idempotency_key="order-42")
    again = d.start(spec, idempotency_key="order-42")
    other = d.start(spec, idempotency_key="order-43")
    assert first == again != other
    runs = d.store.reads.list_runs(RunFilter(workflow="idem"))
    assert sorted(r.id for r in runs) == sorted({first, other})
    assert len(d.claim()) == 2  # one task run per run, not per trigger
    assert d.store.reads.get_run(first).idempotency_key == "order-42"


# ============================================================================ conditions


def _when_spec() -> WorkflowSpec:
    return wf(
        "branches",
        py("a"),
        py("b", "a", when="params.flag"),
        py("c", "b"),  # all_success: the skip propagates
        py("d", "b", rule=TriggerRule.NONE_FAILED),  # runs: a skip is not a failure
        py("e", "c"),  # transitively skipped
        py("f", "c", rule="none_failed"),
        py("g", "a", when="tasks.a > 5"),
        params={"flag": ParamSpec(type=ParamType.BOOLEAN, default=False)},
    )


def test_when_false_skips_a_branch_and_propagates_under_all_success(d: Driver) -> None:
    d.add(**{n: (lambda n=n: n) for n in "bcdef"}, a=lambda: 7, g=lambda: "g")
    run_id = d.start(_when_spec(), {"flag": False})
    run = d.drain(run_id)
    assert run.state is RunState.SUCCEEDED
    assert d.state(run_id) == {
        "a": "succeeded",
        "b": "skipped",
        "c": "skipped",
        "d": "succeeded",
        "e": "skipped",
        "f": "succeeded",
        "g": "succeeded",
    }
    assert d.tasks(run_id)["b"].attempts == 0  # never claimed
    kinds = [(e.kind, e.data) for e in d.store.reads.list_events(run_id) if e.kind == "task.skip"]
    assert {"reason": "condition false"} in [data for _, data in kinds]
    assert {"rule": "all_success"} in [data for _, data in kinds]
    consistent(d, run_id)


def test_when_true_runs_the_branch(d: Driver) -> None:
    d.add(**{n: (lambda n=n: n) for n in "bcdef"}, a=lambda: 3, g=lambda: "g")
    run_id = d.start(_when_spec(), {"flag": True})
    assert d.drain(run_id).state is RunState.SUCCEEDED
    states = d.state(run_id)
    assert states.pop("g") == "skipped"  # 3 > 5 is false
    assert set(states.values()) == {"succeeded"}
    consistent(d, run_id)


def test_when_expression_error_fails_the_task_with_a_clear_message(d: Driver) -> None:
    d.add(a=lambda: {"x": 1}, b=lambda: "never")
    run_id = d.start(wf("badwhen", py("a"), py("b", "a", when="tasks.a.missing > 1")))
    run = d.drain(run_id)
    assert run.state is RunState.FAILED
    b = d.tasks(run_id)["b"]
    assert b.state is S.FAILED and b.attempts == 0
    assert b.error and "missing" in b.error
    consistent(d, run_id)


def test_when_python_condition_is_evaluated_at_start_and_skips(d: Driver) -> None:
    d.add(a=lambda: 1, b=lambda: "b", c=lambda: "c", no=lambda results: results["a"] > 1)
    b = py("b", "a").model_copy(update={"when": WhenSpec(ref="t:no")})
    run_id = d.start(wf("pywhen", py("a"), b, py("c", "b"), py("d", "b", ref="c", rule="all_done")))
    run = d.drain(run_id)
    assert run.state is RunState.SUCCEEDED
    assert d.state(run_id) == {
        "a": "succeeded",
        "b": "skipped",
        "c": "skipped",
        "d": "succeeded",
    }
    assert [a.outcome for a in d.store.reads.list_attempts(run_id)] == [
        "succeeded",
        "skipped",
        "succeeded",
    ]
    consistent(d, run_id)


# ============================================================================ mapping


def test_map_over_upstream_list_gathers_results_in_item_order(d: Driver) -> None:
    d.add(start=lambda: [3, 1, 2], double=lambda x: x * 2, total=lambda xs: xs)
    spec = wf(
        "mapped",
        py("start"),
        py("double", "start", map_over="tasks.start", inputs={"x": "item"}),
        py("total", "double", inputs={"xs": "tasks.double"}),
    )
    run_id = d.start(spec)
    finish_ok(d, d.claim_one("start"))
    items = d.claim()
    assert sorted((c.task_name, c.map_index, c.item) for c in items) == [
        ("double", 0, 3),
        ("double", 1, 1),
        ("double", 2, 2),
    ]
    assert {c.idempotency_key for c in items} == {f"{run_id}/double[{i}]" for i in range(3)}
    assert d.tasks(run_id)["double"].state is S.WAITING
    for claim in sorted(items, key=lambda c: -c.map_index):  # finish out of order
        finish_ok(d, claim)
    total = d.claim_one("total")
    assert total.upstream == {"double": [6, 2, 4]}
    finish_ok(d, total)
    run = d.store.reads.get_run(run_id)
    assert run.state is RunState.SUCCEEDED and run.result == {"total": [6, 2, 4]}
    consistent(d, run_id)


def test_map_over_empty_list_succeeds_with_empty_result(d: Driver) -> None:
    d.add(start=lambda: [], double=lambda x: x * 2, total=lambda xs: {"got": xs})
    spec = wf(
        "empty",
        py("start"),
        py("double", "start", map_over="tasks.start", inputs={"x": "item"}),
        py("total", "double", inputs={"xs": "tasks.double"}),
    )
    run_id = d.start(spec)
    finish_ok(d, d.claim_one("start"))
    double = d.tasks(run_id)["double"]
    assert double.state is S.SUCCEEDED and double.result == []
    total = d.claim_one("total")
    assert total.upstream == {"double": []}
    finish_ok(d, total)
    run = d.store.reads.get_run(run_id)
    assert run.state is RunState.SUCCEEDED and run.result == {"total": {"got": []}}
    consistent(d, run_id)


def test_map_over_empty_list_end_to_end(d: Driver) -> None:
    d.add(start=lambda: [], double=lambda x: x * 2, total=lambda xs: {"got": xs})
    spec = wf(
        "empty2",
        py("start"),
        py("double", "start", map_over="tasks.start", inputs={"x": "item"}),
        py("total", "double", inputs={"xs": "tasks.double"}),
    )
    run_id = d.start(spec)
    run = d.drain(run_id)
    assert run.state is RunState.SUCCEEDED
    assert run.result == {"total": {"got": []}}
    assert [t for t in d.store.reads.list_task_runs(run_id) if t.kind == "item"] == []
    consistent(d, run_id)


def test_map_over_a_non_list_fails_the_group_clearly(d: Driver) -> None:
    d.add(start=lambda: 5, double=lambda x: x)
    spec = wf(
        "notlist",
        py("start"),
        py("double", "start", map_over="tasks.start", inputs={"x": "item"}),
    )
    run_id = d.start(spec)
    run = d.drain(run_id)
    assert run.state is RunState.FAILED
    group = d.tasks(run_id)["double"]
    assert group.state is S.FAILED and group.error and "not a list" in group.error
    consistent(d, run_id)


def test_mapped_item_failure_with_retries(d: Driver) -> None:
    flaky = Flaky(failures=1)

    def work(x: int) -> int:
        if x == 2:
            raise ValueError(f"bad item {x}")
        if x == 1:
            flaky.hit(x)
        return x * 10

    d.add(start=lambda: [0, 1, 2], work=work, after=lambda: "never")
    spec = wf(
        "mapfail",
        py("start"),
        py("work", "start", map_over="tasks.start", inputs={"x": "item"}, retries=1),
        py("after", "work"),
    )
    run_id = d.start(spec)
    run = d.drain(run_id)
    assert run.state is RunState.FAILED
    items = sorted(
        (t for t in d.store.reads.list_task_runs(run_id) if t.kind == "item"),
        key=lambda t: t.map_index,
    )
    assert [(t.state, t.attempts) for t in items] == [
        (S.SUCCEEDED, 1),
        (S.SUCCEEDED, 2),  # failed once, retried, succeeded
        (S.FAILED, 2),  # retried once, failed again
    ]
    assert items[1].result == 10
    group = d.tasks(run_id)["work"]
    assert group.state is S.FAILED
    assert group.error is not None
    assert "1 of 3 mapped items failed" in group.error and "bad item 2" in group.error
    assert d.tasks(run_id)["after"].state is S.UPSTREAM_FAILED
    assert run.error and "work" in run.error
    consistent(d, run_id)


# ============================================================================ retries


def test_retry_backoff_is_honoured_through_ready_at(d: Driver) -> None:
    d.add(t=lambda: None)
    spec = wf("backoff", py("t", retries=2, backoff=10.0, factor=3.0, jitter=0.0))
    run_id = d.start(spec)
    t0 = d.now

    first = d.claim_one("t")
    d.fail(first, "first")
    tr = d.tasks(run_id)["t"]
    assert tr.state is S.RETRY_WAIT and tr.ready_at == pytest.approx(t0 + 10.0)
    assert d.store.runs.next_ready_at(("default",)) == pytest.approx(t0 + 10.0)
    d.clock.advance(9.99)
    assert d.claim() == []  # not before ready_at
    d.clock.advance(0.02)
    second = d.claim_one("t")
    assert (second.attempt, second.epoch) == (2, 2)

    t1 = d.now
    d.fail(second, "second")
    assert d.tasks(run_id)["t"].ready_at == pytest.approx(t1 + 30.0)  # 10 * 3
    d.clock.advance(29.9)
    assert d.claim() == []
    d.clock.advance(0.2)
    third = d.claim_one("t")
    assert third.attempt == 3
    d.fail(third, "third")  # budget spent: 1 try + 2 retries

    run = d.store.reads.get_run(run_id)
    assert run.state is RunState.FAILED and run.error and "third" in run.error
    tr = d.tasks(run_id)["t"]
    assert tr.state is S.FAILED and tr.attempts == 3
    assert [a.outcome for a in d.store.reads.list_attempts(run_id)] == ["failed"] * 3
    assert [a.error for a in d.store.reads.list_attempts(run_id)] == ["first", "second", "third"]
    assert sum(1 for e in d.store.reads.list_events(run_id) if e.kind == "task.retry") == 2
    consistent(d, run_id)


def test_retry_jitter_stays_within_bounds(d: Driver) -> None:
    d.add(t=lambda: None)
    run_id = d.start(wf("jit", py("t", retries=1, backoff=100.0, jitter=0.5)))
    d.fail(d.claim_one("t"))
    ready_at = d.tasks(run_id)["t"].ready_at
    assert d.now + 50.0 <= ready_at <= d.now + 100.0


def _raise(exc: Exception) -> Callable[[], None]:
    def fn() -> None:
        raise exc

    return fn


@pytest.mark.parametrize(
    ("retry_on", "exc", "attempts", "state"),
    [
        (("ValueError",), KeyError("nope"), 1, S.FAILED),  # not listed: fails at once
        (("ValueError",), ValueError("again"), 3, S.FAILED),  # listed: retried to the end
        (("ValueError",), TransientError("sub"), 3, S.FAILED),  # a subclass matches
        ((f"{__name__}.TransientError",), TransientError("q"), 3, S.FAILED),  # qualified
        (("other.TransientError",), TransientError("q"), 1, S.FAILED),  # wrong module
        (("KeyError", "LookupError"), IndexError("i"), 3, S.FAILED),  # base in MRO
    ],
)
def test_retry_on_filters_by_exception_type(
    d: Driver, retry_on: tuple[str, ...], exc: Exception, attempts: int, state: TaskState
) -> None:
    d.add(t=_raise(exc))
    run_id = d.start(wf("retryon", py("t", retries=2, retry_on=retry_on)))
    d.drain(run_id)
    tr = d.tasks(run_id)["t"]
    assert (tr.attempts, tr.state) == (attempts, state)
    assert tr.error and type(exc).__name__ in tr.error
    consistent(d, run_id)


def test_retry_then_success(d: Driver) -> None:
    flaky = Flaky(failures=2)
    d.add(t=lambda: flaky.hit())
    run_id = d.start(wf("eventually", py("t", retries=3, backoff=1.0)))
    run = d.drain(run_id)
    assert run.state is RunState.SUCCEEDED and run.result == {"t": 3}
    assert [a.outcome for a in d.store.reads.list_attempts(run_id)] == [
        "failed",
        "failed",
        "succeeded",
    ]
    consistent(d, run_id)


# ============================================================================ leases


def test_expired_lease_is_reaped_requeued_without_spending_retries(d: Driver) -> None:
    d.add(t=lambda: "x")
    run_id = d.start(wf("lease", py("t", retries=0)))
    old = d.claim_one("t", lease=30.0)
    d.clock.advance(29.0)
    assert d.store.runs.reap_expired(now=d.now) == 0  # not yet expired
    d.clock.advance(2.0)
    assert d.store.runs.reap_expired(now=d.now) == 1
    assert d.store.runs.reap_expired(now=d.now) == 0  # two reapers cannot both act

    tr = d.tasks(run_id)["t"]
    assert tr.state is S.RETRY_WAIT and tr.ready_at <= d.now  # retries=0, yet requeued
    [attempt] = d.store.reads.list_attempts(run_id)
    assert attempt.outcome == "lost" and attempt.epoch == 1

    late = d.store.runs.finish(
        [Outcome(task_run_id=old.task_run_id, epoch=1, status="succeeded", result="old")],
        now=d.now,
    )
    assert late.applied == () and late.superseded == (old.task_run_id,)
    assert d.tasks(run_id)["t"].state is S.RETRY_WAIT

    new = d.claim_one("t", worker="w2")
    assert (new.epoch, new.attempt) == (2, 2)
    late2 = d.store.runs.finish(
        [Outcome(task_run_id=old.task_run_id, epoch=1, status="failed", error="old")], now=d.now
    )
    assert late2.superseded == (old.task_run_id,)
    assert d.tasks(run_id)["t"].state is S.RUNNING  # the old epoch changed nothing

    assert d.succeed(new, "new") == (new.task_run_id,)
    run = d.store.reads.get_run(run_id)
    assert run.state is RunState.SUCCEEDED and run.result == {"t": "new"}
    assert [a.outcome for a in d.store.reads.list_attempts(run_id)] == ["lost", "succeeded"]
    superseded = [e for e in d.store.reads.list_events(run_id) if e.kind == "attempt.superseded"]
    assert [e.data["epoch"] for e in superseded if e.data] == [1, 1]
    consistent(d, run_id)


def test_a_task_that_keeps_losing_its_worker_fails(d: Driver) -> None:
    d.add(t=lambda: None)
    run_id = d.start(wf("dies", py("t", retries=10)))
    for _ in range(planner.MAX_LOST_ATTEMPTS):
        d.claim_one("t", lease=5.0)
        d.clock.advance(6.0)
        assert d.store.runs.reap_expired(now=d.now) == 1
    run = d.store.reads.get_run(run_id)
    assert run.state is RunState.FAILED
    tr = d.tasks(run_id)["t"]
    assert tr.state is S.FAILED and tr.error and "worker lost" in tr.error
    consistent(d, run_id)


def test_heartbeat_extends_leases_and_returns_lost_ones(d: Driver) -> None:
    d.add(a=lambda: None, b=lambda: None)
    run_id = d.start(wf("beat", py("a"), py("b")))
    claims = {c.task_name: c for c in d.claim(lease=10.0)}
    a, b = claims["a"], claims["b"]
    leases = [(a.task_run_id, a.epoch), (b.task_run_id, b.epoch)]

    d.clock.advance(5.0)
    assert (
        d.store.runs.heartbeat(worker_id="w1", leases=leases, lease_seconds=10.0, now=d.now) == []
    )
    d.clock.advance(6.0)  # past the first lease, within the extended one
    assert d.store.runs.reap_expired(now=d.now) == 0
    assert (
        d.store.runs.heartbeat(worker_id="w1", leases=leases[1:], lease_seconds=10.0, now=d.now)
        == []
    )
    d.clock.advance(5.0)  # a's lease (t+15) expired, b's (t+21) holds
    assert d.store.runs.reap_expired(now=d.now) == 1
    lost = d.store.runs.heartbeat(worker_id="w1", leases=leases, lease_seconds=10.0, now=d.now)
    assert lost == [a.task_run_id]
    # another worker's lease is never extended, and reported lost
    assert d.store.runs.heartbeat(
        worker_id="intruder", leases=leases[1:], lease_seconds=10.0, now=d.now
    ) == [b.task_run_id]
    assert d.store.runs.heartbeat(worker_id="w1", leases=[], lease_seconds=10.0, now=d.now) == []

    # a re-claimed with a new epoch: the old epoch's heartbeat is lost and extends nothing
    a2 = d.claim_one("a", lease=10.0)
    assert a2.epoch == 2
    stale = d.store.runs.heartbeat(
        worker_id="w1", leases=[(a.task_run_id, 1)], lease_seconds=1000.0, now=d.now
    )
    assert stale == [a.task_run_id]
    d.clock.advance(10.5)
    assert d.store.runs.reap_expired(now=d.now) == 2  # a (epoch 2) and b: no stale extension
    consistent(d, run_id)


def test_expire_worker_lets_the_reaper_requeue_its_tasks(d: Driver) -> None:
    d.add(a=lambda: None)
    run_id = d.start(wf("expire", py("a")))
    d.claim_one("a", worker="dead", lease=300.0)
    assert d.store.runs.expire_worker("dead", now=d.now) == 1
    assert d.store.runs.reap_expired(now=d.now) == 1
    assert d.claim_one("a", worker="alive").epoch == 2
    consistent(d, run_id)


# ============================================================================ exactly once


def _many_items(d: Driver, n: int) -> str:
    d.add(start=lambda: list(range(n)), work=lambda x: x)
    spec = wf(
        "many",
        py("start"),
        py("work", "start", map_over="tasks.start", inputs={"x": "item"}),
    )
    run_id = d.start(spec)
    finish_ok(d, d.claim_one("start"))
    return run_id


def _hammer(stores: list[Stores], clock: FakeClock, threads: int) -> list[tuple[int, int]]:
    claimed: list[tuple[int, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def grab(k: int) -> None:
        rng = random.Random(k)
        store = stores[k % len(stores)]
        try:
            barrier.wait()
            while True:
                got = store.runs.claim(
                    worker_id=f"w{k}",
                    queues=("default",),
                    limit=rng.randint(1, 4),
                    lease_seconds=30.0,
                    now=clock.now(),
                )
                if not got:
                    return
                with lock:
                    claimed.extend((c.task_run_id, c.epoch) for c in got)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=grab, args=(k,)) for k in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(30)
    assert not errors, errors
    return claimed


def test_concurrent_claims_on_one_store_never_share_a_task_run(d: Driver) -> None:
    run_id = _many_items(d, 200)
    claimed = _hammer([d.store], d.clock, threads=8)
    ids = [tr for tr, _ in claimed]
    assert len(ids) == 200 and len(set(ids)) == 200
    assert {epoch for _, epoch in claimed} == {1}
    attempts = [a for a in d.store.reads.list_attempts(run_id) if a.task_run_id in set(ids)]
    assert sorted(a.task_run_id for a in attempts) == sorted(ids)
    consistent(d, run_id)


def test_concurrent_claims_across_two_store_objects_on_one_file(d: Driver) -> None:
    run_id = _many_items(d, 150)
    other = open_store(database_url_for(d.path))
    try:
        claimed = _hammer([d.store, other], d.clock, threads=6)
    finally:
        other.close()
    ids = [tr for tr, _ in claimed]
    assert len(ids) == 150 and len(set(ids)) == 150
    items = [t for t in d.store.reads.list_task_runs(run_id) if t.kind == "item"]
    assert all(t.state is S.RUNNING and t.attempts == 1 for t in items)
    consistent(d, run_id)


def test_concurrent_triggers_with_one_idempotency_key_make_one_run(d: Driver) -> None:
    spec = wf("idem_race", py("a"))
    d.register(spec)
    stores = [d.store, open_store(database_url_for(d.path))]
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def trigger(k: int) -> None:
        barrier.wait()
        run = stores[k % 2].runs.create_run(spec, {}, now=d.now, idempotency_key="same")
        ids.append(run.id)

    threads = [threading.Thread(target=trigger, args=(k,)) for k in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        stores[1].close()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert len(d.store.reads.list_runs(RunFilter(workflow="idem_race"))) == 1
    assert len(d.claim()) == 1


# ============================================================================ limits, order


def test_per_task_concurrency_limit_across_runs(d: Driver) -> None:
    d.add(lim=lambda: None)
    spec = wf("limited", py("lim", concurrency=2))
    runs = [d.start(spec) for _ in range(3)]
    first = d.claim(limit=10)
    assert len(first) == 2
    assert d.claim(limit=10) == []
    d.succeed(first[0])
    [third] = d.claim(limit=10)
    assert third.run_id not in {c.run_id for c in first}
    assert d.claim() == []
    d.succeed(first[1])
    d.succeed(third)
    for run_id in runs:
        assert d.store.reads.get_run(run_id).state is RunState.SUCCEEDED
        consistent(d, run_id)


def test_mapped_items_honour_the_concurrency_limit(d: Driver) -> None:
    d.add(start=lambda: [1, 2, 3], work=lambda x: x)
    spec = wf(
        "mlim",
        py("start"),
        py("work", "start", map_over="tasks.start", inputs={"x": "item"}, concurrency=1),
    )
    run_id = d.start(spec)
    finish_ok(d, d.claim_one("start"))
    for _ in range(3):
        [item] = d.claim(limit=10)
        assert d.claim(limit=10) == []
        finish_ok(d, item)
    assert d.store.reads.get_run(run_id).state is RunState.SUCCEEDED
    consistent(d, run_id)


def test_tasks_blocked_by_their_limit_do_not_hold_back_other_work(d: Driver) -> None:
    """Many high-priority task runs waiting on a concurrency slot must not starve a ready
    task of another workflow (the claim looks past the blocked ones)."""
    d.add(lim=lambda: None, free=lambda: None)
    limited = wf("hot", py("lim", concurrency=1, priority=10))
    for _ in range(12):
        d.start(limited)
    free_run = d.start(wf("cold", py("free")))
    assert d.claim_one("lim", limit=1).task_name == "lim"
    assert d.store.runs.next_ready_at(("default",)) == pytest.approx(d.now)  # `free` is due
    got = d.claim(limit=1)
    assert [c.run_id for c in got] == [free_run]
    # only work held back by its limit is left: nothing claimable, nothing to wake for
    assert d.claim(limit=5) == []
    assert d.store.runs.next_ready_at(("default",)) is None


def test_max_active_runs_queues_runs_and_admits_the_next(d: Driver) -> None:
    d.add(a=lambda: "done")
    spec = wf("serial", py("a"), max_active_runs=1)
    r1, r2, r3 = (d.start(spec) for _ in range(3))
    assert [d.store.reads.get_run(r).state for r in (r1, r2, r3)] == [
        RunState.RUNNING,
        RunState.QUEUED,
        RunState.QUEUED,
    ]
    assert d.state(r2) == {"a": "pending"}
    claim = d.claim_one("a")
    assert claim.run_id == r1
    assert d.store.runs.cancel_run(r3, now=d.now)  # a queued run can be canceled
    assert d.store.reads.get_run(r3).state is RunState.CANCELED

    d.clock.advance(1.0)
    finish_ok(d, claim)
    assert d.store.reads.get_run(r1).state is RunState.SUCCEEDED
    run2 = d.store.reads.get_run(r2)
    assert run2.state is RunState.RUNNING and run2.started_at == d.now
    r4 = d.start(spec)
    assert d.store.reads.get_run(r4).state is RunState.QUEUED
    claim2 = d.claim_one("a")
    assert claim2.run_id == r2
    finish_ok(d, claim2)
    assert d.store.reads.get_run(r4).state is RunState.RUNNING
    assert d.drain(r4).state is RunState.SUCCEEDED
    for run_id in (r1, r2, r3, r4):
        consistent(d, run_id)


def test_priorities_order_claims_then_age(d: Driver) -> None:
    d.add(low=lambda: None, mid=lambda: None, high=lambda: None)
    spec = wf("prio", py("low", priority=-5), py("mid"), py("high", priority=10))
    first = d.start(spec)
    d.clock.advance(1.0)
    second = d.start(spec)
    d.clock.advance(1.0)
    urgent = d.start(spec, priority=100)
    order = []
    while claims := d.claim(limit=1):
        order.append((claims[0].run_id, claims[0].task_name))
    assert order == [
        (urgent, "high"),
        (urgent, "mid"),
        (urgent, "low"),
        (first, "high"),
        (second, "high"),
        (first, "mid"),
        (second, "mid"),
        (first, "low"),
        (second, "low"),
    ]


def test_queues_separate_work(d: Driver) -> None:
    d.add(a=lambda: None, b=lambda: None)
    run_id = d.start(wf("queues", py("a", queue="gpu"), py("b")))
    assert d.claim_one("b").task_name == "b"
    assert d.claim() == []
    assert d.claim_one("a", queues=("gpu",)).task_name == "a"
    assert d.store.reads.get_run(run_id).state is RunState.RUNNING


# ============================================================================ cancel, retry


def test_cancel_run_cancels_everything_and_supersedes_the_late_result(d: Driver) -> None:
    d.add(a=lambda: 1, b=lambda: 2, c=lambda: 3)
    run_id = d.start(wf("cancel", py("a"), py("b"), py("c", "a", "b")))
    a = d.claim_one("a", limit=1)
    assert d.store.runs.cancel_run(run_id, now=d.now, reason="stop it")
    run = d.store.reads.get_run(run_id)
    assert run.state is RunState.CANCELED and run.error == "stop it"
    assert d.state(run_id) == dict.fromkeys("abc", "canceled")
    assert [at.outcome for at in d.store.reads.list_attempts(run_id)] == ["canceled"]
    assert d.claim() == []

    lost = d.store.runs.heartbeat(
        worker_id="w1", leases=[(a.task_run_id, a.epoch)], lease_seconds=30.0, now=d.now
    )
    assert lost == [a.task_run_id]
    late = d.store.runs.finish(
        [Outcome(task_run_id=a.task_run_id, epoch=a.epoch, status="succeeded", result=1)],
        now=d.now,
    )
    assert late.superseded == (a.task_run_id,) and late.applied == ()
    assert d.store.reads.get_run(run_id).state is RunState.CANCELED
    assert d.tasks(run_id)["a"].state is S.CANCELED
    assert not d.store.runs.cancel_run(run_id, now=d.now)  # already finished
    assert any(e.kind == "attempt.superseded" for e in d.store.reads.list_events(run_id))
    consistent(d, run_id)


def test_retry_run_reruns_only_what_failed(d: Driver) -> None:
    calls: Counter[str] = Counter()
    flaky = Flaky(failures=1)

    def track(name: str, value: Any) -> Any:
        calls[name] += 1
        return value

    def b(x: int) -> int:
        calls["b"] += 1
        flaky.hit()
        return x + 1

    d.add(
        a=lambda: track("a", 1),
        b=b,
        c=lambda y: track("c", y * 100),
        side=lambda: track("side", "s"),
        cleanup=lambda: track("cleanup", "c"),
    )
    spec = wf(
        "retryrun",
        py("a"),
        py("b", "a", inputs={"x": "tasks.a"}),
        py("c", "b", inputs={"y": "tasks.b"}),
        py("side"),
        py("cleanup", "b", rule="all_done"),
    )
    run_id = d.start(spec)
    run = d.drain(run_id)
    assert run.state is RunState.FAILED
    assert d.state(run_id) == {
        "a": "succeeded",
        "b": "failed",
        "c": "upstream_failed",
        "side": "succeeded",
        "cleanup": "succeeded",
    }
    consistent(d, run_id)

    assert d.store.runs.retry_run(run_id, now=d.now)
    assert d.store.reads.get_run(run_id).state is RunState.RUNNING
    assert not d.store.runs.retry_run(run_id, now=d.now)  # running: not retryable
    run = d.drain(run_id)
    assert run.state is RunState.SUCCEEDED, run.error
    assert run.error is None
    tasks = d.tasks(run_id)
    assert {k: v.state for k, v in tasks.items()} == dict.fromkeys(tasks, S.SUCCEEDED)
    assert tasks["c"].result == 200
    assert tasks["a"].result == 1 and tasks["a"].attempts == 1
    assert calls == Counter({"a": 1, "b": 2, "c": 1, "side": 1, "cleanup": 1})
    assert not d.store.runs.retry_run(run_id, now=d.now)  # succeeded: nothing to retry
    consistent(d, run_id)


def test_retry_run_of_a_mapped_task_reruns_only_failed_items(d: Driver) -> None:
    flaky = Flaky(failures=1)
    calls: Counter[int] = Counter()

    def work(x: int) -> int:
        calls[x] += 1
        if x == 1:
            flaky.hit(x)
        return x * 2

    d.add(start=lambda: [0, 1, 2], work=work, total=lambda xs: sum(xs))
    spec = wf(
        "mapretry",
        py("start"),
        py("work", "start", map_over="tasks.start", inputs={"x": "item"}),
        py("total", "work", inputs={"xs": "tasks.work"}),
    )
    run_id = d.start(spec)
    assert d.drain(run_id).state is RunState.FAILED
    consistent(d, run_id)
    assert d.store.runs.retry_run(run_id, now=d.now)
    run = d.drain(run_id)
    assert run.state is RunState.SUCCEEDED, run.error
    assert run.result == {"total": 6}
    assert calls == Counter({0: 1, 1: 2, 2: 1})
    consistent(d, run_id)


def test_retry_run_after_cancel_finishes_the_run(d: Driver) -> None:
    d.add(a=lambda: 1, b=lambda x: x + 1)
    run_id = d.start(wf("recancel", py("a"), py("b", "a", inputs={"x": "tasks.a"})))
    finish_ok(d, d.claim_one("a"))
    d.claim_one("b")
    assert d.store.runs.cancel_run(run_id, now=d.now)
    assert d.store.runs.retry_run(run_id, now=d.now)
    run = d.drain(run_id)
    assert run.state is RunState.SUCCEEDED and run.result == {"b": 2}
    consistent(d, run_id)


# ============================================================================ timeouts, results


def test_run_timeout_fails_the_run_and_cancels_tasks(d: Driver) -> None:
    d.add(a=lambda: 1, b=lambda: 2)
    run_id = d.start(wf("slow", py("a"), py("b", "a"), timeout=60.0))
    a = d.claim_one("a", lease=300.0)
    d.clock.advance(59.0)
    assert d.store.runs.timeout_runs(now=d.now) == []
    d.clock.advance(2.0)
    assert sweep(d.store.runs, d.now) == (0, [run_id])
    run = d.store.reads.get_run(run_id)
    assert run.state is RunState.FAILED and run.error == "run timed out"
    assert d.state(run_id) == {"a": "canceled", "b": "canceled"}
    assert d.store.runs.timeout_runs(now=d.now) == []
    assert d.succeed(a, 1) == ()  # late: superseded
    assert d.store.reads.get_run(run_id).state is RunState.FAILED
    consistent(d, run_id)


def test_result_over_the_size_cap_fails_clearly(d: Driver) -> None:
    d.add(big=lambda: "x" * (MAX_RESULT_BYTES + 10))
    run_id = d.start(wf("big", py("big")))
    run = d.drain(run_id)
    assert run.state is RunState.FAILED
    tr = d.tasks(run_id)["big"]
    assert tr.state is S.FAILED and tr.result is None
    assert tr.error and f"over the {MAX_RESULT_BYTES}-byte cap" in tr.error
    consistent(d, run_id)


@pytest.mark.parametrize("value", [{1, 2}, object(), {"k": b"bytes"}])
def test_non_json_result_fails_clearly(d: Driver, value: Any) -> None:
    d.add(odd=lambda: value)
    run_id = d.start(wf("odd", py("odd")))
    assert d.drain(run_id).state is RunState.FAILED
    tr = d.tasks(run_id)["odd"]
    assert tr.error and "not JSON-serialisable" in tr.error
    consistent(d, run_id)


def test_one_terminal_result_per_attempt(d: Driver) -> None:
    """A duplicated report (same task run, same epoch) is applied once; downstream counters
    move once."""
    d.add(a=lambda: 1, b=lambda x: x)
    run_id = d.start(wf("dup", py("a"), py("b", "a", inputs={"x": "tasks.a"})))
    a = d.claim_one("a")
    ok = Outcome(task_run_id=a.task_run_id, epoch=a.epoch, status="succeeded", result=1)
    bad = Outcome(task_run_id=a.task_run_id, epoch=a.epoch, status="failed", error="x")
    res = d.store.runs.finish([ok, bad, ok], now=d.now)
    assert res.applied == (a.task_run_id,)
    assert res.superseded == (a.task_run_id, a.task_run_id)
    assert d.store.runs.finish([ok], now=d.now).superseded == (a.task_run_id,)
    forged = Outcome(task_run_id=a.task_run_id, epoch=a.epoch + 1, status="failed", error="x")
    assert d.store.runs.finish([forged], now=d.now).superseded == (a.task_run_id,)
    b = d.claim_one("b")
    assert b.upstream == {"a": 1}
    finish_ok(d, b)
    assert d.store.reads.get_run(run_id).state is RunState.SUCCEEDED
    assert [at.outcome for at in d.store.reads.list_attempts(run_id)] == ["succeeded", "succeeded"]
    consistent(d, run_id)


def test_cancel_then_retry_of_a_mapped_run(d: Driver) -> None:
    calls: Counter[int] = Counter()

    def work(x: int) -> int:
        calls[x] += 1
        return x + 100

    d.add(start=lambda: [0, 1, 2, 3], work=work, total=lambda xs: xs)
    spec = wf(
        "mapcancel",
        py("start"),
        py("work", "start", map_over="tasks.start", inputs={"x": "item"}),
        py("total", "work", inputs={"xs": "tasks.work"}),
    )
    run_id = d.start(spec)
    finish_ok(d, d.claim_one("start"))
    items = sorted(d.claim(limit=2), key=lambda c: c.map_index)
    finish_ok(d, items[0])  # one item done, one running, two queued
    assert d.store.runs.cancel_run(run_id, now=d.now)
    consistent(d, run_id)
    assert d.store.runs.retry_run(run_id, now=d.now)
    run = d.drain(run_id)
    assert run.state is RunState.SUCCEEDED, run.error
    assert run.result == {"total": [100, 101, 102, 103]}
    assert calls[items[0].item] == 1  # the finished item kept its result
    consistent(d, run_id)


def test_retry_run_re_evaluates_a_failed_when_condition(d: Driver) -> None:
    """A task whose `when` expression failed never ran; retrying the run must decide it
    again, never run it without its condition."""
    ran: list[str] = []
    d.add(a=lambda: {"x": 1}, b=lambda: ran.append("b"))
    run_id = d.start(wf("rewhen", py("a"), py("b", "a", when="tasks.a.missing > 1")))
    assert d.drain(run_id).state is RunState.FAILED
    d.store.runs.retry_run(run_id, now=d.now)
    run = d.drain(run_id)
    assert ran == []  # the condition still cannot be evaluated: b must not run
    assert run.state is RunState.FAILED
    consistent(d, run_id)


def test_retry_run_of_a_failed_map_expression_is_refused_or_re_evaluated(d: Driver) -> None:
    d.add(start=lambda: 5, double=lambda x: x)
    spec = wf(
        "remap",
        py("start"),
        py("double", "start", map_over="tasks.start", inputs={"x": "item"}),
    )
    run_id = d.start(spec)
    assert d.drain(run_id).state is RunState.FAILED
    d.store.runs.retry_run(run_id, now=d.now)  # must not raise IllegalTransition
    assert d.drain(run_id).state is RunState.FAILED
    consistent(d, run_id)


# ============================================================================ compensation


def test_compensation_runs_undo_steps_in_reverse_dependency_order(d: Driver) -> None:
    undone: list[tuple[str, Any]] = []

    def undo(name: str) -> Any:
        def fn(result: Any) -> None:
            undone.append((name, result))

        return fn

    def boom() -> None:
        raise RuntimeError("card declined")

    d.add(
        a=lambda: "A",
        b=lambda: "B",
        c=lambda: "C",
        d=boom,
        ua=undo("a"),
        ub=undo("b"),
        uc=undo("c"),
        ud=undo("d"),
    )
    spec = wf(
        "diamond_saga",
        py("a", undo="ua"),
        py("b", "a", undo="ub"),
        py("c", "a", undo="uc"),
        py("d", "b", "c", undo="ud"),
    )
    run_id = d.start(spec)
    finish_ok(d, d.claim_one("a"))
    for claim in d.claim():
        finish_ok(d, claim)
    d.store.runs.finish([d.execute(d.claim_one("d"))], now=d.now)  # type: ignore[list-item]
    assert d.store.reads.get_run(run_id).state is RunState.COMPENSATING
    for name in ("undo:c", "undo:b", "undo:a"):  # one at a time, in order
        finish_ok(d, d.claim_one(name))
    assert undone == [("c", "C"), ("b", "B"), ("a", "A")]
    run = d.store.reads.get_run(run_id)
    assert run.state is RunState.FAILED and run.error and "card declined" in run.error
    assert d.state(run_id) == {
        "a": "compensated",
        "b": "compensated",
        "c": "compensated",
        "d": "failed",
    }
    consistent(d, run_id)
    assert not d.store.runs.retry_run(run_id, now=d.now)  # a compensated run stays failed


def test_a_failing_undo_does_not_stop_the_chain(d: Driver) -> None:
    def boom(**_: Any) -> None:
        raise RuntimeError("undo broke")

    undone: list[str] = []
    d.add(
        a=lambda: "A",
        b=lambda: "B",
        c=_raise(RuntimeError("c failed")),
        ua=lambda result: undone.append(result),
        ub=boom,
    )
    spec = wf("saga2", py("a", undo="ua"), py("b", "a", undo="ub"), py("c", "b"))
    run_id = d.start(spec)
    run = d.drain(run_id)
    assert run.state is RunState.FAILED
    assert undone == ["A"]
    assert d.state(run_id) == {"a": "compensated", "b": "succeeded", "c": "failed"}
    undo_runs = [t for t in d.store.reads.list_task_runs(run_id) if t.kind == "undo"]
    assert [(t.task_name, t.state) for t in undo_runs] == [
        ("undo:b", S.FAILED),
        ("undo:a", S.SUCCEEDED),
    ]
    consistent(d, run_id)


def test_retry_of_a_compensated_run_reruns_only_its_failed_undo_steps(d: Driver) -> None:
    """Issue 12: a failed compensation left the run unrecoverable. Retry re-runs the undo
    steps that failed, one at a time in compensation order, and ends the run failed again
    with every task compensated; succeeded undo steps do not run twice."""
    broken = {"b": True, "c": True}
    undone: list[str] = []

    def undo(name: str) -> Callable[..., None]:
        def fn(result: Any) -> None:
            if broken.get(name, False):
                raise RuntimeError(f"undo {name} broke")
            undone.append(name)

        return fn

    d.add(
        a=lambda: "A",
        b=lambda: "B",
        c=lambda: "C",
        e=_raise(RuntimeError("e failed")),
        ua=undo("a"),
        ub=undo("b"),
        uc=undo("c"),
    )
    spec = wf(
        "saga3",
        py("a", undo="ua"),
        py("b", "a", undo="ub"),
        py("c", "b", undo="uc"),
        py("e", "c"),
    )
    run_id = d.start(spec)
    assert d.drain(run_id).state is RunState.FAILED
    assert undone == ["a"]  # undo:c and undo:b failed; the chain went on
    broken.update(b=False, c=False)  # the cause of the failures is fixed

    assert d.store.runs.retry_run(run_id, now=d.now)
    assert d.store.reads.get_run(run_id).state is RunState.COMPENSATING
    undo_states = {t.task_name: t.state for t in d.store.reads.list_task_runs(run_id)}
    assert undo_states["undo:c"] is S.QUEUED and undo_states["undo:b"] is S.PENDING
    finish_ok(d, d.claim_one("undo:c"))  # one at a time: b waits for c
    finish_ok(d, d.claim_one("undo:b"))
    assert d.claim() == []
    run = d.store.reads.get_run(run_id)
    assert run.state is RunState.FAILED and run.error and "e failed" in run.error
    assert undone == ["a", "c", "b"]  # undo:a did not run again
    assert d.state(run_id) == {"a": "compensated", "b": "compensated", "c": "compensated",
                               "e": "failed"}  # fmt: skip
    kinds = [e.kind for e in d.store.reads.list_events(run_id)]
    assert kinds.count("run.retry_undo") == 1 and kinds.count("run.compensation_retried") == 1
    consistent(d, run_id)
    assert not d.store.runs.retry_run(run_id, now=d.now)  # nothing is left to undo


def test_a_canceled_compensation_resumes_on_retry(d: Driver) -> None:
    undone: list[str] = []
    d.add(
        a=lambda: "A",
        b=lambda: "B",
        c=_raise(RuntimeError("c failed")),
        ua=lambda result: undone.append(result),
        ub=lambda result: undone.append(result),
    )
    spec = wf("saga4", py("a", undo="ua"), py("b", "a", undo="ub"), py("c", "b"))
    run_id = d.start(spec)
    finish_ok(d, d.claim_one("a"))
    finish_ok(d, d.claim_one("b"))
    d.store.runs.finish([d.execute(d.claim_one("c"))], now=d.now)  # type: ignore[list-item]
    claim = d.claim_one("undo:b")
    assert d.store.runs.cancel_run(run_id, now=d.now)
    late = d.execute(claim)
    assert late is not None and d.store.runs.finish([late], now=d.now).applied == ()
    assert d.store.reads.get_run(run_id).state is RunState.CANCELED
    assert d.store.runs.retry_run(run_id, now=d.now)
    assert d.drain(run_id).state is RunState.FAILED
    # undo:b ran when canceled (its result fenced, not taken), and again on the retry
    assert undone == ["B", "B", "A"]
    assert d.state(run_id) == {"a": "compensated", "b": "compensated", "c": "failed"}
    consistent(d, run_id)


# ============================================================================ sub-workflows


def test_child_failure_fails_the_parent_task(d: Driver) -> None:
    def boom() -> None:
        raise RuntimeError("child broke")

    d.add(c1=boom, after=lambda: "never")
    child = wf("child_bad", py("c1"))
    parent = wf("parent_bad", sub("s", "child_bad"), py("after", "s"))
    d.register(child)
    run_id = d.start(parent)
    run = d.drain(run_id)
    assert run.state is RunState.FAILED
    s = d.tasks(run_id)["s"]
    assert s.state is S.FAILED and s.error and "child broke" in s.error
    [child_run] = [r for r in d.store.reads.list_runs(RunFilter()) if r.workflow == "child_bad"]
    assert child_run.state is RunState.FAILED and child_run.parent_task_run_id == s.id
    assert d.tasks(run_id)["after"].state is S.UPSTREAM_FAILED
    consistent(d, run_id)
    consistent(d, child_run.id)


def test_cancel_parent_cancels_the_waiting_child(d: Driver) -> None:
    d.add(c1=lambda: 1)
    d.register(wf("child_slow", py("c1")))
    run_id = d.start(wf("parent_slow", sub("s", "child_slow")))
    claim = d.claim_one("s")
    assert d.execute(claim) is None  # the child run started; the task waits
    assert d.tasks(run_id)["s"].state is S.WAITING
    [child_run] = [r for r in d.store.reads.list_runs(RunFilter()) if r.workflow == "child_slow"]
    c1 = d.claim_one("c1")
    assert d.store.runs.cancel_run(run_id, now=d.now)
    assert d.store.reads.get_run(child_run.id).state is RunState.CANCELED
    assert d.succeed(c1, 1) == ()
    assert d.store.reads.get_run(run_id).state is RunState.CANCELED
    consistent(d, run_id)
    consistent(d, child_run.id)


# ======================================================================= end to end (worker)


def _e2e(app: App, workflow: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
    run = app.runs.trigger(workflow, params, **kw)
    return app.runtime.run_until_done(run.id, every=0.01)


def _check_app(app: App, tmp_path: Path, run_id: str) -> None:
    assert_consistent(app.store, tmp_path / "app.db", run_id)


def test_e2e_map_reduce(tmp_path: Path) -> None:
    with make_app(tmp_path) as app:
        app.code.add(
            {
                "t:start": lambda: [1, 2, 3, 4],
                "t:square": lambda x: x * x,
                "t:total": lambda xs: {"sum": sum(xs), "order": xs},
            }
        )
        spec = wf(
            "mapreduce",
            py("start"),
            py("square", "start", map_over="tasks.start", inputs={"x": "item"}),
            py("total", "square", inputs={"xs": "tasks.square"}),
        )
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        run = _e2e(app, "mapreduce")
        assert run.state is RunState.SUCCEEDED
        assert run.result == {"total": {"sum": 30, "order": [1, 4, 9, 16]}}
        _check_app(app, tmp_path, run.id)


def test_e2e_every_trigger_rule(tmp_path: Path) -> None:
    def boom() -> None:
        raise RuntimeError("work failed")

    with make_app(tmp_path) as app:
        app.code.add({f"t:{n}": (lambda n=n: n) for n in ["ok", "cleanup", "alert", "never"]})
        app.code.add({"t:work": boom})
        spec = wf(
            "rules",
            py("ok"),
            py("work"),
            py("after", "work", ref="never"),  # all_success -> upstream_failed
            py("cleanup", "work", rule="all_done"),
            py("alert", "work", rule="one_failed"),
            py("no_alert", "ok", ref="never", rule="one_failed"),  # skipped
            py("any_ok", "ok", "work", ref="ok", rule="one_success"),
            py("clean", "ok", "work", ref="never", rule="none_failed"),  # upstream_failed
            py("all_bad", "work", "after", ref="alert", rule="all_failed"),
            py("not_all_bad", "ok", "work", ref="never", rule="all_failed"),  # skipped
        )
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        run = _e2e(app, "rules")
        assert run.state is RunState.FAILED
        assert run.error and "work" in run.error and "work failed" in run.error
        states = {k: v.state for k, v in by_name(app.runs.task_runs(run.id)).items()}
        assert states == {
            "ok": S.SUCCEEDED,
            "work": S.FAILED,
            "after": S.UPSTREAM_FAILED,
            "cleanup": S.SUCCEEDED,
            "alert": S.SUCCEEDED,
            "no_alert": S.SKIPPED,
            "any_ok": S.SUCCEEDED,
            "clean": S.UPSTREAM_FAILED,
            "all_bad": S.SUCCEEDED,
            "not_all_bad": S.SKIPPED,
        }
        _check_app(app, tmp_path, run.id)


def test_e2e_a_failed_undo_is_retried_through_the_app(tmp_path: Path) -> None:
    """`App.runs.retry_or_raise` (what the API, UI and CLI retry call) resumes a failed
    compensation; a second retry names why there is nothing left to do."""
    refunds: list[str] = []
    gateway_up = threading.Event()

    def refund(result: Any) -> None:
        if not gateway_up.is_set():
            raise RuntimeError("payment gateway down")
        refunds.append(result)

    with make_app(tmp_path) as app:
        app.code.add(
            {"t:pay": lambda: "p1", "t:ship": _raise(RuntimeError("no stock")), "t:refund": refund}
        )
        spec = wf("shop", py("pay", undo="refund"), py("ship", "pay"))
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        run = _e2e(app, "shop")
        assert run.state is RunState.FAILED and refunds == []
        gateway_up.set()
        app.runs.retry_or_raise(run.id)
        run = app.runtime.run_until_done(run.id, every=0.01)
        assert run.state is RunState.FAILED and run.error and "no stock" in run.error
        assert refunds == ["p1"]
        assert by_name(app.runs.task_runs(run.id))["pay"].state is S.COMPENSATED
        with pytest.raises(IllegalTransition, match="every undo step succeeded"):
            app.runs.retry_or_raise(run.id)
        _check_app(app, tmp_path, run.id)


def test_e2e_saga_compensates_in_reverse_order(tmp_path: Path) -> None:
    undone: list[tuple[str, Any]] = []
    seen_inputs: list[dict[str, Any]] = []
    lock = threading.Lock()

    def undo(name: str) -> Any:
        def fn(result: Any, **inputs: Any) -> None:  # an undo gets the task's inputs too
            with lock:
                undone.append((name, result))
                seen_inputs.append(inputs)

        return fn

    def charge(order: dict[str, Any]) -> None:
        raise RuntimeError(f"card declined for {order['id']}")

    with make_app(tmp_path) as app:
        app.code.add(
            {
                "t:reserve": lambda: {"id": "o1", "seat": 7},
                "t:book": lambda order: {**order, "hotel": "h9"},
                "t:charge": charge,
                "t:unreserve": undo("reserve"),
                "t:unbook": undo("book"),
                "t:refund": undo("charge"),
                "t:notify": lambda: "sent",
            }
        )
        spec = wf(
            "saga",
            py("reserve", undo="unreserve"),
            py("book", "reserve", inputs={"order": "tasks.reserve"}, undo="unbook"),
            py("charge", "book", inputs={"order": "tasks.book"}, undo="refund"),
            py("notify", "reserve"),  # succeeded, but has no undo
        )
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        run = _e2e(app, "saga")
        assert run.state is RunState.FAILED
        assert run.error and "charge" in run.error and "card declined" in run.error
        assert undone == [
            ("book", {"id": "o1", "seat": 7, "hotel": "h9"}),
            ("reserve", {"id": "o1", "seat": 7}),
        ]
        assert seen_inputs == [{"order": {"id": "o1", "seat": 7}}, {}]
        task_runs = app.runs.task_runs(run.id)
        states = {k: v.state for k, v in by_name(task_runs).items()}
        assert states == {
            "reserve": S.COMPENSATED,
            "book": S.COMPENSATED,
            "charge": S.FAILED,
            "notify": S.SUCCEEDED,
        }
        undo_runs = [t for t in task_runs if t.kind == "undo"]
        assert [(t.task_name, t.state, t.attempts) for t in undo_runs] == [
            ("undo:book", S.SUCCEEDED, 1),
            ("undo:reserve", S.SUCCEEDED, 1),
        ]
        events = app.runs.events(run.id)
        kinds = [e.kind for e in events]
        assert kinds.count("run.compensate") == 1 and kinds.count("task.compensate") == 2
        [plan] = [e for e in events if e.kind == "run.compensation_planned"]
        assert plan.data == {"order": ["book", "reserve"]}
        assert [(e.from_state, e.to_state) for e in events if e.kind == "run.fail"] == [
            ("compensating", "failed")
        ]
        _check_app(app, tmp_path, run.id)


def test_e2e_sub_workflow_result_becomes_the_parent_result(tmp_path: Path) -> None:
    with make_app(tmp_path) as app:
        app.code.add(
            {
                "t:p1": lambda: 21,
                "t:c1": lambda n: n,
                "t:c2": lambda v: v * 2,
                "t:p2": lambda child: child["c2"] + 1,
            }
        )
        child = wf(
            "child",
            py("c1", inputs={"n": "params.n"}),
            py("c2", "c1", inputs={"v": "tasks.c1"}),
            params={"n": ParamSpec(type=ParamType.INTEGER, required=True)},
        )
        parent = wf(
            "parent",
            py("p1"),
            sub("s", "child", "p1", params={"n": "{{ tasks.p1 }}"}),
            py("p2", "s", inputs={"child": "tasks.s"}),
        )
        now = time.time()
        app.store.workflows.register_workflow(child, source=None, now=now)
        app.store.workflows.register_workflow(parent, source=None, now=now)
        run = _e2e(app, "parent")
        assert run.state is RunState.SUCCEEDED, run.error
        s = by_name(app.runs.task_runs(run.id))["s"]
        assert s.result == {"c2": 42}
        assert run.result == {"p2": 43}
        [child_run] = app.runs.list_runs(RunFilter(workflow="child"))
        assert child_run.state is RunState.SUCCEEDED
        assert child_run.parent_task_run_id == s.id and child_run.params == {"n": 21}
        assert child_run.result == s.result
        assert [a.outcome for a in app.runs.attempts(run.id) if a.task_run_id == s.id] == [
            "waiting"
        ]
        _check_app(app, tmp_path, run.id)
        _check_app(app, tmp_path, child_run.id)


def test_e2e_concurrency_limit_across_runs(tmp_path: Path) -> None:
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow() -> None:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1

    with make_app(tmp_path, concurrency=8) as app:
        app.code.add({"t:slow": slow})
        spec = wf("limit_e2e", py("slow", concurrency=2))
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        runs = [app.runs.trigger("limit_e2e") for _ in range(6)]
        claims = Counter[str]()
        real_claim = app.store.runs.claim

        def counting_claim(**kw: Any) -> list[Claim]:
            claims["calls"] += 1
            return real_claim(**kw)

        app.store.runs.claim = counting_claim  # type: ignore[method-assign]
        for run in runs:
            assert app.runtime.run_until_done(run.id, every=0.01).state is RunState.SUCCEEDED
        assert state["max"] == 2
        # work held back by the limit is waited for, not claimed in a hot loop
        assert claims["calls"] < 100, claims
        for run in runs:
            _check_app(app, tmp_path, run.id)


def test_e2e_retry_run_after_failure(tmp_path: Path) -> None:
    flaky = Flaky(failures=1)
    with make_app(tmp_path) as app:
        app.code.add({"t:a": lambda: 5, "t:b": lambda x: flaky.hit() + x})
        spec = wf("retry_e2e", py("a"), py("b", "a", inputs={"x": "tasks.a"}))
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        run = _e2e(app, "retry_e2e")
        assert run.state is RunState.FAILED
        assert app.runs.retry(run.id)
        run = app.runtime.run_until_done(run.id, every=0.01)
        assert run.state is RunState.SUCCEEDED and run.result == {"b": 7}
        _check_app(app, tmp_path, run.id)


def test_e2e_idempotent_trigger(tmp_path: Path) -> None:
    with make_app(tmp_path) as app:
        app.code.add({"t:a": lambda: 1})
        app.store.workflows.register_workflow(wf("idem_e2e", py("a")), source=None, now=time.time())
        r1 = app.runs.trigger("idem_e2e", idempotency_key="k")
        r2 = app.runs.trigger("idem_e2e", idempotency_key="k")
        assert r1.id == r2.id
        assert len(app.runs.list_runs(RunFilter(workflow="idem_e2e"))) == 1


def test_worker_reclaiming_its_own_lost_task_keeps_the_new_attempt(tmp_path: Path) -> None:
    """A worker whose lease lapsed (a stall) may claim the same task run again while the old
    attempt is still running. The old attempt finishing first must not swallow the new
    attempt's report, nor drop the new attempt from heartbeats."""
    clock = FakeClock()
    store = open_store(database_url_for(tmp_path / "w.db"))
    started = [threading.Event(), threading.Event()]
    release = [threading.Event(), threading.Event()]
    calls: list[int] = []

    def task(ctx: Any) -> str:
        n = len(calls)
        calls.append(n)
        started[n].set()
        assert release[n].wait(10)
        return f"attempt-{n + 1}"

    code = CodeRegistry()
    code.add({"t:task": task})
    spec = wf("stall", py("task"))
    store.workflows.register_workflow(spec, source=None, now=clock.now())
    run = store.runs.create_run(spec, {}, now=clock.now())
    worker = Worker(
        store.runs,
        store.workflows,
        store.notifier,
        code,
        WorkerSettings(lease_seconds=10.0, heartbeat_every=3600.0, poll_every=0.05),
        clock,
    )
    worker.start()
    try:
        assert started[0].wait(5)
        clock.advance(11.0)
        assert store.runs.reap_expired(now=clock.now()) == 1
        assert started[1].wait(5)  # the same worker claimed it again (epoch 2)
        release[0].set()  # the stale attempt ends first
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            e.kind == "attempt.superseded" for e in store.reads.list_events(run.id)
        ):
            time.sleep(0.01)
        release[1].set()
        while time.monotonic() < deadline and not store.reads.get_run(run.id).state.finished:
            time.sleep(0.01)
        final = store.reads.get_run(run.id)
        assert final.state is RunState.SUCCEEDED, by_name(store.reads.list_task_runs(run.id))
        assert final.result == {"task": "attempt-2"}
        assert [a.outcome for a in store.reads.list_attempts(run.id)] == ["lost", "succeeded"]
        assert unfinished_count(tmp_path / "w.db", run.id) == 0
    finally:
        for ev in release:
            ev.set()
        worker.stop(grace=2.0)
        store.close()


def test_e2e_cancel_stops_the_running_attempt(tmp_path: Path) -> None:
    started, stopped = threading.Event(), threading.Event()

    def loop(ctx: Any) -> str:
        started.set()
        try:
            for _ in range(1000):
                ctx.check_cancel()
                time.sleep(0.01)
        finally:
            stopped.set()
        return "finished anyway"

    with make_app(tmp_path) as app:
        app.code.add({"t:loop": loop, "t:after": lambda: "never"})
        spec = wf("cancel_e2e", py("loop"), py("after", "loop"))
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        run = app.runs.trigger("cancel_e2e")
        worker = Worker(
            app.store.runs,
            app.store.workflows,
            app.store.notifier,
            app.code,
            WorkerSettings(lease_seconds=5.0, heartbeat_every=0.05, poll_every=0.05),
        )
        worker.start()
        try:
            assert started.wait(5)
            assert app.runs.cancel(run.id)
            assert stopped.wait(5)  # the heartbeat found the lease gone and stopped it
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(
                e.kind == "attempt.superseded" for e in app.runs.events(run.id)
            ):
                time.sleep(0.01)
        finally:
            worker.stop(grace=2.0)
        final = app.runs.get_run(run.id)
        assert final.state is RunState.CANCELED
        assert {t.state for t in app.runs.task_runs(run.id)} == {S.CANCELED}
        assert [a.outcome for a in app.runs.attempts(run.id)] == ["canceled"]
        superseded = [e for e in app.runs.events(run.id) if e.kind == "attempt.superseded"]
        assert [e.data for e in superseded] == [{"epoch": 1, "status": "canceled"}]
        _check_app(app, tmp_path, run.id)

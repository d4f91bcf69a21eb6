"""Slots on every backend: per-queue limits (set by an operator) and per-key limits (a
task's ``concurrency_key`` rendered when it becomes ready, with its ``key_limit``). A slot
is a running task run with an unexpired lease, counted when a claim decides: finishing one,
or its lease expiring, frees it; nothing else has to."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from orchestrion.spec.model import ParamSpec, TaskSpec, WorkflowSpec
from orchestrion.store.records import Claim, Outcome
from orchestrion.store.stores import Stores
from tests.contract.conftest import MakeStore
from tests.helpers import py, wf

T0 = 1_700_000_000.0
LEASE = 30.0


def _claim(
    store: Stores, *, now: float = T0, worker: str = "w", queue: str = "default", limit: int = 100
) -> list[Claim]:
    return store.runs.claim(
        worker_id=worker, queues=(queue,), limit=limit, lease_seconds=LEASE, now=now
    )


def _succeed(store: Stores, claim: Claim, now: float = T0) -> None:
    store.runs.finish(
        [Outcome(task_run_id=claim.task_run_id, epoch=claim.epoch, status="succeeded")], now=now
    )


def _start(store: Stores, spec: WorkflowSpec, params: dict[str, Any] | None = None) -> str:
    store.workflows.register_workflow(spec, source=None, now=T0)
    return store.runs.create_run(spec, params or {}, now=T0).id


def _keyed(name: str, template: str, limit: int, *deps: str, **kw: Any) -> TaskSpec:
    return py(name, *deps, concurrency_key=template, key_limit=limit, **kw)


# ------------------------------------------------------------------ queue limits


def test_a_queue_limit_caps_running_task_runs(store: Stores) -> None:
    store.runs.set_queue_limit("default", 2, now=T0)
    _start(store, wf("wide", *(py(f"t{i}") for i in range(5))))
    first = _claim(store)
    assert len(first) == 2
    assert _claim(store, worker="w2") == []
    _succeed(store, first[0])
    assert len(_claim(store, worker="w2")) == 1
    (limit,) = store.reads.queue_limits(now=T0)
    assert (limit.queue, limit.max_running, limit.running) == ("default", 2, 2)


def test_a_limit_holds_one_queue_only(store: Stores) -> None:
    store.runs.set_queue_limit("slow", 1, now=T0)
    _start(store, wf("two_queues", py("a", queue="slow"), py("b", queue="slow"), py("c"), py("d")))
    assert len(_claim(store, queue="slow")) == 1
    assert len(_claim(store)) == 2
    # a claim over both queues passes the full one over without starving the other
    assert store.runs.claim(worker_id="w", queues=("slow", "default"), limit=10,
                            lease_seconds=LEASE, now=T0) == []  # fmt: skip


def test_an_expired_lease_frees_its_slot(store: Stores) -> None:
    # The holder died: no finish, no reaper. Its lease running out is enough.
    store.runs.set_queue_limit("default", 1, now=T0)
    _start(store, wf("two", py("a"), py("b")))
    assert len(_claim(store)) == 1
    assert _claim(store, now=T0 + LEASE - 1, worker="w2") == []
    assert len(_claim(store, now=T0 + LEASE + 1, worker="w2")) == 1


def test_a_heartbeat_keeps_the_slot(store: Stores) -> None:
    store.runs.set_queue_limit("default", 1, now=T0)
    _start(store, wf("two", py("a"), py("b")))
    (held,) = _claim(store)
    store.runs.heartbeat(
        worker_id="w",
        leases=[(held.task_run_id, held.epoch)],
        lease_seconds=LEASE,
        now=T0 + LEASE - 1,
    )
    assert _claim(store, now=T0 + LEASE + 1, worker="w2") == []


def test_set_clear_and_list_queue_limits(store: Stores) -> None:
    store.runs.set_queue_limit("b", 3, now=T0)
    store.runs.set_queue_limit("a", 1, now=T0)
    store.runs.set_queue_limit("a", 4, now=T0 + 1)  # replaces
    assert [(q.queue, q.max_running, q.updated_at) for q in store.reads.queue_limits(now=T0)] == [
        ("a", 4, T0 + 1),
        ("b", 3, T0),
    ]
    assert store.runs.clear_queue_limit("a", now=T0)
    assert not store.runs.clear_queue_limit("a", now=T0)
    assert [q.queue for q in store.reads.queue_limits(now=T0)] == ["b"]
    kinds = [e.kind for e in store.reads.find_events(kind="queue.")]
    assert kinds == ["queue.limit_cleared", "queue.limit_set", "queue.limit_set", "queue.limit_set"]
    with pytest.raises(ValueError, match="at least 1"):
        store.runs.set_queue_limit("a", 0, now=T0)


def test_clearing_a_limit_releases_waiting_work(store: Stores) -> None:
    store.runs.set_queue_limit("default", 1, now=T0)
    _start(store, wf("three", py("a"), py("b"), py("c")))
    assert len(_claim(store)) == 1
    store.runs.clear_queue_limit("default", now=T0)
    assert len(_claim(store)) == 2


# ------------------------------------------------------------------ key limits


def _customer_flow() -> WorkflowSpec:
    return wf(
        "per_customer",
        _keyed("sync", "customer-{{ params.customer }}", 1),
        params={"customer": ParamSpec(required=True)},
    )


def test_a_key_limit_holds_across_runs(store: Stores) -> None:
    spec = _customer_flow()
    for customer in ("acme", "acme", "acme", "globex"):
        _start(store, spec, {"customer": customer})
    first = _claim(store)
    assert sorted(c.params["customer"] for c in first) == ["acme", "globex"]
    assert _claim(store) == []
    acme = next(c for c in first if c.params["customer"] == "acme")
    _succeed(store, acme)
    assert [c.params["customer"] for c in _claim(store)] == ["acme"]


def test_a_key_is_shared_across_workflows(store: Stores) -> None:
    # Two workflows that call the same API of one customer share its slots.
    a = wf("a", _keyed("call", "api-{{ params.c }}", 1), params={"c": ParamSpec()})
    b = wf("b", _keyed("call", "api-{{ params.c }}", 1), params={"c": ParamSpec()})
    _start(store, a, {"c": "x"})
    _start(store, b, {"c": "x"})
    assert len(_claim(store)) == 1


def test_mapped_items_render_their_own_keys(store: Stores) -> None:
    spec = wf(
        "mapped_keys",
        py("items"),
        _keyed("each", "shard-{{ item.shard }}", 2, "items", map_over="tasks.items"),
    )
    _start(store, spec)
    (first,) = _claim(store)
    items = [{"shard": s} for s in ("a", "a", "a", "b")]
    store.runs.finish(
        [Outcome(task_run_id=first.task_run_id, epoch=first.epoch, status="succeeded",
                 result=items)],
        now=T0,
    )  # fmt: skip
    taken = _claim(store)
    assert Counter(c.item["shard"] for c in taken) == {"a": 2, "b": 1}
    assert _claim(store, now=T0 + LEASE + 1) != []  # leases ran out: the third 'a' goes


def test_a_failing_key_template_fails_the_task(store: Stores) -> None:
    spec = wf("bad_key", _keyed("t", "k-{{ params.missing.deeper }}", 1))
    run_id = _start(store, spec)
    assert _claim(store) == []
    (row,) = store.reads.list_task_runs(run_id)
    assert row.state.value == "failed"
    assert row.error


def test_key_and_limit_go_together() -> None:
    with pytest.raises(ValueError, match="go together"):
        WorkflowSpec.model_validate(
            {"name": "w", "tasks": [{"name": "t", "action": {"kind": "python", "ref": "m:f"},
                                     "concurrency_key": "k"}]}
        )  # fmt: skip


# ------------------------------------------------------------------ concurrent claimers


class _Holds:
    """The task runs the claimer threads hold at once, the most they ever held, and the
    ones they finished; one lock, as a claim and its release race across threads."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.lock = threading.Lock()
        self.held: Counter[str] = Counter()
        self.worst: Counter[str] = Counter()
        self.done: list[int] = []

    def all_done(self) -> bool:
        with self.lock:
            return len(self.done) >= self.total

    def take(self, claims: list[Claim]) -> None:
        with self.lock:
            for c in claims:
                self.held["queue"] += 1
                self.held[c.params["c"]] += 1
            for k, v in self.held.items():
                self.worst[k] = max(self.worst[k], v)

    def give_back(self, claim: Claim) -> None:
        with self.lock:
            self.held["queue"] -= 1
            self.held[claim.params["c"]] -= 1
            self.done.append(claim.task_run_id)


def test_concurrent_claimers_never_exceed_the_limits(make_store: MakeStore) -> None:
    """Several store objects (as several worker processes would) claim and finish at once;
    a claimed task run is counted as held from after its claim commits to before its finish
    starts, so held <= running in the database at every instant."""
    queue_limit, key_limit = 3, 2
    first = make_store()
    first.runs.set_queue_limit("limited", queue_limit, now=time.time())
    spec = wf(
        "contended",
        *(_keyed(f"t{i}", "c-{{ params.c }}", key_limit, queue="limited") for i in range(4)),
        params={"c": ParamSpec()},
    )
    first.workflows.register_workflow(spec, source=None, now=time.time())
    runs = 12
    for i in range(runs):
        first.runs.create_run(spec, {"c": "ab"[i % 2]}, now=time.time())
    total = runs * 4
    stores = [make_store() for _ in range(4)]
    holds = _Holds(total)
    errors: list[BaseException] = []

    def work(store: Stores, name: str) -> None:
        try:
            while not holds.all_done():
                claims = store.runs.claim(worker_id=name, queues=("limited",), limit=2,
                                     lease_seconds=LEASE, now=time.time())  # fmt: skip
                holds.take(claims)
                time.sleep(0.002)
                for c in claims:
                    holds.give_back(c)
                    _succeed(store, c, time.time())
                if not claims:
                    time.sleep(0.002)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, f"w{i}")) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    worst, done = holds.worst, holds.done
    assert not errors, errors
    assert len(done) == total and len(set(done)) == total
    assert worst["queue"] <= queue_limit
    assert worst["a"] <= key_limit and worst["b"] <= key_limit
    print(f"\nmost held at once: queue {worst['queue']}, a {worst['a']}, b {worst['b']}")


def test_a_full_limit_is_no_reason_to_wake(store: Stores) -> None:
    # An idle worker sleeps until next_ready_at: work held back by a full slot must not
    # make it spin.
    store.runs.set_queue_limit("default", 1, now=T0)
    _start(store, wf("two", py("a"), py("b"), py("c", queue="free")))
    assert store.runs.next_ready_at(("default",), {}, now=T0) == T0
    assert len(_claim(store)) == 1
    assert store.runs.next_ready_at(("default",), {}, now=T0) is None
    assert store.runs.next_ready_at(("default", "free"), {}, now=T0) == T0
    assert store.runs.next_ready_at(("default",), {}, now=T0 + LEASE + 1) == T0

"""Routing by worker labels, on every backend: a claim takes only the task runs whose
``requires`` the claiming worker's labels satisfy (every key/value pair present)."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.records import Claim, Outcome
from orchestrion.store.stores import Stores
from tests.helpers import py, wf

T0 = 1_700_000_000.0


def _claim(store: Stores, labels: Mapping[str, str] | None, worker: str = "w") -> list[Claim]:
    return store.runs.claim(
        worker_id=worker,
        queues=("default",),
        limit=100,
        lease_seconds=30.0,
        now=T0,
        labels=labels,
    )


def _start(store: Stores, spec: WorkflowSpec) -> str:
    store.workflows.register_workflow(spec, source=None, now=T0)
    return store.runs.create_run(spec, {}, now=T0).id


def _mixed() -> WorkflowSpec:
    return wf(
        "routed",
        py("anywhere"),
        py("gpu", requires={"gpu": "a100"}),
        py("gpu_eu", requires={"gpu": "a100", "zone": "eu"}),
        py("other_gpu", requires={"gpu": "h100"}),
    )


def test_a_worker_without_labels_takes_only_unconstrained_tasks(store: Stores) -> None:
    _start(store, _mixed())
    assert [c.task_name for c in _claim(store, {})] == ["anywhere"]
    assert _claim(store, {}) == []


def test_a_claim_without_routing_takes_everything(store: Stores) -> None:
    # labels=None: the in-process worker of `orchestrion run` runs the whole run.
    _start(store, _mixed())
    assert len(_claim(store, None)) == 4


def test_labels_must_include_every_required_pair(store: Stores) -> None:
    _start(store, _mixed())
    assert sorted(c.task_name for c in _claim(store, {"gpu": "a100"})) == ["anywhere", "gpu"]
    # extra labels do not hurt; a different value does not match
    taken = _claim(store, {"zone": "eu", "gpu": "a100", "disk": "ssd"}, worker="w2")
    assert [c.task_name for c in taken] == ["gpu_eu"]
    assert [c.task_name for c in _claim(store, {"gpu": "h100"}, worker="w3")] == ["other_gpu"]


def test_mapped_items_inherit_the_requirement(store: Stores) -> None:
    spec = wf(
        "routed_map",
        py("items"),
        py("each", "items", map_over="tasks.items", requires={"pool": "big"}),
    )
    _start(store, spec)
    (first,) = _claim(store, {})
    store.runs.finish(
        [
            Outcome(
                task_run_id=first.task_run_id, epoch=first.epoch, status="succeeded", result=[1, 2]
            )
        ],
        now=T0,
    )
    assert _claim(store, {}) == []
    assert store.runs.next_ready_at(("default",), {}) is None  # nothing this worker could take
    assert store.runs.next_ready_at(("default",), {"pool": "big"}) == T0
    assert [c.map_index for c in _claim(store, {"pool": "big"})] == [0, 1]


def test_requirements_keep_versions_of_workflows_without_them() -> None:
    plain = wf("plain", py("a"))
    assert '"requires"' not in plain.to_json()
    routed = wf("plain", py("a", requires={"gpu": "a100"}))
    assert routed.version != plain.version
    assert WorkflowSpec.from_json(routed.to_json()) == routed


def test_priority_ageing_lets_waiting_low_priority_work_pass(store: Stores) -> None:
    low = wf("low", py("slow_lane", priority=-50))
    _start(store, low)
    # nothing has waited long enough yet
    assert store.runs.age_priorities(now=T0 + 5, every=10.0, step=20, most=5) == 0
    # 35 s later: three raises are due, but one pass raises once (the next pass the rest)
    assert store.runs.age_priorities(now=T0 + 35, every=10.0, step=20, most=5) == 1
    assert store.runs.age_priorities(now=T0 + 35, every=10.0, step=20, most=5) == 1
    assert store.runs.age_priorities(now=T0 + 35, every=10.0, step=20, most=5) == 1
    assert store.runs.age_priorities(now=T0 + 35, every=10.0, step=20, most=5) == 0
    # now at -50 + 60 = 10: ahead of fresh work at priority 0
    store.workflows.register_workflow(wf("fresh", py("fast_lane")), source=None, now=T0 + 35)
    store.runs.create_run(wf("fresh", py("fast_lane")), {}, now=T0 + 35)
    first = store.runs.claim(
        worker_id="w", queues=("default",), limit=1, lease_seconds=30.0, now=T0 + 36
    )
    assert [c.task_name for c in first] == ["slow_lane"]


def test_priority_ageing_stops_after_most_raises(store: Stores) -> None:
    run_id = _start(store, wf("capped", py("a", priority=-1000), py("b", priority=900)))
    raised = sum(
        store.runs.age_priorities(now=T0 + 10_000, every=1.0, step=600, most=3) for _ in range(6)
    )
    assert raised == 6  # three raises each, then no more
    priorities = {t.task_name: t.priority for t in store.reads.list_task_runs(run_id)}
    assert priorities == {"a": 800, "b": 1000}  # never above 1000


def _done(claim: Claim) -> Outcome:
    return Outcome(task_run_id=claim.task_run_id, epoch=claim.epoch, status="succeeded")


def _finish_and_claim(store: Stores, claim: Claim, limit: int = 4) -> list[Claim]:
    result, claims = store.runs.finish_and_claim(
        [_done(claim)],
        now=T0,
        worker_id="w",
        queues=("default",),
        limit=limit,
        lease_seconds=30.0,
        labels={},
    )
    assert result.applied == (claim.task_run_id,)
    return claims


def test_finish_and_claim_hands_the_next_task_of_a_chain_over(store: Stores) -> None:
    _start(store, wf("handoff", py("a"), py("b", "a", inputs={"x": "tasks.a"}), py("c", "b")))
    (a,) = _claim(store, {})
    (b,) = _finish_and_claim(store, a)
    assert (b.task_name, b.attempt, b.upstream) == ("b", 1, {"a": None})
    assert _finish_and_claim(store, b, limit=0) == []  # no slot: "c" stays queued
    assert [c.task_name for c in _claim(store, {})] == ["c"]


def test_a_claim_carries_only_the_upstream_results_its_task_reads(store: Stores) -> None:
    # "b" reads nothing of "a"; each item of "m" reads its item only: none of them may
    # carry the mapped list (a claim of 50,000 items would decode it 50,000 times).
    spec = wf(
        "reads",
        py("a"),
        py("b", "a"),
        py("m", "a", map_over="[1, 2]"),
        py("n", "a", map_over="[1]", inputs={"whole": "tasks.a"}),
    )
    _start(store, spec)
    (a,) = _claim(store, {})
    claims = _finish_and_claim(store, a, limit=8)
    assert {(c.task_name, c.map_index): c.upstream for c in claims} == {
        ("b", -1): {},
        ("m", 0): {},
        ("m", 1): {},
        ("n", 0): {"a": None},
    }


def test_finish_and_claim_claims_nothing_when_nothing_became_ready(store: Stores) -> None:
    _start(store, wf("no_handoff", py("a"), py("b"), py("c", "a", "b")))
    a, _ = sorted(_claim(store, {}), key=lambda c: c.task_name)
    assert _finish_and_claim(store, a) == []  # "c" still waits for "b"

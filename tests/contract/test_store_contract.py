"""The `Stores` contract: every verb, against every backend (`ORCHESTRION_TEST_DATABASE`).

Each test gets a fresh database (a SQLite file, or a PostgreSQL schema made by the
migrations) and drives it through the verbs only, with explicit times. Every finished run
is checked by replaying its history (`assert_consistent`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from orchestrion.errors import NotFound, SpecError
from orchestrion.spec.bundle import CodeBundle
from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import RunState, TaskState
from orchestrion.store.record import field_names
from orchestrion.store.records import (
    Claim,
    LogLine,
    Outcome,
    RunFilter,
    RunRecord,
    RunRequest,
    WorkerRecord,
)
from orchestrion.store.stores import Stores
from tests.contract.conftest import MakeStore, sql_db
from tests.helpers import assert_consistent, by_name, py, sub, wf

T0 = 1_700_000_000.0
S = TaskState


# ---------------------------------------------------------------------------- helpers


def start(store: Stores, spec: WorkflowSpec, now: float = T0, **kw: Any) -> str:
    store.workflows.register_workflow(spec, source=None, now=now)
    return store.runs.create_run(spec, kw.pop("params", {}), now=now, **kw).id


def take(
    store: Stores, now: float, limit: int = 100, worker: str = "w1", lease: float = 30.0
) -> list[Claim]:
    return store.runs.claim(
        worker_id=worker, queues=("default",), limit=limit, lease_seconds=lease, now=now
    )


def report(store: Stores, claim: Claim, now: float, result: Any = None, **kw: Any) -> bool:
    status = kw.pop("status", "succeeded")
    outcome = Outcome(
        task_run_id=claim.task_run_id, epoch=claim.epoch, status=status, result=result, **kw
    )
    return bool(store.runs.finish([outcome], now=now).applied)


def fail(store: Stores, claim: Claim, now: float, error: str = "boom") -> bool:
    return report(store, claim, now, status="failed", error=error, error_types=("x.Err",))


def drain(
    store: Stores, run_id: str, now: float, work: Callable[[Claim], Any] = lambda c: None
) -> RunRecord:
    """Claim and succeed everything until the run ends (`work` gives each result, or raises
    to fail it); the clock jumps to the next retry when idle."""
    for _ in range(500):
        run = store.reads.get_run(run_id)
        if run.state.finished:
            return run
        claims = take(store, now)
        for claim in claims:
            try:
                result = work(claim)
            except Exception as exc:
                fail(store, claim, now, str(exc))
            else:
                report(store, claim, now, result)
        if not claims:
            nxt = store.runs.next_ready_at(("default",))
            assert nxt is not None and nxt > now, f"run {run_id} is stuck"
            now = nxt + 0.001
        now += 0.01
    raise AssertionError(f"run {run_id} did not end")


def states(store: Stores, run_id: str) -> dict[str, str]:
    return {k: v.state.value for k, v in by_name(store.reads.list_task_runs(run_id)).items()}


def consistent(store: Stores, run_id: str) -> None:
    assert_consistent(store, store.url, run_id)


def chain() -> WorkflowSpec:
    return wf("chain", py("a"), py("b", "a"), py("c", "b"))


# ---------------------------------------------------------------------------- workflows


def test_register_get_list_and_versions(store: Stores) -> None:
    v1 = wf("flow", py("a"))
    v2 = wf("flow", py("a"), py("b", "a"))
    assert store.workflows.register_workflow(v1, source="one.py", now=T0)
    assert not store.workflows.register_workflow(v1, source=None, now=T0 + 1)
    assert store.workflows.register_workflow(v2, source=None, now=T0)  # same instant: later wins
    assert store.workflows.register_workflow(wf("alpha", py("x")), source=None, now=T0)
    assert store.workflows.get_workflow("flow").version == v2.version
    assert store.workflows.get_workflow("flow", v1.version).source == "one.py"
    assert store.workflows.get_workflow("flow", v1.version).spec == v1
    assert [r.version for r in store.workflows.list_versions("flow")] == [v2.version, v1.version]
    assert [r.name for r in store.workflows.list_workflows()] == ["alpha", "flow"]
    assert store.workflows.latest_versions() == {
        "alpha": (store.workflows.get_workflow("alpha").version, T0),
        "flow": (v2.version, T0),
    }
    assert not store.workflows.register_workflow(v1, source="two.py", now=T0 + 2)
    assert store.workflows.get_workflow("flow", v1.version).source == "two.py"
    # registering a known version again makes it current (a rollback), not a new version
    assert store.workflows.get_workflow("flow").version == v1.version
    assert [r.version for r in store.workflows.list_versions("flow")] == [v2.version, v1.version]
    for call in (
        lambda: store.workflows.get_workflow("nope"),
        lambda: store.workflows.get_workflow("flow", "0" * 16),
        lambda: store.workflows.list_versions("nope"),
    ):
        with pytest.raises(NotFound):
            call()
    kinds = [e.kind for e in store.reads.list_events()]
    assert kinds.count("workflow.registered") == 3


def test_a_version_is_registered_with_its_code_each_file_kept_once(store: Stores) -> None:
    shared = b"def tag():\n    return 'same in both'\n"
    one = CodeBundle({"pin.py": b"import helpers\n", "helpers.py": shared}, ("",))
    two = CodeBundle({"pin.py": b"import helpers  # v2\n", "helpers.py": shared}, ("",))
    v1 = wf("coded", py("a")).model_copy(update={"code": one.digest})
    v2 = wf("coded", py("a")).model_copy(update={"code": two.digest})
    assert v1.version != v2.version  # the same spec, other code: another version
    with pytest.raises(SpecError, match="not stored"):
        store.workflows.register_workflow(v1, source=None, now=T0)
    with pytest.raises(SpecError, match="not the code"):
        store.workflows.register_workflow(v1, source=None, now=T0, code=two)
    assert store.workflows.register_workflow(v1, source=None, now=T0, code=one)
    assert store.workflows.store_code(two, now=T0)  # ahead of its spec, as the API does
    assert not store.workflows.store_code(two, now=T0)
    assert store.workflows.register_workflow(v2, source=None, now=T0 + 1)
    for bundle in (one, two):
        back = store.workflows.get_code(bundle.digest)
        assert back is not None and dict(back.files) == dict(bundle.files)
        assert back.paths == bundle.paths and back.digest == bundle.digest
    assert store.workflows.get_code("0" * 64) is None
    blobs = sql_db(store).read("SELECT count(*) AS n FROM code_blobs")
    assert blobs[0]["n"] == 3  # helpers.py once for both versions


def test_the_current_version_is_chosen_on_purpose(store: Stores) -> None:
    a, b = wf("flow", py("a")), wf("flow", py("a"), py("b", "a"))
    w = store.workflows
    assert w.register_workflow(a, source=None, now=T0)
    assert w.register_workflow(b, source=None, now=T0 + 1)
    assert w.get_workflow("flow").version == b.version
    assert not w.register_workflow(a, source=None, now=T0 + 2)  # deploy A, B, A: A runs
    assert w.get_workflow("flow").version == a.version
    assert [r.version for r in w.list_workflows()] == [a.version]
    assert w.latest_versions() == {"flow": (a.version, T0 + 2)}  # when it became current
    assert not w.register_workflow(a, source=None, now=T0 + 3)  # already current: no change
    assert w.latest_versions() == {"flow": (a.version, T0 + 2)}
    assert w.set_current("flow", b.version, now=T0 + 4)
    assert not w.set_current("flow", b.version, now=T0 + 5)
    assert w.get_workflow("flow").version == b.version
    assert w.latest_versions() == {"flow": (b.version, T0 + 4)}
    for name, version in (("flow", "0" * 16), ("nope", a.version)):
        with pytest.raises(NotFound):
            w.set_current(name, version, now=T0 + 6)
    assert w.get_workflow("flow").version == b.version
    changes = [e.data for e in store.reads.list_events() if e.kind == "workflow.current"]
    assert changes == [
        {"workflow": "flow", "from": None, "to": a.version},
        {"workflow": "flow", "from": a.version, "to": b.version},
        {"workflow": "flow", "from": b.version, "to": a.version},
        {"workflow": "flow", "from": a.version, "to": b.version},
    ]


def test_a_restart_rereading_its_folder_keeps_a_rollback(store: Stores) -> None:
    """`keep_current` (a server or worker loading its workflow folder at start): a version
    registered before does not become current again; a new one still does."""
    a, b = wf("flow", py("a")), wf("flow", py("a"), py("b", "a"))
    c = wf("flow", py("c"))
    w = store.workflows
    w.register_workflow(a, source=None, now=T0)
    w.register_workflow(b, source=None, now=T0 + 1)
    assert w.set_current("flow", a.version, now=T0 + 2)  # the operator rolls back to A
    assert not w.register_workflow(b, source=None, now=T0 + 3, keep_current=True)
    assert w.get_workflow("flow").version == a.version  # the restart did not undo it
    assert w.register_workflow(c, source=None, now=T0 + 4, keep_current=True)
    assert w.get_workflow("flow").version == c.version  # a file changed meanwhile: deployed
    assert not w.register_workflow(b, source=None, now=T0 + 5)  # an explicit deploy: current
    assert w.get_workflow("flow").version == b.version


def test_pause_and_unpause(store: Stores) -> None:
    store.workflows.register_workflow(wf("p", py("a")), source=None, now=T0)
    assert store.workflows.paused_workflows() == set()
    store.workflows.set_paused("p", True, now=T0)
    store.workflows.set_paused("q", True, now=T0)
    assert store.workflows.paused_workflows() == {"p", "q"}
    store.workflows.set_paused("p", False, now=T0 + 1)
    assert store.workflows.paused_workflows() == {"q"}
    assert [e.kind for e in store.reads.list_events()][-3:] == [
        "workflow.paused",
        "workflow.paused",
        "workflow.unpaused",
    ]


# ---------------------------------------------------------------------------- runs


def test_create_run_and_read_it_back(store: Stores) -> None:
    spec = chain()
    run_id = start(store, spec, params={"n": 1}, priority=3, trigger="api")
    run = store.reads.get_run(run_id)
    assert (run.workflow, run.version, run.state) == ("chain", spec.version, RunState.RUNNING)
    assert (run.params, run.priority, run.trigger, run.created_at) == ({"n": 1}, 3, "api", T0)
    assert store.reads.get_run(run_id[:15]).id == run_id
    with pytest.raises(NotFound):
        store.reads.get_run("ffff")
    assert states(store, run_id) == {"a": "queued", "b": "pending", "c": "pending"}
    assert [t.task_name for t in store.reads.list_task_runs(run_id)] == ["a", "b", "c"]
    events = store.reads.list_events(run_id)
    assert [e.kind for e in events] == ["run.created", "task.ready"]
    assert store.reads.last_event_id() == events[-1].id
    assert store.reads.list_events(run_id, after_id=events[0].id) == events[1:]
    assert store.reads.list_events(after_id=events[-1].id) == []


def test_list_runs_filters_and_pages_newest_first(store: Stores) -> None:
    a, b = wf("ra", py("x")), wf("rb", py("x"))
    ids = [start(store, a if i % 2 else b, now=T0 + i) for i in range(6)]
    assert [r.id for r in store.reads.list_runs(RunFilter())] == ids[::-1]
    assert [r.id for r in store.reads.list_runs(RunFilter(workflow="ra"))] == ids[1::2][::-1]
    page = store.reads.list_runs(RunFilter(limit=2))
    assert [r.id for r in page] == ids[:-3:-1]
    rest = store.reads.list_runs(RunFilter(before=page[-1].id))
    assert [r.id for r in rest] == ids[-3::-1]
    store.runs.cancel_run(ids[0], now=T0 + 10)
    assert [r.id for r in store.reads.list_runs(RunFilter(state=RunState.CANCELED))] == [ids[0]]
    with pytest.raises(NotFound, match="ambiguous"):
        store.reads.get_run(ids[0][:4])


def test_idempotency_key_returns_the_first_run(store: Stores) -> None:
    spec = wf("idem", py("a"))
    first = start(store, spec, idempotency_key="k1")
    assert store.runs.create_run(spec, {}, now=T0 + 1, idempotency_key="k1").id == first
    assert store.runs.create_run(spec, {}, now=T0 + 1, idempotency_key="k2").id != first
    assert len(store.reads.list_runs(RunFilter(workflow="idem"))) == 2


def test_a_chain_runs_through_claims_heartbeats_and_finishes(store: Stores) -> None:
    run_id = start(store, wf("c", py("a"), py("b", "a", inputs={"x": "tasks.a"})))
    [a] = take(store, T0 + 1)
    assert (a.task_name, a.attempt, a.epoch, a.upstream) == ("a", 1, 1, {})
    assert take(store, T0 + 1) == []
    assert store.runs.heartbeat(
        worker_id="w1", leases=[(a.task_run_id, 1), (999_999, 1)], lease_seconds=30, now=T0 + 2
    ) == [999_999]
    assert store.runs.heartbeat(
        worker_id="w2", leases=[(a.task_run_id, 1)], lease_seconds=30, now=T0 + 2
    ) == [a.task_run_id]
    result = store.runs.finish(
        [Outcome(task_run_id=a.task_run_id, epoch=1, status="succeeded", result={"v": 1})],
        now=T0 + 3,
    )
    assert result.applied == (a.task_run_id,) and result.newly_ready == 1
    again = store.runs.finish(
        [Outcome(task_run_id=a.task_run_id, epoch=1, status="succeeded")], now=T0 + 3
    )
    assert again.superseded == (a.task_run_id,) and again.applied == ()
    [b] = take(store, T0 + 4)
    assert b.upstream == {"a": {"v": 1}}
    assert report(store, b, T0 + 5, [1, 2])
    run = store.reads.get_run(run_id)
    assert run.state is RunState.SUCCEEDED and run.result == {"b": [1, 2]}
    assert run.finished_at == T0 + 5
    attempts = store.reads.list_attempts(run_id)
    assert [(x.number, x.epoch, x.worker, x.outcome) for x in attempts] == [
        (1, 1, "w1", "succeeded"),
        (1, 1, "w1", "succeeded"),
    ]
    consistent(store, run_id)


def test_mapped_fan_out_gathers_results_in_order(store: Stores) -> None:
    spec = wf(
        "fan",
        py("src"),
        py("sq", "src", map_over="tasks.src", inputs={"x": "item"}),
        py("total", "sq", inputs={"xs": "tasks.sq"}),
    )
    run_id = start(store, spec)

    def work(c: Claim) -> Any:
        if c.task_name == "src":
            return [3, 1, 2]
        if c.task_name == "sq":
            return c.item * c.item
        return sum(c.upstream["sq"])

    run = drain(store, run_id, T0 + 1, work)
    assert run.state is RunState.SUCCEEDED and run.result == {"total": 14}
    items = [t for t in store.reads.list_task_runs(run_id) if t.kind == "item"]
    assert [(t.map_index, t.result) for t in items] == [(0, 9), (1, 1), (2, 4)]
    assert by_name(store.reads.list_task_runs(run_id))["sq"].result == [9, 1, 4]
    consistent(store, run_id)


def test_retries_wait_in_ready_at_then_succeed(store: Stores) -> None:
    run_id = start(store, wf("r", py("a", retries=2, backoff=10.0)))
    [a] = take(store, T0 + 1)
    assert fail(store, a, T0 + 1)
    assert states(store, run_id) == {"a": "retry_wait"}
    assert store.runs.next_ready_at(("default",)) == pytest.approx(T0 + 11)
    assert store.runs.next_ready_at(("other",)) is None
    assert take(store, T0 + 5) == []
    [again] = take(store, T0 + 12)
    assert (again.attempt, again.epoch) == (2, 2)
    assert report(store, again, T0 + 12, "ok")
    assert store.reads.get_run(run_id).state is RunState.SUCCEEDED
    assert [x.outcome for x in store.reads.list_attempts(run_id)] == ["failed", "succeeded"]
    consistent(store, run_id)


def test_cancel_then_retry_and_rerun(store: Stores) -> None:
    run_id = start(store, chain())
    [a] = take(store, T0 + 1)
    assert store.runs.cancel_run(run_id, now=T0 + 2)
    assert not store.runs.cancel_run(run_id, now=T0 + 2)
    assert set(states(store, run_id).values()) == {"canceled"}
    assert not report(store, a, T0 + 3)  # late: superseded
    assert store.runs.heartbeat(
        worker_id="w1", leases=[(a.task_run_id, a.epoch)], lease_seconds=30, now=T0 + 3
    ) == [a.task_run_id]
    assert store.runs.retry_run(run_id, now=T0 + 4)
    assert not store.runs.retry_run(run_id, now=T0 + 4)
    run = drain(store, run_id, T0 + 5, lambda c: c.task_name)
    assert run.state is RunState.SUCCEEDED
    consistent(store, run_id)
    rerun_id = store.runs.rerun_from(run_id, "b", now=T0 + 10)
    assert states(store, rerun_id) == {"a": "succeeded", "b": "queued", "c": "pending"}
    assert drain(store, rerun_id, T0 + 11).state is RunState.SUCCEEDED
    consistent(store, rerun_id)


def test_timeouts_fail_runs_past_their_deadline(store: Stores) -> None:
    spec = WorkflowSpec(name="slow", tasks=(py("a"),), timeout=60.0)
    run_id = start(store, spec)
    take(store, T0 + 1)
    assert store.runs.timeout_runs(now=T0 + 30) == []
    assert store.runs.timeout_runs(now=T0 + 61) == [run_id]
    run = store.reads.get_run(run_id)
    assert run.state is RunState.FAILED and run.error == "run timed out"
    consistent(store, run_id)


def test_max_active_runs_queues_and_admits(store: Stores) -> None:
    spec = WorkflowSpec(name="one", tasks=(py("a"),), max_active_runs=1)
    first, second = start(store, spec), start(store, spec, now=T0 + 1)
    assert store.reads.get_run(second).state is RunState.QUEUED
    [a] = take(store, T0 + 2)
    assert a.run_id == first and take(store, T0 + 2) == []
    report(store, a, T0 + 3)
    assert store.reads.get_run(second).state is RunState.RUNNING
    assert drain(store, second, T0 + 4).state is RunState.SUCCEEDED
    consistent(store, first)
    consistent(store, second)


def test_compensation_runs_undo_steps_in_reverse(store: Stores) -> None:
    spec = wf(
        "saga",
        py("reserve", undo="unreserve"),
        py("book", "reserve", undo="unbook"),
        py("charge", "book"),
    )
    run_id = start(store, spec)
    seen: list[tuple[str, Any]] = []

    def work(c: Claim) -> Any:
        if c.task_name == "charge":
            raise RuntimeError("declined")
        if c.kind == "undo":
            seen.append((c.task_name, c.undo_of_result))
        return c.task_name

    run = drain(store, run_id, T0 + 1, work)
    assert run.state is RunState.FAILED and "declined" in (run.error or "")
    assert seen == [("undo:book", "book"), ("undo:reserve", "reserve")]
    assert states(store, run_id) == {
        "reserve": "compensated",
        "book": "compensated",
        "charge": "failed",
    }
    assert not store.runs.retry_run(run_id, now=T0 + 9)
    consistent(store, run_id)


def test_child_runs_finish_their_parent_task(store: Stores) -> None:
    child = wf("kid", py("k"))
    parent = wf("parent", sub("s", "kid"), py("after", "s"))
    store.workflows.register_workflow(child, source=None, now=T0)
    run_id = start(store, parent)
    [s] = take(store, T0 + 1)
    child_id = store.runs.start_child_run(s, child, {}, now=T0 + 2)
    assert child_id is not None
    assert store.runs.start_child_run(s, child, {}, now=T0 + 2) is None  # no longer running
    assert states(store, run_id)["s"] == "waiting"
    assert store.reads.get_run(child_id).parent_task_run_id == s.task_run_id
    [k] = take(store, T0 + 3)
    report(store, k, T0 + 3, 42)
    assert by_name(store.reads.list_task_runs(run_id))["s"].result == {"k": 42}
    assert drain(store, run_id, T0 + 4).state is RunState.SUCCEEDED
    consistent(store, run_id)
    consistent(store, child_id)


def test_reaping_expired_leases_and_dead_workers(store: Stores) -> None:
    worker = WorkerRecord(
        id="w1",
        host="h",
        pid=1,
        queues=("default",),
        started_at=T0,
        heartbeat_at=T0,
        state="running",
        labels={"gpu": "a100"},
    )
    store.runs.register_worker(worker)
    store.runs.register_worker(
        WorkerRecord(**{**_fields(worker), "id": "w2", "pid": 2, "labels": {}})
    )
    store.runs.worker_heartbeat("w1", now=T0 + 5)
    assert [(w.id, w.heartbeat_at, dict(w.labels)) for w in store.reads.list_workers()] == [
        ("w1", T0 + 5, {"gpu": "a100"}),
        ("w2", T0, {}),
    ]
    run_id = start(store, wf("reap", py("a"), py("b")))
    [a] = take(store, T0 + 1, limit=1, worker="w1", lease=10)
    [b] = take(store, T0 + 1, limit=1, worker="w2", lease=100)
    assert {k: [t.id for t in v] for k, v in store.reads.running_by_worker().items()} == {
        "w1": [a.task_run_id],
        "w2": [b.task_run_id],
    }
    assert store.runs.reap_expired(now=T0 + 5) == 0
    assert store.runs.reap_expired(now=T0 + 12) == 1
    assert store.runs.expire_worker("w2", now=T0 + 13) == 1
    assert {w.id: w.state for w in store.reads.list_workers()}["w2"] == "dead"
    assert store.runs.reap_expired(now=T0 + 13) == 1
    assert not report(store, a, T0 + 14)  # fenced
    claims = take(store, T0 + 14)
    assert sorted((c.task_name, c.epoch, c.attempt) for c in claims) == [
        ("a", 2, 2),
        ("b", 2, 2),
    ]
    for claim in claims:
        report(store, claim, T0 + 15)
    assert store.reads.get_run(run_id).state is RunState.SUCCEEDED
    outcomes = sorted(
        (x.task_run_id, x.epoch, x.outcome) for x in store.reads.list_attempts(run_id)
    )
    assert [o for _, _, o in outcomes] == ["lost", "succeeded", "lost", "succeeded"]
    consistent(store, run_id)


def _fields(worker: WorkerRecord) -> dict[str, Any]:
    return {f: getattr(worker, f) for f in field_names(worker)}


def test_concurrency_limit_across_runs(store: Stores) -> None:
    spec = wf("lim", py("a", concurrency=2))
    runs = [start(store, spec, now=T0 + i) for i in range(4)]
    first = take(store, T0 + 5)
    assert len(first) == 2 and take(store, T0 + 5) == []
    assert store.runs.next_ready_at(("default",)) is None  # held back: no reason to wake
    report(store, first[0], T0 + 6)
    [third] = take(store, T0 + 6)
    for claim in (first[1], third):
        report(store, claim, T0 + 7)
    for run_id in runs:
        drain(store, run_id, T0 + 7)
    assert all(store.reads.get_run(r).state is RunState.SUCCEEDED for r in runs)


def test_logs_are_appended_and_read_in_order(store: Stores) -> None:
    run_id = start(store, wf("logs", py("a"), py("b")))
    a, b = sorted(take(store, T0 + 1), key=lambda c: c.task_name)
    lines = [
        LogLine(run_id=run_id, task_run_id=c.task_run_id, attempt=1, at=T0 + i, stream=s, line=t)
        for i, (c, s, t) in enumerate(
            [(a, "stdout", "one 100%"), (b, "stderr", "two ?"), (a, "stdout", "three")]
        )
    ]
    store.runs.append_logs(lines)
    store.runs.append_logs([])
    logs = store.reads.get_logs(run_id)
    assert [(x.task_name, x.stream, x.line) for x in logs] == [
        ("a", "stdout", "one 100%"),
        ("b", "stderr", "two ?"),
        ("a", "stdout", "three"),
    ]
    assert [x.line for x in store.reads.get_logs(run_id, task_name="a")] == ["one 100%", "three"]
    assert [x.line for x in store.reads.get_logs(run_id, after_id=logs[0].id, limit=1)] == ["two ?"]


def test_local_waiters_wake_on_commits(store: Stores) -> None:
    seen = store.notifier.wait_for_events(-1, 0.0)
    woke = threading.Event()

    def waiter() -> None:
        store.notifier.wait_for_change(5.0)
        woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    start(store, wf("wake", py("a")))
    assert woke.wait(2.0)
    thread.join()
    assert store.notifier.wait_for_events(seen, 1.0) != seen


# ---------------------------------------------------------------------------- triggers


def test_a_fire_records_the_times_skipped_before_it_once(store: Stores) -> None:
    spec = wf("cron", py("a"))
    store.workflows.register_workflow(spec, source=None, now=T0)
    skipped = (T0 - 120, T0 - 60)
    for _ in range(2):  # the second finds the fire made: nothing is recorded again
        store.triggers.fire_schedule(
            spec, schedule_key="cron/k", nominal=T0, params={}, now=T0 + 1, missed=skipped
        )
    missed = [e.data for e in store.reads.list_events() if e.kind == "schedule.missed"]
    assert len(missed) == 1
    assert missed[0] is not None and missed[0]["count"] == 2


def test_a_schedule_fires_once_per_nominal_time(store: Stores) -> None:
    spec = wf("cron", py("a"))
    store.workflows.register_workflow(spec, source=None, now=T0)
    fire = store.triggers.fire_schedule(
        spec, schedule_key="cron/k", nominal=T0, params={}, now=T0 + 1
    )
    assert fire is not None and fire.state == "started" and fire.run_id is not None
    run = store.reads.get_run(fire.run_id)
    assert run.trigger == run.idempotency_key == "schedule:cron/k@2023-11-14T22:13:20Z"
    assert (
        store.triggers.fire_schedule(spec, schedule_key="cron/k", nominal=T0, params={}, now=T0 + 2)
        is None
    )
    states_ = store.triggers.schedule_states()
    assert (states_["cron/k"].cursor, states_["cron/k"].last_fire) == (T0, T0)
    store.triggers.advance_schedule("cron/k", "cron", T0 + 600, now=T0 + 3)
    store.triggers.advance_schedule("cron/k", "cron", T0 + 60, now=T0 + 4)  # never back
    assert store.triggers.schedule_states()["cron/k"].cursor == T0 + 600
    assert store.triggers.schedule_states()["cron/k"].last_fire == T0
    bad = store.triggers.fire_schedule(
        spec, schedule_key="cron/k", nominal=T0 + 900, params={}, now=T0 + 5, error="bad param"
    )
    assert bad is not None and (bad.state, bad.run_id, bad.error) == ("failed", None, "bad param")
    assert [f.nominal for f in store.triggers.list_fires("cron/k")] == [T0 + 900, T0]
    assert [f.id for f in store.triggers.list_fires(limit=1)] == [bad.id]


def test_overlap_skip_and_queue(store: Stores) -> None:
    spec = wf("ov", py("a"))
    store.workflows.register_workflow(spec, source=None, now=T0)

    def fire(key: str, nominal: float, overlap: str) -> str | None:
        rec = store.triggers.fire_schedule(
            spec, schedule_key=key, nominal=nominal, params={}, now=nominal, overlap=overlap
        )
        assert rec is not None
        return rec.state

    assert fire("ov/s", T0, "skip") == "started"
    assert fire("ov/s", T0 + 60, "skip") == "skipped"
    assert fire("ov/q", T0, "queue") == "started"
    assert fire("ov/q", T0 + 60, "queue") == "queued"
    assert store.triggers.queued_fire_keys() == {"ov/q"}
    assert (
        store.triggers.start_queued_fire(spec, "ov/q", now=T0 + 61) is None
    )  # the first still runs
    for claim in take(store, T0 + 62):
        report(store, claim, T0 + 62)
    started = store.triggers.start_queued_fire(spec, "ov/q", now=T0 + 63)
    assert started is not None and store.triggers.queued_fire_keys() == set()
    assert fire("ov/c", T0, "cancel_previous") == "started"
    assert fire("ov/c", T0 + 60, "cancel_previous") == "started"
    runs = [f.run_id for f in store.triggers.list_fires("ov/c")]
    assert [store.reads.get_run(r).state for r in runs if r] == [
        RunState.RUNNING,
        RunState.CANCELED,
    ]


@pytest.mark.parametrize("first", ["failed", "succeeded"])
def test_repeated_reports_in_one_batch_first_wins_the_rest_are_superseded(
    store: Stores, first: str
) -> None:
    """A batch holding several reports of one attempt applies the first, whatever its
    status, and records every repeat as superseded (PostgreSQL's batched success path once
    let a later success win over an earlier failure and dropped the repeats silently)."""
    run_id = start(store, wf("rep", py("a"), py("b", "a")))
    (claim,) = take(store, T0 + 1)
    ok = Outcome(task_run_id=claim.task_run_id, epoch=claim.epoch, status="succeeded", result=1)
    bad = Outcome(task_run_id=claim.task_run_id, epoch=claim.epoch, status="failed", error="boom")
    batch = [bad, ok, bad] if first == "failed" else [ok, bad, ok]
    res = store.runs.finish(batch, now=T0 + 2)
    assert res.applied == (claim.task_run_id,)
    assert res.superseded == (claim.task_run_id, claim.task_run_id)
    assert states(store, run_id)["a"] == first
    kinds = [e.kind for e in store.reads.list_events(run_id, limit=1000)]
    assert kinds.count("attempt.superseded") == 2
    assert [a.outcome for a in store.reads.list_attempts(run_id)] == [first]


def test_events_are_recorded_once(store: Stores) -> None:
    spec = wf("ev", py("a"))
    store.workflows.register_workflow(spec, source=None, now=T0)
    req = RunRequest(spec=spec, params={}, trigger="event:hook/1", idempotency_key="event:hook/1")
    first = store.triggers.record_event("hook", "1", "push", {"x": "50%"}, now=T0, runs=[req])
    assert not first.duplicate and len(first.run_ids) == 1
    again = store.triggers.record_event("hook", "1", "push", {"x": 1}, now=T0 + 1, runs=[req])
    assert again.duplicate and again.run_ids == first.run_ids
    errs = store.triggers.record_event("hook", "2", "push", None, now=T0 + 2, errors=["no match"])
    assert errs.run_ids == () and errs.errors == ("no match",)
    assert store.triggers.record_event("hook", "2", "push", None, now=T0 + 3).errors == (
        "no match",
    )


def test_finished_runs_feed_and_cursors(store: Stores) -> None:
    assert store.triggers.finished_runs(-1) == ([], store.reads.last_event_id())
    spec = wf("fin", py("a"))
    done = [start(store, spec, now=T0 + i) for i in range(3)]
    for i in range(len(done)):
        for claim in take(store, T0 + 10 + i):
            report(store, claim, T0 + 10 + i)
    found, position = store.triggers.finished_runs(0)
    assert [f.run.id for f in found] == done and position == store.reads.last_event_id()
    page, pos = store.triggers.finished_runs(0, limit=2)
    assert [f.run.id for f in page] == done[:2] and pos == page[-1].event_id
    assert store.triggers.finished_runs(pos)[0][0].run.id == done[2]
    assert store.triggers.get_cursor("triggers") is None
    store.triggers.set_cursor("triggers", 10, now=T0)
    store.triggers.set_cursor("triggers", 5, now=T0)  # never back
    assert store.triggers.get_cursor("triggers") == 10


def test_leases_change_hands_with_new_epochs(store: Stores) -> None:
    assert store.triggers.acquire_lease("cron", "s1", ttl=30, now=T0) == 1
    assert store.triggers.acquire_lease("cron", "s2", ttl=30, now=T0 + 1) is None
    assert store.triggers.acquire_lease("cron", "s1", ttl=30, now=T0 + 10) == 1  # extended
    assert store.triggers.renew_lease("cron", "s1", 1, ttl=30, now=T0 + 20)
    assert not store.triggers.renew_lease("cron", "s2", 1, ttl=30, now=T0 + 20)
    assert store.triggers.acquire_lease("cron", "s2", ttl=30, now=T0 + 51) == 2  # lapsed
    assert not store.triggers.renew_lease("cron", "s1", 1, ttl=30, now=T0 + 52)
    store.triggers.release_lease("cron", "s2", 2)
    assert store.triggers.acquire_lease("cron", "s1", ttl=30, now=T0 + 53) == 3


def test_backfills_pace_complete_and_cancel(store: Stores) -> None:
    spec = wf("bf", py("a"))
    store.workflows.register_workflow(spec, source=None, now=T0)
    bf = store.triggers.create_backfill(
        spec, schedule_key="bf/k", start=T0, end=T0 + 180, total=3, max_active=2, priority=-100,
        now=T0,
    )  # fmt: skip
    assert (bf.state, bf.total, bf.created, bf.counts) == ("running", 3, 0, {})
    fires: list[tuple[float, dict[str, Any]]] = [(T0 + 60 * i, {}) for i in range(3)]
    started = store.triggers.pace_backfill(bf.id, spec, fires, exhausted=False, now=T0 + 1)
    assert len(started) == 2
    assert store.triggers.pace_backfill(bf.id, spec, fires[2:], exhausted=False, now=T0 + 2) == []
    got = store.triggers.get_backfill(bf.id)
    assert (got.created, got.cursor, got.active) == (2, T0 + 60, 2)
    assert store.reads.get_run(started[0]).priority == -100
    for claim in take(store, T0 + 3):
        report(store, claim, T0 + 3)
    assert (
        len(store.triggers.pace_backfill(bf.id, spec, fires[2:], exhausted=True, now=T0 + 4)) == 1
    )
    for claim in take(store, T0 + 5):
        report(store, claim, T0 + 5)
    store.triggers.pace_backfill(bf.id, spec, [], exhausted=True, now=T0 + 6)
    done = store.triggers.get_backfill(bf.id)
    assert (done.state, done.counts, done.finished_at) == ("completed", {"succeeded": 3}, T0 + 6)
    other = store.triggers.create_backfill(
        spec, schedule_key="bf/k", start=T0, end=T0, total=1, max_active=1, priority=0, now=T0 + 7
    )
    [run_id] = store.triggers.pace_backfill(
        other.id, spec, [(T0 + 1, {})], exhausted=True, now=T0 + 8
    )
    assert store.triggers.cancel_backfill(other.id, now=T0 + 9)
    assert not store.triggers.cancel_backfill(other.id, now=T0 + 9)
    assert store.reads.get_run(run_id).state is RunState.CANCELED
    assert [b.id for b in store.triggers.list_backfills(workflow="bf")] == [other.id, bf.id]
    assert [b.id for b in store.triggers.list_backfills(state="completed")] == [bf.id]
    with pytest.raises(NotFound):
        store.triggers.get_backfill("bf-nope")


def test_two_store_objects_share_one_database(make_store: MakeStore) -> None:
    one, two = make_store(), make_store()
    run_id = start(one, chain())
    assert two.reads.get_run(run_id).state is RunState.RUNNING
    [a] = take(two, T0 + 1)
    assert report(one, a, T0 + 2)
    assert [c.task_name for c in take(two, T0 + 3)] == ["b"]

"""The web UI's batched reads (`store/sql/reads.py`) on every backend."""

from __future__ import annotations

from typing import Any

from orchestrion.states import RunState
from orchestrion.store.records import Claim
from orchestrion.store.stores import Stores
from tests.contract.test_store_contract import T0, drain, start
from tests.helpers import py, wf


def test_last_runs_newest_first_per_workflow(store: Stores) -> None:
    ids: dict[str, list[str]] = {"a": [], "b": []}
    for i in range(5):
        for name in ("a", "b"):
            spec = wf(name, py("t"))
            ids[name].append(start(store, spec, now=T0 + i + (0.5 if name == "b" else 0.0)))
    start(store, wf("c", py("t")), now=T0)
    # 250 names: more than one UNION ALL statement (at most 200 workflows each)
    names = ["a", "b", "nothing", *(f"x{i:03d}" for i in range(247))]
    last = store.reads.last_runs(names, per=3)
    assert set(last) == set(names)
    assert [r.id for r in last["a"]] == ids["a"][::-1][:3]
    assert [r.id for r in last["b"]] == ids["b"][::-1][:3]
    assert last["nothing"] == [] and "c" not in last
    assert all(r.workflow == "a" for r in last["a"])


def test_run_state_counts_since(store: Stores) -> None:
    spec = wf("counted", py("t"))
    start(store, spec, now=T0 - 100_000)  # older than the window
    first = start(store, spec, now=T0)
    start(store, spec, now=T0 + 1)
    assert store.runs.cancel_run(first, now=T0 + 2)
    counts = store.reads.run_state_counts(since=T0 - 86_400)
    assert counts.pop(RunState.CANCELED.value) == 1
    assert sum(counts.values()) == 1 and RunState.CANCELED.value not in counts


def test_task_items_and_results(store: Stores) -> None:
    spec = wf(
        "fan",
        py("src"),
        py("sq", "src", map_over="tasks.src", inputs={"x": "item"}),
        py("total", "sq"),
    )
    run_id = start(store, spec)

    def work(c: Claim) -> Any:
        if c.task_name == "src":
            return [{"n": 3}, {"n": 1}, {"n": 2}]
        if c.task_name == "sq":
            return c.item["n"] ** 2
        return sum(c.upstream["sq"])

    drain(store, run_id, T0 + 1, work)
    assert store.reads.task_items(run_id, "sq", limit=2) == {0: {"n": 3}, 1: {"n": 1}}
    assert store.reads.task_items(run_id, "src", limit=10) == {}
    assert store.reads.task_results(run_id, ["sq", "src"]) == {
        "sq": [9, 1, 4],
        "src": [{"n": 3}, {"n": 1}, {"n": 2}],
    }
    assert store.reads.task_results(run_id, []) == {}
    named = store.reads.task_runs_named(run_id, "sq")
    assert [(t.kind, t.map_index) for t in named] == [("group", -1), ("item", 0), ("item", 1),
                                                      ("item", 2)]  # fmt: skip
    attempts = store.reads.attempts_of([t.id for t in named])
    assert sorted(a.task_run_id for a in attempts) == sorted(t.id for t in named[1:])
    assert store.reads.attempts_of([]) == []


def test_find_events_filters_and_pages(store: Stores) -> None:
    one = start(store, wf("one", py("t")))
    drain(store, one, T0 + 1)
    two = start(store, wf("two", py("t")), now=T0 + 2)
    every = store.reads.find_events(limit=1000)
    assert [e.id for e in every] == sorted((e.id for e in every), reverse=True)
    runs = store.reads.find_events(kind="run.")
    assert runs and all(e.kind.startswith("run.") for e in runs)
    assert {e.run_id for e in store.reads.find_events(workflow="two")} == {two}
    mine = store.reads.find_events(run_id=one, kind="task.")
    assert mine and all(e.run_id == one and e.kind.startswith("task.") for e in mine)
    page = store.reads.find_events(limit=2)
    older = store.reads.find_events(before=page[-1].id, limit=2)
    assert older and all(e.id < page[-1].id for e in older)
    assert store.reads.find_events(kind="no.such.kind") == []

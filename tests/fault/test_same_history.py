"""The same run on SQLite and on PostgreSQL ends with identical histories.

A workflow of 200 tasks (CI; ``ORCHESTRION_FAULT_SCALE=full``: 2,000): a list, a mapped
step per element (every 7th fails its first attempt and succeeds on its retry, every 11th
returns a value a conditional downstream skips on), a gathering total and a final report.
Two ``orchestrion worker`` processes run it on each backend. The histories must match
apart from ids and times: the ordered (task name, map index, state, attempts) list, the
run's state and result, and per task run the sequence of (event kind, from, to) and of
attempt outcomes.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

import pytest

from orchestrion.store import open_store
from orchestrion.store.stores import Stores
from tests.fault.conftest import Cluster, scale

TASKS = scale(200, 2_000)

FLOW = '''"""Deterministic: retries, skips and a gather, whatever the timing."""
from typing import Any

from orchestrion.spec.python import task, workflow


@task(retries=0)
def items(n: int) -> list[int]:
    return list(range(n))


@task(retries=1, backoff=0)
def step(i: int, ctx: Any) -> int:
    if i % 7 == 0 and ctx.attempt == 1:
        raise RuntimeError(f"flaky {i}")
    return -i if i % 11 == 0 else i


@task(retries=0)
def total(values: list[int]) -> int:
    return sum(values)


@task(retries=0, when="tasks.total < 0")
def negative(t: int) -> str:
    return "negative"


@task(retries=0)
def report(t: int) -> dict[str, Any]:
    return {"total": t}


@workflow
def fault_same(n: int = 10):
    t = total(step.map(items(n)))
    negative(t)
    report(t)
'''


def _history(store: Stores, run_id: str) -> dict[str, Any]:
    run = store.reads.get_run(run_id)
    task_runs = store.reads.list_task_runs(run_id)
    names = {tr.id: (tr.task_name, tr.map_index) for tr in task_runs}
    events: dict[Any, list[tuple[str, str | None, str | None]]] = collections.defaultdict(list)
    after = 0
    while True:
        batch = store.reads.list_events(run_id, after_id=after, limit=1000)
        if not batch:
            break
        for e in batch:
            owner = names.get(e.task_run_id, "run") if e.task_run_id is not None else "run"
            events[owner].append((e.kind, e.from_state, e.to_state))
        after = batch[-1].id
    attempts: dict[Any, list[str | None]] = collections.defaultdict(list)
    for a in store.reads.list_attempts(run_id):
        attempts[names[a.task_run_id]].append(a.outcome)
    return {
        "run": (run.workflow, run.state.value, run.result, run.error),
        "task_runs": sorted(
            (tr.task_name, tr.map_index, tr.kind, tr.state.value, tr.attempts, repr(tr.result))
            for tr in task_runs
        ),
        "events": dict(events),
        "attempts": dict(attempts),
    }


def _run_on(cluster: Cluster, url: str) -> dict[str, Any]:
    (cluster.flows / "same.py").write_text(FLOW)
    cluster.deploy()
    for i in range(2):
        cluster.worker(f"w{i}", concurrency=8)
    run_id = cluster.trigger("fault_same", {"n": TASKS})
    store = open_store(url)
    try:
        deadline = time.monotonic() + 60 + TASKS * 0.05
        while not store.reads.get_run(run_id).state.finished:
            if time.monotonic() > deadline:
                pytest.fail(f"run {run_id} did not finish on {url}\n{cluster.report()}")
            dead = [p.name for p in cluster.procs if not p.alive()]
            assert not dead, f"{dead} exited\n{cluster.report()}"
            time.sleep(0.2)
        return _history(store, run_id)
    finally:
        store.close()


def test_sqlite_and_postgres_histories_match(
    pg_db: str, make_cluster: Callable[..., Cluster]
) -> None:
    lite = make_cluster("", "sqlite")
    lite.db = f"sqlite:///{lite.root / 'orchestrion.db'}"
    started = time.monotonic()
    on_sqlite = _run_on(lite, lite.db)
    mid = time.monotonic()
    on_postgres = _run_on(make_cluster(pg_db, "postgres"), pg_db)
    print(
        f"{TASKS} tasks: SQLite {mid - started:.1f} s, PostgreSQL"
        f" {time.monotonic() - mid:.1f} s (2 worker processes each, incl. start-up)"
    )
    assert on_sqlite["run"][1] == "succeeded", on_sqlite["run"]
    expected_total = sum(-i if i % 11 == 0 else i for i in range(TASKS))
    assert on_sqlite["run"][2] == {"report": {"total": expected_total}}
    assert on_sqlite["run"] == on_postgres["run"]
    assert on_sqlite["task_runs"] == on_postgres["task_runs"]
    assert on_sqlite["attempts"] == on_postgres["attempts"]
    for owner, kinds in on_sqlite["events"].items():
        assert kinds == on_postgres["events"].get(owner), owner
    assert on_sqlite["events"].keys() == on_postgres["events"].keys()
    states = collections.Counter(t[3] for t in on_sqlite["task_runs"])
    print(f"identical histories: {dict(states)}; total {expected_total}")
    assert states["succeeded"] >= TASKS

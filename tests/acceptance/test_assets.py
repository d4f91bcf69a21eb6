"""Data assets across real processes: an ``orchestrion worker`` and two ``orchestrion
scheduler`` processes on one database (a SQLite file, or a PostgreSQL schema with
``ORCHESTRION_TEST_DATABASE=postgres``). Producers' successes record asset events with
their partition and metadata; a consumer with ``all_updated`` on two assets starts once
both producers ran for a day, not after one, with the day in its params; two schedulers
racing over the same events (leases off) start one run between them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.states import RunState
from orchestrion.store.records import RunFilter
from tests.acceptance.test_server import wait_for
from tests.helpers import database_url_for, db_arg
from tests.processes import Proc

_PATIENCE = 90.0  # hang guard, never a timing assertion

FLOWS = """
from orchestrion import asset, asset_metadata, assets_updated
from orchestrion.spec.python import task, workflow


@task(produces=[asset("warehouse.sales", partition="{{ params.day }}")])
def load_sales(day: str) -> dict:
    return {"day": day, **asset_metadata(rows=3)}


@task(produces=[asset("warehouse.refunds", partition="{{ params.day }}")])
def load_refunds(day: str) -> str:
    return day


@task(
    consumes=["warehouse.sales", "warehouse.refunds"],
    produces=[asset("warehouse.mart", partition="{{ params.day }}")],
)
def build_mart(day: str) -> str:
    return "mart " + day


@workflow
def sales(day: str = "none"):
    load_sales(day)


@workflow
def refunds(day: str = "none"):
    load_refunds(day)


@workflow(
    triggers=[
        assets_updated(["warehouse.sales", "warehouse.refunds"], params={"day": "{{ partition }}"})
    ]
)
def mart(day: str = "none"):
    build_mart(day)
"""


class Cluster:
    def __init__(self, root: Path) -> None:
        self.flows = root / "flows"
        self.flows.mkdir()
        (self.flows / "warehouse.py").write_text(FLOWS)
        work, self.logs = root / "work", root / "logs"
        work.mkdir()
        self.logs.mkdir()
        url = database_url_for(root / "shared.db")
        self.app = App(Settings(database_url=url)).open()
        self.app.workflows.load(self.flows / "warehouse.py")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRION_")}
        env.update(
            PYTHONUNBUFFERED="1", ORCHESTRION_HEARTBEAT_SECONDS="0.5", ORCHESTRION_DEV_MODE="1"
        )
        db = db_arg(root / "shared.db")
        self.procs = [
            Proc("worker", ["worker", "--workflows", str(self.flows), "--db", db], work, env,
                 self.logs),
            Proc("scheduler-a", ["scheduler", "--db", db], work, env, self.logs),
            Proc("scheduler-b", ["scheduler", "--db", db], work, env, self.logs),
        ]  # fmt: skip

    def report(self) -> str:
        return "\n".join(
            f"===== {p.name} (exit {p.popen.poll()})\n{p.output()[-3000:]}" for p in self.procs
        )

    def run(self, workflow: str, day: str) -> None:
        run = self.app.runs.trigger(workflow, {"day": day})
        wait_for(
            f"{workflow} to finish",
            lambda: self.app.runs.get_run(run.id).state.finished,
            _PATIENCE,
            self.report,
        )
        assert self.app.runs.get_run(run.id).state is RunState.SUCCEEDED, self.report()

    def marts(self) -> list[dict[str, object]]:
        return [r.params for r in self.app.runs.list_runs(RunFilter(workflow="mart"))]

    def close(self) -> None:
        for proc in self.procs:
            proc.kill_group()
        self.app.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


def test_all_updated_starts_once_per_partition_after_both_producers(cluster: Cluster) -> None:
    app = cluster.app
    trigger_key = "mart/assets:all_updated:warehouse.refunds,warehouse.sales"
    # The trigger's history starts when a scheduler first sees it: wait for that.
    wait_for(
        "a scheduler to see the asset trigger",
        lambda: app.store.triggers.get_cursor(f"assets:{trigger_key}") is not None,
        _PATIENCE,
        cluster.report,
    )
    cluster.run("sales", "2026-12-01")
    (event,) = app.store.assets.asset_events("default", "warehouse.sales")
    assert (event.partition, event.workflow, event.task_name) == (
        "2026-12-01",
        "sales",
        "load_sales",
    )
    assert event.metadata == {"rows": 3} and event.attempt == 1
    run = app.runs.get_run(event.run_id)
    assert run.workflow == "sales"
    # The stored result lost the metadata key.
    (load,) = app.runs.task_runs(run.id)
    assert load.result == {"day": "2026-12-01"}

    # One producer is not enough: a scheduler pass after the event starts nothing.
    probe = app.runtime.scheduler("probe", use_leases=False)
    assert probe.tick().asset_runs == []
    assert cluster.marts() == []

    cluster.run("refunds", "2026-12-02")  # another day: still nothing for either
    assert probe.tick().asset_runs == []
    cluster.run("refunds", "2026-12-01")
    wait_for("the mart run", lambda: len(cluster.marts()) == 1, _PATIENCE, cluster.report)
    assert cluster.marts() == [{"day": "2026-12-01"}]
    assert probe.tick().asset_runs == []  # consumed: nothing fires twice
    (mart,) = app.runs.list_runs(RunFilter(workflow="mart"))
    assert mart.trigger.startswith("assets:mart/assets:")
    wait_for(
        "the mart", lambda: app.runs.get_run(mart.id).state.finished, _PATIENCE, cluster.report
    )
    (made,) = app.store.assets.asset_events("default", "warehouse.mart")
    assert (made.partition, made.run_id) == ("2026-12-01", mart.id)

    # Two schedulers without leases race over the same events: one run between them.
    for proc in cluster.procs[1:]:
        proc.kill_group()  # the race below is between these two only
    cluster.run("sales", "2026-12-03")
    cluster.run("refunds", "2026-12-03")
    racers = [app.runtime.scheduler(f"racer-{i}", use_leases=False) for i in range(2)]
    gate = threading.Barrier(2)
    started: list[list[str]] = [[], []]

    def race(i: int) -> None:
        gate.wait()
        started[i] = racers[i].tick().asset_runs

    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(started[0]) + len(started[1]) == 1
    assert sorted(str(p["day"]) for p in cluster.marts()) == ["2026-12-01", "2026-12-03"]

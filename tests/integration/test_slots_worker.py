"""Slots end to end with real `Worker`s: two workers of four threads each never run more
than a key's limit or a queue's limit at once, and every run still finishes."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from orchestrion.app import App
from orchestrion.cli.main import main
from orchestrion.spec.model import ParamSpec
from orchestrion.states import RunState
from orchestrion.worker.loop import Worker, WorkerSettings
from tests.helpers import database_url_for, make_app, py, wf

_PATIENCE = 60.0  # guards against a hang; never a timing assertion


class Gauge:
    """How many calls run at once, per label, and the most seen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: Counter[str] = Counter()
        self.most: Counter[str] = Counter()

    def call(self, label: str) -> None:
        with self.lock:
            self.now[label] += 1
            self.most[label] = max(self.most[label], self.now[label])
        time.sleep(0.01)
        with self.lock:
            self.now[label] -= 1


def _run_all(app: App, runs: list[str]) -> None:
    workers = [
        Worker(app.store.runs, app.store.workflows, app.store.notifier, app.code,
               WorkerSettings(concurrency=4, worker_id=f"w{i}", queues=("default", "narrow")))
        for i in range(2)
    ]  # fmt: skip
    for w in workers:
        w.start()
    deadline = time.monotonic() + _PATIENCE
    try:
        while time.monotonic() < deadline and not all(
            app.store.reads.get_run(r).state.finished for r in runs
        ):
            app.store.notifier.wait_for_change(0.05)
    finally:
        for w in workers:
            w.stop()
    assert [app.store.reads.get_run(r).state for r in runs] == [RunState.SUCCEEDED] * len(runs)


def test_a_key_limit_holds_across_runs_and_workers(tmp_path: Path) -> None:
    gauge = Gauge()
    with make_app(tmp_path) as app:
        app.code.add({"t:sync": lambda customer: gauge.call(customer)})
        spec = wf(
            "per_customer",
            *(
                py(f"sync{i}", ref="sync", inputs={"customer": "params.customer"},
                   concurrency_key="c-{{ params.customer }}", key_limit=2)
                for i in range(4)
            ),
            params={"customer": ParamSpec(required=True)},
        )  # fmt: skip
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        runs = [app.runs.trigger("per_customer", {"customer": c}).id for c in "aabbab"]
        _run_all(app, runs)
    assert gauge.most["a"] <= 2 and gauge.most["b"] <= 2


def test_a_queue_limit_holds_across_workers(tmp_path: Path) -> None:
    gauge = Gauge()
    with make_app(tmp_path) as app:
        app.code.add({"t:narrow": lambda: gauge.call("narrow")})
        spec = wf("wide", *(py(f"n{i}", ref="narrow", queue="narrow") for i in range(12)))
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        app.queues.set_queue_limit("narrow", 3)
        runs = [app.runs.trigger("wide").id for _ in range(2)]
        _run_all(app, runs)
    assert 1 <= gauge.most["narrow"] <= 3


def test_queues_commands(tmp_path: Path) -> None:
    db = ["--db", database_url_for(tmp_path / "q.db")]
    runner = CliRunner()
    assert runner.invoke(main, ["queues", "set-limit", "gpu", "2", *db]).exit_code == 0
    assert runner.invoke(main, ["queues", "set-limit", "io", "5", *db]).exit_code == 0
    listed = runner.invoke(main, ["queues", "list", *db, "-o", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["queue"], r["max_running"], r["running"]) for r in rows] == [
        ("gpu", 2, 0),
        ("io", 5, 0),
    ]
    assert runner.invoke(main, ["queues", "clear-limit", "gpu", *db]).exit_code == 0
    missing = runner.invoke(main, ["queues", "clear-limit", "gpu", *db])
    assert missing.exit_code == 2 and "has no limit" in missing.output
    assert runner.invoke(main, ["queues", "set-limit", "io", "0", *db]).exit_code == 2
    assert runner.invoke(main, ["queues", "set-limit", "bad name", "1", *db]).exit_code == 2
    table = runner.invoke(main, ["queues", "list", *db])
    assert "io" in table.output and "gpu" not in table.output

"""Routing end to end with real `Worker`s: a task that requires a label runs on the worker
that has it, never on one without; a local `orchestrion run` runs it anyway. Also the
wake-up that lands between a worker's claim and its wait is not lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from orchestrion.states import RunState
from orchestrion.worker.loop import Worker, WorkerSettings
from tests.helpers import make_app, py, wf

_PATIENCE = 60.0  # guards against a hang; never a timing assertion


def test_a_labelled_task_runs_only_on_a_worker_with_the_label(tmp_path: Path) -> None:
    ran_on: dict[str, str] = {}
    with make_app(tmp_path) as app:
        for name in ("prep", "train", "report"):
            app.code.add({f"t:{name}": lambda name=name: ran_on.setdefault(name, _who())})
        spec = wf(
            "routed",
            py("prep"),
            py("train", "prep", requires={"gpu": "a100"}),
            py("report", "train"),
        )
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        plain = Worker(
            app.store.runs,
            app.store.workflows,
            app.store.notifier,
            app.code,
            WorkerSettings(concurrency=2, worker_id="plain"),
        )
        gpu = Worker(
            app.store.runs,
            app.store.workflows,
            app.store.notifier,
            app.code,
            WorkerSettings(concurrency=2, worker_id="gpu", labels={"gpu": "a100", "x": "y"}),
        )
        plain.start()
        run = app.runs.trigger("routed")
        deadline = time.monotonic() + _PATIENCE
        while "prep" not in ran_on and time.monotonic() < deadline:
            app.store.notifier.wait_for_change(0.05)
        # the plain worker ran "prep" and cannot take "train"
        assert app.store.runs.next_ready_at(("default",), {}) is None
        assert not app.store.reads.get_run(run.id).state.finished
        gpu.start()
        while not app.store.reads.get_run(run.id).state.finished and time.monotonic() < deadline:
            app.store.notifier.wait_for_change(0.05)
        plain.stop()
        gpu.stop()
        assert app.store.reads.get_run(run.id).state is RunState.SUCCEEDED
        attempts = {a.task_run_id: a.worker for a in app.store.reads.list_attempts(run.id)}
        workers = {t.task_name: attempts[t.id] for t in app.store.reads.list_task_runs(run.id)}
        assert workers["train"] == "gpu"


def test_a_local_run_runs_tasks_whatever_they_require(tmp_path: Path) -> None:
    with make_app(tmp_path) as app:
        app.code.add({"t:train": lambda: 1})
        spec = wf("local", py("train", requires={"gpu": "a100"}))
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        run = app.runs.trigger("local")
        assert app.runtime.run_until_done(run.id).state is RunState.SUCCEEDED


def test_a_wake_up_between_a_claim_and_the_wait_is_not_lost(tmp_path: Path) -> None:
    with make_app(tmp_path) as app:
        store = app.store

        def claim_then_wait() -> None:
            assert (
                store.runs.claim(worker_id="w", queues=("x",), limit=1, lease_seconds=5, now=0)
                == []
            )
            store.notifier.wake()  # lands after the claim began, before this thread waits
            store.notifier.wait_for_change(10 * _PATIENCE)

        waiter = threading.Thread(target=claim_then_wait, daemon=True)
        waiter.start()
        waiter.join(_PATIENCE)
        assert not waiter.is_alive()


def _who() -> str:
    return threading.current_thread().name

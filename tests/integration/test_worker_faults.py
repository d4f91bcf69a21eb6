"""A worker keeps a finished attempt's outcome through a database outage and reports it
once the database answers again (fault injected into a real SQLite store)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrion.errors import StoreError
from orchestrion.spec.model import PythonAction, TaskSpec, WorkflowSpec
from orchestrion.store.base import Claim, FinishResult, Outcome
from orchestrion.store.sqlite import SqliteStore
from orchestrion.worker.code import CodeRegistry
from orchestrion.worker.loop import Worker, WorkerSettings


class FlakyStore(SqliteStore):
    """A real store whose `finish` fails the first `failures` times, as during an outage."""

    def __init__(self, url: str, failures: int) -> None:
        super().__init__(url)
        self.failures = failures
        self.calls = 0

    def finish(self, outcomes: Sequence[Outcome], *, now: float) -> FinishResult:
        self._maybe_fail()
        return super().finish(outcomes, now=now)

    def finish_and_claim(
        self, outcomes: Sequence[Outcome], **kw: Any
    ) -> tuple[FinishResult, list[Claim]]:
        self._maybe_fail()  # the worker reports through this verb
        return super().finish_and_claim(outcomes, **kw)

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreError("database error: connection refused (injected)")


def work() -> str:
    return "done"


def test_outcome_survives_a_finish_outage(tmp_path: Path) -> None:
    store = FlakyStore(f"sqlite:///{tmp_path}/flaky.db", failures=3)
    code = CodeRegistry()
    code.add({"t:work": work})
    spec = WorkflowSpec(name="w", tasks=(TaskSpec(name="a", action=PythonAction(ref="t:work")),))
    store.register_workflow(spec, source=None, now=time.time())
    run = store.create_run(spec, {}, now=time.time())
    worker = Worker(store, code, WorkerSettings(concurrency=1, heartbeat_every=0.2))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not store.get_run(run.id).state.finished:
            assert time.monotonic() < deadline, "run did not finish"
            time.sleep(0.02)
    finally:
        worker.stop(grace=2)
    final: Any = store.get_run(run.id)
    assert final.state.value == "succeeded" and final.result == {"a": "done"}
    assert store.calls == 4  # three refused reports, then the one that landed
    attempts = store.list_attempts(run.id)
    assert [a.outcome for a in attempts] == ["succeeded"]  # reported once, not re-run
    store.close()

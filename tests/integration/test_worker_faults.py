"""A worker keeps a finished attempt's outcome through a database outage and reports it
once the database answers again (fault injected into a real store: SQLite, or PostgreSQL
with ``ORCHESTRION_TEST_DATABASE=postgres``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrion.errors import StoreError
from orchestrion.spec.model import PythonAction, TaskSpec, WorkflowSpec
from orchestrion.store.base import Claim, FinishResult, Outcome
from orchestrion.store.postgres import PostgresStore
from orchestrion.store.sqlite import SqliteStore
from orchestrion.worker.code import CodeRegistry
from orchestrion.worker.loop import Worker, WorkerSettings
from tests.helpers import database_url_for


class Flaky:
    """Mixed into a real store: its `finish` fails the first `failures` times, as during an
    outage."""

    failures = 3
    calls = 0

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


class FlakySqlite(Flaky, SqliteStore):
    pass


class FlakyPostgres(Flaky, PostgresStore):
    pass


def work() -> str:
    return "done"


def test_outcome_survives_a_finish_outage(tmp_path: Path) -> None:
    url = database_url_for(tmp_path / "flaky.db")
    store = FlakyPostgres(url) if url.startswith("postgres") else FlakySqlite(url)
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

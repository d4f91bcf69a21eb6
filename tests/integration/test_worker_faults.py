"""A worker keeps a finished attempt's outcome through a database outage and reports it
once the database answers again, and a heartbeat that crosses a retry does not cancel the
retry (faults injected into a real store: SQLite, or PostgreSQL with
``ORCHESTRION_TEST_DATABASE=postgres``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from orchestrion.clock import SystemClock
from orchestrion.errors import StoreError
from orchestrion.spec.model import PythonAction, RetryPolicy, TaskSpec, WorkflowSpec
from orchestrion.store import open_store
from orchestrion.store.postgres import PostgresDatabase, PostgresRuns
from orchestrion.store.records import Claim, FinishResult, Outcome
from orchestrion.store.sqlite import SqliteDatabase, SqliteRuns
from orchestrion.store.stores import Stores
from orchestrion.triggers.maintenance import Maintenance
from orchestrion.worker.code import CodeRegistry
from orchestrion.worker.context import TaskContext
from orchestrion.worker.loop import Worker, WorkerSettings
from tests.helpers import database_url_for

if TYPE_CHECKING:
    from orchestrion.store.sql.runs import SqlRuns

    # The mixins below are only ever mixed into a real store's runs role: typed as one,
    # their super() calls reach its verbs.
    _RunsBase = SqlRuns
else:
    _RunsBase = object


def _opened(url: str, on_sqlite: type[SqliteRuns], on_postgres: type[PostgresRuns]) -> Stores:
    """A real store on `url` whose runs role is its dialect's, with a fault mixed in."""
    store = open_store(url)
    db = store.backend
    if isinstance(db, PostgresDatabase):
        store.runs = on_postgres(db)
    else:
        store.runs = on_sqlite(cast(SqliteDatabase, db))
    return store


class Flaky(_RunsBase):
    """Mixed into a real store's runs: its `finish` fails the first `failures` times, as during an
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


class FlakySqlite(Flaky, SqliteRuns):
    pass


class FlakyPostgres(Flaky, PostgresRuns):
    pass


def work() -> str:
    return "done"


def test_outcome_survives_a_finish_outage(tmp_path: Path) -> None:
    url = database_url_for(tmp_path / "flaky.db")
    store = _opened(url, FlakySqlite, FlakyPostgres)
    code = CodeRegistry()
    code.add({"t:work": work})
    spec = WorkflowSpec(name="w", tasks=(TaskSpec(name="a", action=PythonAction(ref="t:work")),))
    store.workflows.register_workflow(spec, source=None, now=time.time())
    run = store.runs.create_run(spec, {}, now=time.time())
    worker = Worker(
        store.runs,
        store.workflows,
        store.notifier,
        code,
        WorkerSettings(concurrency=1, heartbeat_every=0.2),
    )
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not store.reads.get_run(run.id).state.finished:
            assert time.monotonic() < deadline, "run did not finish"
            time.sleep(0.02)
    finally:
        worker.stop(grace=2)
    final: Any = store.reads.get_run(run.id)
    assert final.state.value == "succeeded" and final.result == {"a": "done"}
    assert cast(Flaky, store.runs).calls == 4  # three refused reports, then the one that landed
    attempts = store.reads.list_attempts(run.id)
    assert [a.outcome for a in attempts] == ["succeeded"]  # reported once, not re-run
    store.close()


_PATIENCE = 30.0  # hang guard only
#: The worker's heartbeat holds attempt 1's lease; the retry (attempt 2) runs; a later
#: heartbeat came, so the crossing one's answer was acted on.
HELD, RETRIED, LATER = threading.Event(), threading.Event(), threading.Event()


class CrossingHeartbeat(_RunsBase):
    """Mixed into a real store's runs: its heartbeat, handed attempt 1's lease, answers only
    once the retry of that task run is claimed: the heartbeat's snapshot of leases is older
    than the report it crosses, so it reports the (task run, epoch 1) lease as gone."""

    def heartbeat(
        self,
        *,
        worker_id: str,
        leases: Sequence[tuple[int, int]],
        lease_seconds: float,
        now: float,
    ) -> list[int]:
        if HELD.is_set():
            LATER.set()
        elif any(epoch == 1 for _, epoch in leases):
            HELD.set()
            RETRIED.wait(_PATIENCE)
        # Each dialect has its own heartbeat; SqlRuns, the type of super() here, declares it.
        return super().heartbeat(  # type: ignore[safe-super]
            worker_id=worker_id, leases=leases, lease_seconds=lease_seconds, now=now
        )


class CrossingSqlite(CrossingHeartbeat, SqliteRuns):
    pass


class CrossingPostgres(CrossingHeartbeat, PostgresRuns):
    pass


def step(ctx: TaskContext) -> bool:
    """Attempt 1 fails while the heartbeat holds its lease; attempt 2 reports whether it
    was asked to stop once a later heartbeat shows the crossing one was handled."""
    if ctx.attempt == 1:
        HELD.wait(_PATIENCE)
        raise RuntimeError("first attempt fails")
    RETRIED.set()
    LATER.wait(_PATIENCE)
    return ctx.should_cancel()


def test_a_lost_lease_of_an_older_epoch_does_not_cancel_the_retry(tmp_path: Path) -> None:
    for event in (HELD, RETRIED, LATER):
        event.clear()
    url = database_url_for(tmp_path / "crossing.db")
    store = _opened(url, CrossingSqlite, CrossingPostgres)
    code = CodeRegistry()
    code.add({"t:step": step})
    task = TaskSpec(
        name="a", action=PythonAction(ref="t:step"), retry=RetryPolicy(retries=1, backoff=0)
    )
    spec = WorkflowSpec(name="w", tasks=(task,))
    store.workflows.register_workflow(spec, source=None, now=time.time())
    run = store.runs.create_run(spec, {}, now=time.time())
    worker = Worker(
        store.runs,
        store.workflows,
        store.notifier,
        code,
        WorkerSettings(concurrency=1, heartbeat_every=0.05),
    )
    worker.start()
    try:
        deadline = time.monotonic() + _PATIENCE
        while not store.reads.get_run(run.id).state.finished:
            assert time.monotonic() < deadline, "run did not finish"
            time.sleep(0.02)
    finally:
        worker.stop(grace=2)
    final: Any = store.reads.get_run(run.id)
    assert LATER.is_set()
    assert final.state.value == "succeeded" and final.result == {"a": False}
    assert [a.outcome for a in store.reads.list_attempts(run.id)] == ["failed", "succeeded"]
    store.close()


#: Set once the task runs; set by the test to let the task end after the worker stopped.
STARTED, RELEASE = threading.Event(), threading.Event()


class SlowExpiry(_RunsBase):
    """Mixed into a real store's runs: expiring a worker's leases takes long enough for several
    heartbeat periods to pass before the reap that follows it."""

    def expire_worker(self, worker_id: str, *, now: float) -> int:
        count: int = super().expire_worker(worker_id, now=now)
        time.sleep(0.5)  # ten heartbeat periods of the worker below
        return count


class SlowExpirySqlite(SlowExpiry, SqliteRuns):
    pass


class SlowExpiryPostgres(SlowExpiry, PostgresRuns):
    pass


def stubborn() -> str:
    STARTED.set()
    RELEASE.wait(_PATIENCE)  # ignores the stop, as a task may
    return "late"


def test_a_stopped_worker_releases_its_attempt_as_lost_whatever_its_heartbeat(
    tmp_path: Path,
) -> None:
    """`Worker.stop` past its grace expires its leases and reaps them: no heartbeat may land
    in between, or it would extend the lease again and the attempt, asked to stop, would be
    recorded as the task's outcome instead of lost."""
    STARTED.clear()
    RELEASE.clear()
    url = database_url_for(tmp_path / "expiry.db")
    store = _opened(url, SlowExpirySqlite, SlowExpiryPostgres)
    code = CodeRegistry()
    code.add({"t:stubborn": stubborn})
    spec = WorkflowSpec(
        name="w", tasks=(TaskSpec(name="a", action=PythonAction(ref="t:stubborn")),)
    )
    store.workflows.register_workflow(spec, source=None, now=time.time())
    run = store.runs.create_run(spec, {}, now=time.time())
    worker = Worker(
        store.runs,
        store.workflows,
        store.notifier,
        code,
        WorkerSettings(concurrency=1, heartbeat_every=0.05),
    )
    worker.start()
    try:
        assert STARTED.wait(_PATIENCE)
        worker.stop(grace=0.1)
    finally:
        RELEASE.set()
    deadline = time.monotonic() + _PATIENCE
    while worker.busy:  # its late report (superseded) lands before the store closes
        assert time.monotonic() < deadline, "the stubborn task did not end"
        time.sleep(0.02)
    attempts = store.reads.list_attempts(run.id)
    assert [a.outcome for a in attempts] == ["lost"]
    assert store.reads.list_task_runs(run.id)[0].state.value != "succeeded"
    store.close()


def test_maintenance_outlives_a_failing_store(tmp_path: Path) -> None:
    """A store that raises on every call (closed under it) must not end the thread."""
    store = open_store(database_url_for(tmp_path / "db.sqlite"))
    sweeper = Maintenance(store.runs, SystemClock(), every=0.01)
    store.close()
    sweeper.start()
    time.sleep(0.3)
    try:
        assert sweeper._thread.is_alive()
    finally:
        sweeper.stop()

"""A crash cannot leak a slot, on every backend: a real worker process holding the only slot
of a limited queue is SIGKILLed; another worker gets the slot once the dead worker's lease
has expired (and not before), with no reaper, finish or cleanup in between."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrion.spec.model import ShellAction, TaskSpec, WorkflowSpec
from orchestrion.store import open_store
from orchestrion.store.records import Claim
from orchestrion.store.stores import Stores
from tests.contract.conftest import sql_db
from tests.processes import Proc

LEASE = 2.0
#: Generous bounds on waiting for a process to do something; never asserted as speed.
PATIENCE = 60.0


@pytest.fixture
def url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'slots.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(url: str) -> Iterator[Stores]:
    opened = open_store(url)
    yield opened
    opened.close()


def _sleeper(name: str) -> TaskSpec:
    return TaskSpec(name=name, action=ShellAction(argv=("sleep", "20")), queue="slots")


def _wait_for(what: str, check: Callable[[], bool], worker: Proc) -> None:
    deadline = time.monotonic() + PATIENCE
    while not check():
        if time.monotonic() > deadline or not worker.alive():
            pytest.fail(f"{what} did not happen\n{worker.output()}")
        time.sleep(0.05)


def test_a_killed_workers_slot_frees_itself_when_its_lease_expires(
    store: Stores, url: str, tmp_path: Path
) -> None:
    store.runs.set_queue_limit("slots", 1, now=time.time())
    spec = WorkflowSpec(name="slot_kill", tasks=(_sleeper("a"), _sleeper("b")))
    store.workflows.register_workflow(spec, source=None, now=time.time())
    run_id = store.runs.create_run(spec, {}, now=time.time()).id
    env = {
        **os.environ,
        "ORCHESTRION_LEASE_SECONDS": str(LEASE),
        "ORCHESTRION_HEARTBEAT_SECONDS": "0.3",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("ORCHESTRION_DATABASE_URL", None)
    worker = Proc(
        "worker",
        ["worker", "--queue", "slots", "--concurrency", "4", "--db", url],
        tmp_path,
        env,
        tmp_path,
    )
    try:

        def holding() -> bool:
            return any(t.state.value == "running" for t in store.reads.list_task_runs(run_id))

        _wait_for("the worker's claim", holding, worker)
        (held,) = [t for t in store.reads.list_task_runs(run_id) if t.state.value == "running"]
        # The worker asked for 4 but the queue allows 1; and the slot is taken for others.
        assert _rescue(store) == []
        worker.kill_group()
    finally:
        worker.kill_group()
    (expires,) = sql_db(store).read(  # the dead worker's last lease: no heartbeat extends it now
        "SELECT lease_expires_at AS t FROM task_runs WHERE id = ?", (held.id,)
    )
    deadline = time.monotonic() + PATIENCE
    while True:
        asked_at = time.time()
        got = _rescue(store, asked_at)
        if got:
            break
        assert time.monotonic() < deadline, "the slot never came free"
        time.sleep(0.05)
    (claim,) = got
    assert claim.task_name != held.task_name  # the other task: the dead one is not reaped
    assert asked_at >= float(expires["t"])  # not before the dead worker's lease ran out
    states = {t.task_name: t.state.value for t in store.reads.list_task_runs(run_id)}
    assert states == {"a": "running", "b": "running"}
    assert [q.running for q in store.reads.queue_limits(now=asked_at)] == [1]


def _rescue(store: Stores, now: float | None = None) -> list[Claim]:
    return store.runs.claim(
        worker_id="rescuer",
        queues=("slots",),
        limit=4,
        lease_seconds=60.0,
        now=time.time() if now is None else now,
    )

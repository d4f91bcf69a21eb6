"""The Dask and Ray adapters, driven by a real `Worker` on a real store.

TEST DOUBLES OF AN EXTERNAL CLUSTER: dask and ray are not installed here and no cluster can
be reached, so `FakeDaskClient` and `FakeRay` implement the few calls the adapters make
(``Client.submit``/``Future.result``/``Future.cancel``; ``ray.remote``/``wait``/``get``/
``cancel``) with threads of this process, following the documented semantics (a result
timeout raises the builtin `TimeoutError`; ``ray.wait`` returns ready and not-ready refs).
What runs inside them is the real `run_invocation`. The process executor, which does run
here, is tested for real in test_process_executor.py.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrion.app import App
from orchestrion.errors import OrchestrionError
from orchestrion.spec.model import PythonAction, RetryPolicy, TaskSpec, WorkflowSpec
from orchestrion.states import RunState
from orchestrion.worker.cluster_executors import DaskExecutor, RayExecutor
from orchestrion.worker.executors import Executor, executor_from_name
from orchestrion.worker.loop import Worker, WorkerSettings
from orchestrion.worker.process_executor import ProcessExecutor
from tests.helpers import make_app

_PATIENCE = 60.0  # guards against a hang; never a timing assertion
_HERE = __name__

#: Set to end the fake cluster's hung calls (a real cluster would kill or drop them).
RELEASE = threading.Event()


class Flaky(Exception):
    """A task's own error type, which the outcome must name."""


def double(x: int) -> int:
    print(f"doubling {x}")
    return 2 * x


def explode() -> None:
    raise Flaky("boom")


def hang() -> None:
    RELEASE.wait(_PATIENCE)


# ---------------------------------------------------------------------- test doubles


class FakeDaskFuture:
    def __init__(self, future: concurrent.futures.Future[Any]) -> None:
        self._future = future
        self.canceled = False

    def result(self, timeout: float | None = None) -> Any:
        return self._future.result(timeout)  # raises the builtin TimeoutError, like dask

    def done(self) -> bool:
        return self._future.done()

    def cancel(self) -> None:
        self.canceled = True  # Dask forgets the future; the call itself runs on


class FakeDaskClient:
    """TEST DOUBLE of ``dask.distributed.Client`` (the calls DaskExecutor makes)."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(4)
        self.submitted: list[tuple[Callable[..., Any], bool]] = []
        self.futures: list[FakeDaskFuture] = []
        self.closed = False

    def submit(self, func: Callable[..., Any], *args: Any, pure: bool = True) -> FakeDaskFuture:
        self.submitted.append((func, pure))
        future = FakeDaskFuture(self._pool.submit(func, *args))
        self.futures.append(future)
        return future

    def close(self) -> None:
        self.closed = True
        self._pool.shutdown(wait=False)


class FakeRay:
    """TEST DOUBLE of the ``ray`` module (the calls RayExecutor makes)."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(4)
        self.canceled: list[tuple[object, bool]] = []

    def remote(self, function: Callable[..., Any]) -> Any:
        pool = self._pool

        class Remote:
            def remote(self, *args: Any) -> concurrent.futures.Future[Any]:
                return pool.submit(function, *args)  # the "ObjectRef"

        return Remote()

    def wait(
        self, refs: list[Any], *, num_returns: int = 1, timeout: float | None = None
    ) -> tuple[Sequence[Any], Sequence[Any]]:
        done, pending = concurrent.futures.wait(refs, timeout)
        return list(done), list(pending)

    def get(self, ref: Any) -> Any:
        return ref.result()

    def cancel(self, ref: Any, *, force: bool = False) -> None:
        self.canceled.append((ref, force))
        RELEASE.set()  # force=True kills the Ray worker running it


# ---------------------------------------------------------------------- harness


def _spec(name: str, fn: str, timeout: float | None = None, **inputs: Any) -> WorkflowSpec:
    from orchestrion.spec.model import InputSpec

    task = TaskSpec(
        name="t",
        action=PythonAction(ref=f"{_HERE}:{fn}"),
        inputs={k: InputSpec(value=v) for k, v in inputs.items()},
        timeout=timeout,
        retry=RetryPolicy(),
    )
    return WorkflowSpec(name=name, tasks=(task,))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    RELEASE.clear()
    with make_app(tmp_path) as opened:
        for spec in (
            _spec("dbl", "double", x=21),
            _spec("bad", "explode"),
            _spec("stuck", "hang", timeout=0.5),
        ):
            opened.store.register_workflow(spec, source=None, now=time.time())
        yield opened
    RELEASE.set()


def _run(app: App, executor: Executor, workflow: str) -> Any:
    worker = Worker(
        app.store,
        app.code,
        WorkerSettings(concurrency=2, heartbeat_every=0.2),
        app.clock,
        executor=executor,
    )
    worker.start()
    try:
        run = app.trigger(workflow)
        deadline = time.monotonic() + _PATIENCE
        while not app.get_run(run.id).state.finished:
            assert time.monotonic() < deadline, "run did not finish"
            app.store.wait_for_change(0.05)
    finally:
        worker.stop(grace=2)
    return app.get_run(run.id)


# ---------------------------------------------------------------------- Dask


def test_dask_runs_the_task_and_brings_back_result_and_output(app: App) -> None:
    client = FakeDaskClient()
    run = _run(app, DaskExecutor(client), "dbl")
    assert run.state is RunState.SUCCEEDED and run.result == {"t": 42}
    [(func, pure)] = client.submitted
    assert func.__name__ == "run_invocation" and pure is False  # attempts are never cached
    assert [(log.stream, log.line) for log in app.logs(run.id)] == [("stdout", "doubling 21")]


def test_dask_reports_the_tasks_own_error(app: App) -> None:
    run = _run(app, DaskExecutor(FakeDaskClient()), "bad")
    assert run.state is RunState.FAILED
    [attempt] = app.attempts(run.id)
    assert attempt.error == "Flaky: boom"
    assert attempt.error_type == f"{_HERE}.Flaky"
    assert "explode" in (attempt.traceback or "")


def test_dask_forgets_a_task_past_its_timeout(app: App) -> None:
    client = FakeDaskClient()
    run = _run(app, DaskExecutor(client), "stuck")
    assert run.state is RunState.FAILED
    [attempt] = app.attempts(run.id)
    assert "timed out after 0.5s; its dask run was stopped" in (attempt.error or "")
    assert [f.canceled for f in client.futures] == [True]
    RELEASE.set()


def test_dask_closes_only_a_client_it_made() -> None:
    client = FakeDaskClient()
    DaskExecutor(client).close()
    assert not client.closed
    DaskExecutor(client, owned=True).close()
    assert client.closed


# ---------------------------------------------------------------------- Ray


def test_ray_runs_the_task(app: App) -> None:
    run = _run(app, RayExecutor(FakeRay()), "dbl")
    assert run.state is RunState.SUCCEEDED and run.result == {"t": 42}
    assert [log.line for log in app.logs(run.id)] == ["doubling 21"]


def test_ray_reports_the_tasks_own_error(app: App) -> None:
    run = _run(app, RayExecutor(FakeRay()), "bad")
    [attempt] = app.attempts(run.id)
    assert run.state is RunState.FAILED and attempt.error_type == f"{_HERE}.Flaky"


def test_ray_force_cancels_a_task_past_its_timeout(app: App) -> None:
    ray = FakeRay()
    run = _run(app, RayExecutor(ray), "stuck")
    assert run.state is RunState.FAILED
    assert [force for _, force in ray.canceled] == [True]


# ---------------------------------------------------------------------- choosing


def test_executor_names() -> None:
    assert executor_from_name("thread") is None
    process = executor_from_name("process")
    assert isinstance(process, ProcessExecutor)
    process.close()
    with pytest.raises(OrchestrionError, match="unknown executor 'gpu'"):
        executor_from_name("gpu")
    with pytest.raises(OrchestrionError, match="unknown executor 'dask'"):
        executor_from_name("dask")  # the scheduler's address is needed


@pytest.mark.parametrize("name", ["dask:tcp://127.0.0.1:8786", "ray"], ids=["dask", "ray"])
def test_a_missing_cluster_library_is_a_clear_error(name: str) -> None:
    try:
        __import__(name.partition(":")[0])
    except ImportError:
        pass
    else:
        pytest.skip(f"{name} is installed here")
    with pytest.raises(OrchestrionError, match="installed on the worker"):
        executor_from_name(name)

"""Executors that hand Python tasks to a cluster users already run: Dask or Ray.

Both are thin: the cluster runs `run_invocation` (the same function the process executor's
children run) on one `Invocation` and returns its `Completion`, with the task's captured
output in it (sent to the attempt's log when it comes back, not streamed). The worker still
owns the attempt: its lease, heartbeats, fencing, timeout, retries and report.

What the cluster must offer: orchestrion installed on its workers, and the workflow's code
importable there — either the workflow file at the same path (the invocation names it) or
its module on the cluster workers' ``sys.path``. Declared secrets travel to the cluster with
the invocation (as plain values: they are needed there), so trust the cluster as much as the
worker.

One call per attempt, never more: retries are orchestrion's (counted, backed off, shown in
the run's history), so neither cluster may run an attempt again on its own when the process
running it dies. Ray is told so (``max_retries=0``). Dask's scheduler re-runs the tasks of a
dead worker elsewhere and has no per-task switch, so the call first marks itself started in
a scheduler-side `distributed.Event` (deleted once the attempt is over) and a second start
returns a failure instead of running the code; the attempt then fails as "the Dask cluster
could not run the task", and the task's own retry policy decides.

Stopping: Ray's ``cancel(force=True)`` kills the worker process running the task, like the
process executor. Dask cannot interrupt a task that already runs on a thread of a Dask
worker: ``Future.cancel`` forgets it, the attempt is reported as timed out or canceled at
once, and the cluster finishes the call in the background (its result is dropped, and the
thread stays busy until then).

dask and ray are imported only when such an executor is made (``--executor dask:ADDRESS``,
``--executor ray[:ADDRESS]``); they are the optional extras ``orchestrion[dask]`` and
``orchestrion[ray]``. Both classes take the already-connected client object, so that an
application can pass its own.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from orchestrion.errors import OrchestrionError, TaskError
from orchestrion.worker.context import LogSink
from orchestrion.worker.executors import Completion, Invocation, RemoteFailure, run_invocation

__all__ = ["DaskClient", "DaskExecutor", "RayApi", "RayExecutor", "run_once_on_dask"]


def _import(module: str, package: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OrchestrionError(
            f"this executor needs {package!r} installed on the worker ({exc});"
            f" pip install orchestrion[{extra}]"
        ) from exc


def _completion(value: object) -> Completion:
    if not isinstance(value, Completion):
        raise TaskError(f"the cluster returned {type(value).__name__}, not a task completion")
    return value


# ---------------------------------------------------------------------- Dask


class DaskFuture(Protocol):
    """The part of ``distributed.Future`` used here."""

    def result(self, timeout: float | None = None) -> Any: ...

    def done(self) -> bool: ...

    def cancel(self) -> Any: ...


class DaskClient(Protocol):
    """The part of ``distributed.Client`` used here."""

    def submit(self, func: Callable[..., Any], *args: Any, pure: bool = ...) -> DaskFuture:
        """``Client.submit``: start ``func(*args)`` on the cluster (called with ``pure=False``, so
        that equal calls are never merged into one)."""
        ...

    def close(self) -> Any:
        """``Client.close``: disconnect from the scheduler."""
        ...


class DaskExecutor:
    """Runs Python attempts on a Dask cluster through `client`, each at most once (see the module
    docstring). A client it connected itself is closed by `close`; one passed in belongs to the
    caller."""

    name = "dask"

    def __init__(self, client: DaskClient, *, owned: bool = False) -> None:
        self._client = client
        self._owned = owned

    @classmethod
    def connect(cls, address: str) -> DaskExecutor:
        """Connect to the Dask scheduler at `address` (``tcp://host:8786``)."""
        distributed = _import("dask.distributed", "distributed", "dask")
        return cls(distributed.Client(address), owned=True)

    def submit(self, invocation: Invocation, log: LogSink) -> _DaskExecution:
        """Start `invocation` on the cluster. Its output comes back with the completion, so `log`
        receives nothing while it runs."""
        marker = f"orchestrion-started-{uuid.uuid4().hex}"
        # pure=False: two attempts with equal inputs are two calls, never one cached result.
        future = self._client.submit(run_once_on_dask, invocation, marker, pure=False)
        return _DaskExecution(future, lambda: _forget_marker(self._client, marker))

    def close(self) -> None:
        """Disconnect, if this executor made the connection."""
        if self._owned:
            self._client.close()


def run_once_on_dask(invocation: Invocation, marker: str) -> Completion:
    """`run_invocation` on a Dask worker, unless the scheduler already started this call
    once (on a worker that died since): then a failure, without running the code again."""
    # Through `_import` (typed Any): distributed's Event has no annotations for strict mypy.
    started = _import("distributed", "distributed", "dask").Event(marker)
    if started.is_set():
        return Completion(
            failure=RemoteFailure(
                message="the Dask cluster could not run the task: the Dask worker running it"
                " died, and an attempt never runs twice (orchestrion's retries decide)",
                error_types=("orchestrion.errors.TaskError", "orchestrion.errors.OrchestrionError"),
                traceback="",
            )
        )
    started.set()
    return run_invocation(invocation)


def _forget_marker(client: DaskClient, marker: str) -> None:
    """Drop the call's started-marker from the scheduler (clearing an event deletes it)."""
    distributed = _import("distributed", "distributed", "dask")
    try:
        distributed.Event(marker, client=client).clear()
    except Exception:  # the scheduler is gone: so is the marker
        return


class _DaskExecution:
    def __init__(self, future: DaskFuture, done: Callable[[], None]) -> None:
        self._future = future
        self._done = done
        self._finished = False

    def wait(self, timeout: float) -> Completion | None:
        try:
            value = self._future.result(timeout=timeout)
        except TimeoutError:  # distributed raises the builtin (asyncio's alias) on timeout
            return None
        except Exception as exc:  # run_invocation never raises: the cluster lost the call
            self._finish()
            raise TaskError(f"the Dask cluster could not run the task: {exc}") from exc
        self._finish()
        return _completion(value)

    def cancel(self) -> None:
        if not self._future.done():
            self._future.cancel()
        self._finish()

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._done()


# ---------------------------------------------------------------------- Ray


class RayRemoteFunction(Protocol):
    def remote(self, *args: Any) -> Any: ...


class RayApi(Protocol):
    """The part of the ``ray`` module used here."""

    def remote(self, *, max_retries: int) -> Callable[[Callable[..., Any]], RayRemoteFunction]:
        """``ray.remote``: the decorator that makes `run_invocation` a remote function."""
        ...

    def wait(
        self, refs: list[Any], *, num_returns: int = ..., timeout: float | None = ...
    ) -> tuple[Sequence[Any], Sequence[Any]]:
        """``ray.wait``: split `refs` into the finished and the rest within `timeout`."""
        ...

    def get(self, ref: Any) -> Any:
        """``ray.get``: the value of a finished call (raises what the call raised)."""
        ...

    def cancel(self, ref: Any, *, force: bool = ...) -> None:
        """``ray.cancel``: stop the call; ``force`` kills the process running it."""
        ...


class RayExecutor:
    """Runs Python attempts on a Ray cluster, one remote call each with Ray's own retries off."""

    name = "ray"

    def __init__(self, ray: RayApi) -> None:
        self._ray = ray
        # max_retries=0: Ray re-runs a task whose worker process died (3 times by default);
        # an attempt must run once, and a crash must reach orchestrion's retry policy.
        self._remote = ray.remote(max_retries=0)(run_invocation)

    @classmethod
    def connect(cls, address: str | None) -> RayExecutor:
        """Join the Ray cluster at `address` (``ray://host:10001``, ``auto``), or start a
        local one when None."""
        ray = _import("ray", "ray", "ray")
        ray.init(address=address, ignore_reinit_error=True)
        return cls(ray)

    def submit(self, invocation: Invocation, log: LogSink) -> _RayExecution:
        """Start `invocation` as a Ray task. Its output comes back with the completion, so `log`
        receives nothing while it runs."""
        return _RayExecution(self._ray, self._remote.remote(invocation))

    def close(self) -> None:
        """Nothing to release: the cluster outlives this worker, and the connection ends with its
        process."""
        return None  # the cluster outlives this worker; `ray.init` connections end with it


class _RayExecution:
    def __init__(self, ray: RayApi, ref: Any) -> None:
        self._ray = ray
        self._ref = ref
        self._finished = False

    def wait(self, timeout: float) -> Completion | None:
        ready, _ = self._ray.wait([self._ref], num_returns=1, timeout=timeout)
        if not ready:
            return None
        self._finished = True
        try:
            value = self._ray.get(self._ref)
        except Exception as exc:  # run_invocation never raises: the cluster lost the call
            raise TaskError(f"the Ray cluster could not run the task: {exc}") from exc
        return _completion(value)

    def cancel(self) -> None:
        if not self._finished:
            self._finished = True
            # force: kill the Ray worker process running it; a hung call really stops.
            self._ray.cancel(self._ref, force=True)

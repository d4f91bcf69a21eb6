"""Executors: where the code of a Python task runs, when not in the worker's own threads.

The worker keeps everything that makes an attempt safe — the claim and its lease, heartbeats,
fencing, timeouts, cancellation, retries, masking and reporting. An `Executor` only runs the
code: the runner hands it one `Invocation` (a picklable description of the call: the task's
``module:function`` ref, the workflow file that defines it, its keyword arguments and the
essentials of its `TaskContext`), gets an `Execution` back, waits on it in short slices (so
that it sees cancellation and its deadline) and, when the worker says stop, cancels it.

No executor (the default) means today's path: the call runs in the worker's task thread
with the live `TaskContext`. Executors exist for what a thread cannot do:

* ``process`` (`orchestrion.worker.process_executor`): one child process per attempt, so
  CPU-bound code escapes the GIL and a hung task is killed on timeout or cancel;
* ``dask:ADDRESS`` and ``ray[:ADDRESS]`` (`orchestrion.worker.cluster_executors`): hand the
  call to a cluster that users already run; dask and ray are imported only when chosen.

Only Python actions go to an executor. Shell tasks already run as child processes, HTTP
tasks are I/O, ``when`` conditions are cheap: they stay in the worker.

Inside the executor, `run_invocation` does the call: it loads the workflow file if its
module is not importable there, rebuilds a `TaskContext` (whose ``log`` and captured
stdout/stderr/logging come back as log lines; its cancel event never fires: executors stop
code by killing it or by their cluster's cancel), and returns a `Completion` — the value or
a `RemoteFailure` with the exception's type names, message and traceback — never raising,
so that a task's own exception is never confused with a broken executor.
"""

from __future__ import annotations

import functools
import inspect
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import msgspec

from orchestrion.artifact import Published
from orchestrion.auth.secret_box import Secret
from orchestrion.errors import OrchestrionError, TaskError, TaskTimeout
from orchestrion.spec.bundle import CodeBundle
from orchestrion.types import NO_RICH_REPR, repr_hiding
from orchestrion.worker.context import LogSink, TaskContext
from orchestrion.worker.snapshots import public_names

__all__ = [
    "EXECUTOR_CHOICES",
    "Completion",
    "Execution",
    "Executor",
    "Invocation",
    "RemoteFailure",
    "RemoteTaskFailed",
    "error_message",
    "error_types",
    "run_invocation",
    "source_of",
]

#: What ``orchestrion worker --executor`` accepts (ADDRESS: the cluster's scheduler).
EXECUTOR_CHOICES = (
    "thread, process, dask:ADDRESS, dask://HOST:PORT, ray, ray:ADDRESS or ray://HOST:PORT"
)


class Invocation(msgspec.Struct, frozen=True, kw_only=True):
    """One call of task code, everything in it picklable (it crosses a process boundary)."""

    #: ``module:qualname`` of the task function.
    ref: str
    #: The workflow file that defines `ref`'s module when it was loaded by path (its module
    #: is then named after the file stem); None when the module is importable by name or
    #: the version carries its code.
    source: str | None
    #: The version's code, when it carries it: `ref` is imported from its snapshot, there
    #: (the executor may run on another machine, so the files travel with the call).
    code: CodeBundle | None = None
    kwargs: dict[str, Any]
    #: Seconds; enforced by the worker (it cancels the execution), and also by the
    #: event loop for ``async def`` tasks, like in a worker thread.
    timeout: float | None = None
    run_id: str
    task_run_id: int
    task_name: str
    workflow: str
    attempt: int
    map_index: int | None = None
    idempotency_key: str
    params: Mapping[str, Any] = msgspec.field(default_factory=dict)
    #: Declared secrets, opened by the worker; `Secret` refuses pickling, so plain values
    #: travel (to the executor only) and are wrapped again there.
    secrets: Mapping[str, str] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:
        return repr_hiding(self, "secrets")

    __rich_repr__ = NO_RICH_REPR


class RemoteFailure(msgspec.Struct, frozen=True):
    """A task's exception, reduced to what an outcome records (exceptions of user types
    need not unpickle on the worker)."""

    message: str
    error_types: tuple[str, ...]
    traceback: str
    timed_out: bool = False


class Completion(msgspec.Struct, frozen=True):
    """What an executor hands back for one call: the task's value or its failure, and the output it
    did not stream while the call ran. Never an exception, so that a task's error cannot pass for a
    broken executor."""

    value: Any = None
    failure: RemoteFailure | None = None
    #: ``(stream, line)`` captured during the call that the executor did not stream live.
    logs: tuple[tuple[str, str], ...] = ()
    #: What the call published (`orchestrion.artifact`); the worker stores them, a file's
    #: from its path once the call ended.
    artifacts: tuple[Published, ...] = ()


class RemoteTaskFailed(TaskError):
    """The task's code raised in an executor; carries what the outcome records."""

    def __init__(self, failure: RemoteFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Execution(Protocol):
    """One call running in an executor; the task thread waits on it in short slices, so that it
    notices cancellation and the deadline."""

    def wait(self, timeout: float) -> Completion | None:
        """The completion once the call ended, or None if it still runs after `timeout`
        seconds. Raises `TaskError` if the executor lost the call (a process that died, a
        cluster that dropped it)."""
        ...

    def cancel(self) -> None:
        """Stop the call now (kill it where the executor can); idempotent."""
        ...


class Executor(Protocol):
    """Where a Python task's code runs when not in the worker's own thread. It only runs the code:
    the lease, heartbeats, timeout, retries and report stay with the worker."""

    name: str

    def submit(self, invocation: Invocation, log: LogSink) -> Execution:
        """Start `invocation`; `log` receives lines the executor streams while it runs
        (called from the thread that waits). Raises `TaskError` if it cannot start."""
        ...

    def close(self) -> None:
        """Release the executor's resources; running executions are canceled."""
        ...


def source_of(fn: Callable[..., Any], ref: str) -> str | None:
    """The workflow file to load for `ref` in another process, or None if its module is
    importable by name there (a module loaded by path is named after its file stem)."""
    module_name = ref.partition(":")[0]
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if file is None or "." in module_name or Path(file).stem != module_name:
        return None
    return str(Path(file).resolve())


# ---------------------------------------------------------------------- inside the executor


def run_invocation(invocation: Invocation, log: LogSink | None = None) -> Completion:
    """Do the call where the executor runs it. Output goes to `log` as it is produced, or,
    without one, is collected into the completion."""
    from orchestrion import artifact
    from orchestrion.worker.capture import attempt_capture, install_capture, uninstall_capture

    collected: list[tuple[str, str]] = []
    sink: LogSink = log if log is not None else lambda s, line: collected.append((s, line))
    published: list[Published] = []
    before = artifact.collecting(published.append)
    install_capture()
    try:
        with attempt_capture(sink):
            value = _call(invocation, sink)
        return Completion(value=value, logs=tuple(collected), artifacts=tuple(published))
    except Exception as exc:  # the task's failure is the result here
        return Completion(
            failure=_failure_of(exc), logs=tuple(collected), artifacts=tuple(published)
        )
    finally:
        uninstall_capture()
        artifact.collecting(before)


def _call(invocation: Invocation, sink: LogSink) -> Any:
    from orchestrion.worker.code import CodeRegistry

    module_name = invocation.ref.partition(":")[0]
    if invocation.code is not None:
        from orchestrion.worker.snapshots import load_snapshot

        fn = load_snapshot(invocation.code).resolve(invocation.ref)
    else:
        if invocation.source is not None and module_name not in sys.modules:
            from orchestrion.spec.python import load_python_file

            load_python_file(invocation.source)
        fn = CodeRegistry().resolve(invocation.ref)
    ctx = TaskContext(
        run_id=invocation.run_id,
        task_run_id=invocation.task_run_id,
        task_name=invocation.task_name,
        workflow=invocation.workflow,
        attempt=invocation.attempt,
        map_index=invocation.map_index,
        idempotency_key=invocation.idempotency_key,
        params=invocation.params,
        log_sink=sink,
        secret_values={k: Secret(v) for k, v in invocation.secrets.items()},
    )
    return call_python(fn, dict(invocation.kwargs), ctx, invocation.timeout)


def call_python(
    fn: Callable[..., Any], kwargs: dict[str, Any], ctx: TaskContext, timeout: float | None
) -> Any:
    """Call a task function the way every executor does: ``ctx`` if it asks for it, a
    ``result`` input only if it takes one, a coroutine run to completion under `timeout`."""
    wants_ctx, takes_result, is_async = _calling(fn)
    if wants_ctx:
        kwargs["ctx"] = ctx
    if not takes_result:
        kwargs.pop("result", None)
    if is_async:
        # asyncio is imported for async tasks only: ~10 ms of every start-up otherwise
        import asyncio

        return asyncio.run(_with_timeout(fn(**kwargs), timeout))
    return fn(**kwargs)


def _calling(fn: Callable[..., Any]) -> tuple[bool, bool, bool]:
    """How to call `fn`: (does it take ``ctx``, can it take ``result``, is it async).
    Read from its signature once per function: `inspect.signature` costs more than a
    no-op task's whole call."""
    try:
        return _calling_cached(fn)
    except TypeError:  # an unhashable callable
        return _read_calling(fn)


def _read_calling(fn: Callable[..., Any]) -> tuple[bool, bool, bool]:
    params = inspect.signature(fn).parameters
    takes_result = "result" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )
    return "ctx" in params, takes_result, inspect.iscoroutinefunction(fn)


_calling_cached = functools.lru_cache(maxsize=4096)(_read_calling)


async def _with_timeout(coro: Any, timeout: float | None) -> Any:
    import asyncio

    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        raise TaskTimeout(f"timed out after {timeout}s") from None


def error_types(exc: BaseException) -> tuple[str, ...]:
    """The qualified names of an exception's classes, as ``retry_on`` names them (a class
    of a version's code under its module's own name, not its snapshot's)."""
    return tuple(
        public_names(f"{c.__module__}.{c.__qualname__}")
        for c in type(exc).__mro__
        if c not in (object, BaseException, Exception)
    )


def error_message(exc: BaseException) -> str:
    """How a task's exception reads in its outcome."""
    text = str(exc) if isinstance(exc, OrchestrionError) else f"{type(exc).__name__}: {exc}"
    return public_names(text)


def _failure_of(exc: BaseException) -> RemoteFailure:
    return RemoteFailure(
        message=error_message(exc),
        error_types=error_types(exc),
        traceback=public_names("".join(traceback.format_exception(exc))),
        timed_out=isinstance(exc, TaskTimeout),
    )

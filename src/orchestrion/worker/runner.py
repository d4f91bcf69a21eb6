"""Run one claimed attempt: build its inputs, call its action, map what happened to an
`Outcome`. The runner never decides what comes next; the store's planner does."""

from __future__ import annotations

import inspect
import json
import time
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from orchestrion.auth.ssrf import AllowList
from orchestrion.brokers.endpoint import Endpoint
from orchestrion.errors import CancelRequested, TaskError, TaskTimeout
from orchestrion.spec.bundle import CodeBundle
from orchestrion.spec.container import ContainerAction
from orchestrion.spec.expressions import compile_expression, render
from orchestrion.spec.model import PythonAction, SubWorkflowAction, TaskSpec, WorkflowSpec
from orchestrion.store.records import Claim, Outcome
from orchestrion.worker.capture import attempt_capture
from orchestrion.worker.code import CodeRegistry
from orchestrion.worker.containers.settings import ContainerSettings
from orchestrion.worker.context import TaskContext
from orchestrion.worker.executors import (
    Completion,
    Executor,
    Invocation,
    RemoteTaskFailed,
    call_python,
    error_message,
    error_types,
    source_of,
)
from orchestrion.worker.kinds import AttemptKindContext, attempt_deadline, run_kind
from orchestrion.worker.large_results import ResultFiles
from orchestrion.worker.snapshots import public_names

if TYPE_CHECKING:
    from orchestrion.store.objects import ObjectRef
    from orchestrion.worker.attempt_outputs import AttemptOutputs

__all__ = ["ChildRunStarter", "execute"]

_MAX_TRACEBACK = 20_000

#: How often a task thread waiting on an executor looks at cancellation and its deadline
#: (a completion wakes it at once).
_WAIT_SLICE = 0.2


class ChildRunStarter(Protocol):
    """Starts the child run of a sub-workflow task; the worker passes its own, which reads the
    child's spec and goes through the store."""

    def __call__(self, claim: Claim, workflow: str, params: dict[str, Any]) -> str | None:
        """Start a run of `workflow` with `params` as the child of `claim`'s task run: the child
        run's id, or None if the lease was lost meanwhile."""
        ...


def execute(
    claim: Claim,
    spec: WorkflowSpec,
    ctx: TaskContext,
    code: CodeRegistry,
    start_child: ChildRunStarter,
    *,
    http_allow: AllowList | None = None,
    executor: Executor | None = None,
    connections: Mapping[str, Endpoint] | None = None,
    containers: ContainerSettings | None = None,
    results: ResultFiles | None = None,
) -> Outcome | None:
    """Run the attempt; None when it produced no outcome yet (a sub-workflow now waits).

    A Python action runs in `executor` when given, else in this thread; a sub-workflow
    starts its child run; every other kind runs through its `TaskKind`
    (`orchestrion.worker.kinds.run_kind`). `http_allow` names the non-public destinations
    HTTP tasks may reach, `connections` are those the kind named (a publish task's, a SQL
    task's), opened by name, and `containers` says where container tasks run. With
    `results`, large results go to its object store, stored upstream results are read back
    (or given as files) and artifacts are collected (`orchestrion.worker.attempt_outputs`)."""
    if results is None:
        return _execute(
            claim, spec, ctx, code, start_child, http_allow, executor, connections, containers
        )
    from orchestrion.worker.attempt_outputs import AttemptOutputs

    with AttemptOutputs(results, claim.task_name) as outputs:
        outcome = _execute(
            claim,
            spec,
            ctx,
            code,
            start_child,
            http_allow,
            executor,
            connections,
            containers,
            outputs,
        )
        return outputs.finish(outcome)


def _execute(
    claim: Claim,
    spec: WorkflowSpec,
    ctx: TaskContext,
    code: CodeRegistry,
    start_child: ChildRunStarter,
    http_allow: AllowList | None,
    executor: Executor | None,
    connections: Mapping[str, Endpoint] | None,
    containers: ContainerSettings | None,
    outputs: AttemptOutputs | None = None,
) -> Outcome | None:
    task = spec.task(claim.task_name.removeprefix("undo:"))
    scope: dict[str, Any] = {"params": claim.params, "tasks": claim.upstream, "item": claim.item}
    stored = None
    try:
        with attempt_capture(ctx.log_sink):
            when_ref = task.when.ref if task.when is not None else None
            skip = claim.kind != "undo" and when_ref is not None
            if skip and not _call_condition(code.resolve(str(when_ref), spec.code), claim):
                return _outcome(claim, "skipped")
            action = task.undo if claim.kind == "undo" else task.action
            assert action is not None
            if isinstance(action, SubWorkflowAction):
                params = render(dict(action.params), scope)
                start_child(claim, action.workflow, params)
                return None
            if outputs is not None:
                scope = outputs.scope_for(
                    scope,
                    python=isinstance(action, PythonAction),
                    work_dir=action.work_dir if isinstance(action, ContainerAction) else None,
                )
            if isinstance(action, PythonAction):
                result = _run_python(action, task, spec.code, claim, ctx, code, scope, executor)
            else:
                context = AttemptKindContext(
                    task=ctx,
                    deadline=attempt_deadline(ctx, task.timeout),
                    connections=connections or {},
                    timeout=task.timeout,
                    scope=scope,
                    task_secrets=task.secrets,
                    http_allow=http_allow,
                    containers=containers,
                    files=outputs.mounts if outputs is not None else {},
                )
                result = run_kind(action, context)
        result, stored = _prepared(result, claim, outputs)
    except CancelRequested:
        return _outcome(claim, "canceled", error="canceled")
    except TaskTimeout as exc:
        return _failure(claim, ctx, exc, timed_out=True)
    except (TypeError, ValueError) as exc:
        if "JSON serializable" in str(exc) or "Circular reference" in str(exc):
            return _failure(claim, ctx, TaskError(f"task result is not JSON-serialisable: {exc}"))
        return _failure(claim, ctx, exc)
    except Exception as exc:
        return _failure(claim, ctx, exc)
    return _outcome(claim, "succeeded", result=result, stored=stored)


def _prepared(
    result: Any, claim: Claim, outputs: AttemptOutputs | None
) -> tuple[Any, ObjectRef | None]:
    """The result as the outcome carries it (a reference when stored); raises as
    `json.dumps` does for a value that is not JSON."""
    if outputs is None:
        json.dumps(result)
        return result, None
    return outputs.files.prepare(result, claim.task_name)


def _run_python(
    action: PythonAction,
    task: TaskSpec,
    version_code: str | None,
    claim: Claim,
    ctx: TaskContext,
    code: CodeRegistry,
    scope: dict[str, Any],
    executor: Executor | None,
) -> Any:
    """A Python task: the function its reference names, called with the task's inputs (and
    an undo step's result), here or in `executor`."""
    fn = code.resolve(action.ref, version_code)
    kwargs = _inputs(task, scope)
    if claim.kind == "undo":
        kwargs["result"] = claim.undo_of_result
    if executor is not None:
        bundle = None if version_code is None else code.bundle(version_code)
        return _call_elsewhere(executor, fn, action.ref, bundle, kwargs, ctx, task.timeout)
    return call_python(fn, kwargs, ctx, task.timeout)


def _inputs(task: TaskSpec, scope: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in task.inputs.items():
        out[name] = (
            compile_expression(spec.expr).evaluate(scope) if spec.expr is not None else spec.value
        )
    return out


def _call_elsewhere(
    executor: Executor,
    fn: Callable[..., Any],
    ref: str,
    bundle: CodeBundle | None,
    kwargs: dict[str, Any],
    ctx: TaskContext,
    timeout: float | None,
) -> Any:
    """Run the call in `executor` and wait for it here, stopping it on cancellation (lease
    lost, run canceled, worker stopping) and at its deadline: unlike a thread, it can be."""
    invocation = Invocation(
        ref=ref,
        source=None if bundle is not None else source_of(fn, ref),
        code=bundle,
        kwargs=kwargs,
        timeout=timeout,
        run_id=ctx.run_id,
        task_run_id=ctx.task_run_id,
        task_name=ctx.task_name,
        workflow=ctx.workflow,
        attempt=ctx.attempt,
        map_index=ctx.map_index,
        idempotency_key=ctx.idempotency_key,
        params=ctx.params,
        secrets={name: value.reveal() for name, value in ctx.secret_values.items()},
    )
    deadline = None if timeout is None else time.monotonic() + timeout
    execution = executor.submit(invocation, ctx.log_sink)
    try:
        while True:
            if ctx.cancel_event.is_set():
                raise CancelRequested()
            left = (
                _WAIT_SLICE if deadline is None else min(_WAIT_SLICE, deadline - time.monotonic())
            )
            if left <= 0:
                raise TaskTimeout(
                    f"timed out after {timeout}s; its {executor.name} run was stopped"
                )
            done = execution.wait(left)
            if done is not None:
                break
    except BaseException:
        execution.cancel()
        raise
    for stream, line in done.logs:
        ctx.log_sink(stream, line)
    _republish(done)
    if done.failure is not None:
        raise RemoteTaskFailed(done.failure)
    return done.value


def _republish(done: Completion) -> None:
    """Store what the call published elsewhere, as if published on this thread."""
    if not done.artifacts:
        return
    from orchestrion import artifact

    if artifact.active():  # else this worker has no result store: nowhere to keep them
        for item in done.artifacts:
            artifact.publish(item)


def _call_condition(fn: Callable[..., Any], claim: Claim) -> bool:
    params = inspect.signature(fn).parameters
    available = {"params": claim.params, "results": claim.upstream}
    kwargs = {k: v for k, v in available.items() if k in params}
    return bool(fn(**kwargs))


def _outcome(
    claim: Claim,
    status: Any,
    *,
    result: Any = None,
    error: str | None = None,
    stored: ObjectRef | None = None,
) -> Outcome:
    return Outcome(
        task_run_id=claim.task_run_id,
        epoch=claim.epoch,
        status=status,
        result=result,
        error=error,
        stored=stored,
    )


def _failure(
    claim: Claim, ctx: TaskContext, exc: BaseException, *, timed_out: bool = False
) -> Outcome:
    """The failed outcome of `exc`; the traceback is masked before its tail is kept, so the
    cut cannot leave a piece of a secret (the worker masks the whole outcome again)."""
    kinds, message = error_types(exc), error_message(exc)
    full = public_names("".join(traceback.format_exception(exc)))
    if isinstance(exc, RemoteTaskFailed):  # what the task raised, not where it was relayed
        kinds, message = exc.failure.error_types, exc.failure.message
        full, timed_out = exc.failure.traceback, exc.failure.timed_out
    tb = ctx.masker.tail(full, _MAX_TRACEBACK)
    return Outcome(
        task_run_id=claim.task_run_id,
        epoch=claim.epoch,
        status="failed",
        error=message,
        error_types=kinds,
        traceback=tb,
        timed_out=timed_out or isinstance(exc, TaskTimeout),
    )

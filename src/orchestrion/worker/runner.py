"""Run one claimed attempt: build its inputs, call its action, map what happened to an
`Outcome`. The runner never decides what comes next; the store's planner does."""

from __future__ import annotations

import inspect
import json
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from orchestrion.auth.ssrf import AllowList
from orchestrion.brokers.endpoint import Endpoint
from orchestrion.errors import CancelRequested, TaskError, TaskTimeout
from orchestrion.spec.actions import DESTINATIONS
from orchestrion.spec.bundle import CodeBundle
from orchestrion.spec.expressions import compile_expression, render, render_url, to_text
from orchestrion.spec.model import (
    ContainerAction,
    HttpAction,
    PluginAction,
    PublishAction,
    PythonAction,
    ShellAction,
    SubWorkflowAction,
    TaskSpec,
    WorkflowSpec,
)
from orchestrion.store.records import Claim, Outcome
from orchestrion.worker.capture import attempt_capture
from orchestrion.worker.code import CodeRegistry
from orchestrion.worker.containers.settings import ContainerSettings
from orchestrion.worker.context import TaskContext
from orchestrion.worker.executors import (
    Executor,
    Invocation,
    RemoteTaskFailed,
    call_python,
    error_message,
    error_types,
    source_of,
)
from orchestrion.worker.snapshots import public_names

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
    endpoint: Endpoint | None = None,
    connections: Mapping[str, Endpoint] | None = None,
    containers: ContainerSettings | None = None,
) -> Outcome | None:
    """Run the attempt; None when it produced no outcome yet (a sub-workflow now waits).

    `http_allow` names the non-public destinations HTTP tasks may reach. A Python action
    runs in `executor` when given, else in this thread. `endpoint` is a publish task's
    opened connection; `connections` those a plugin kind named, opened by name;
    `containers` says where container tasks run."""
    task = spec.task(claim.task_name.removeprefix("undo:"))
    scope = {"params": claim.params, "tasks": claim.upstream, "item": claim.item}
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
            if isinstance(action, PluginAction):
                from orchestrion.worker.kinds import run_plugin

                result = run_plugin(action, ctx, scope, connections or {}, task.timeout)
            elif isinstance(action, PublishAction | ContainerAction):
                result = _run_io(action, task, ctx, scope, endpoint, containers)
            else:
                result = _run_action(
                    action, task, spec.code, claim, ctx, code, scope, http_allow, executor
                )
        json.dumps(result)
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
    return _outcome(claim, "succeeded", result=result)


def _run_io(
    action: PublishAction | ContainerAction,
    task: TaskSpec,
    ctx: TaskContext,
    scope: dict[str, Any],
    endpoint: Endpoint | None,
    containers: ContainerSettings | None,
) -> Any:
    """A publish task (on its opened connection) or a container task (on its engine)."""
    if isinstance(action, PublishAction):
        return _publish(action, task, ctx, scope, endpoint)
    return _container(action, task, ctx, scope, containers)


def _run_action(
    action: PythonAction | ShellAction | HttpAction,
    task: TaskSpec,
    version_code: str | None,
    claim: Claim,
    ctx: TaskContext,
    code: CodeRegistry,
    scope: dict[str, Any],
    http_allow: AllowList | None,
    executor: Executor | None,
) -> Any:
    if isinstance(action, PythonAction):
        fn = code.resolve(action.ref, version_code)
        kwargs = _inputs(task, scope)
        if claim.kind == "undo":
            kwargs["result"] = claim.undo_of_result
        if executor is not None:
            bundle = None if version_code is None else code.bundle(version_code)
            return _call_elsewhere(executor, fn, action.ref, bundle, kwargs, ctx, task.timeout)
        return call_python(fn, kwargs, ctx, task.timeout)
    if isinstance(action, ShellAction):
        from orchestrion.worker.shell import run_shell

        concrete = action.model_copy(
            update={
                "argv": None
                if action.argv is None
                else tuple(_text(render(a, scope)) for a in action.argv),
                "env": {k: _text(render(v, scope)) for k, v in action.env.items()},
                "cwd": None if action.cwd is None else _text(render(action.cwd, scope)),
            }
        )
        # Secrets reach the process as environment variables only, never through templates.
        secret_env = {env: ctx.secret(name) for env, name in task.secrets.items()}
        return run_shell(concrete, ctx, timeout=task.timeout, extra_env=secret_env)
    from orchestrion.worker.http import run_http

    concrete_http = action.model_copy(
        update={
            "url": render_url(action.url, scope),
            "headers": {k: _text(render(v, scope)) for k, v in action.headers.items()},
            "json_body": render(action.json_body, scope),
        }
    )
    return run_http(concrete_http, ctx, timeout=task.timeout, allow=http_allow)


def _publish(
    action: PublishAction,
    task: TaskSpec,
    ctx: TaskContext,
    scope: dict[str, Any],
    endpoint: Endpoint | None,
) -> Any:
    from orchestrion.worker.publish import run_publish

    if endpoint is None:
        raise TaskError(f"this worker cannot open connection {action.connection!r}")
    field = DESTINATIONS[action.broker]
    concrete = action.model_copy(
        update={
            field: _text(render(action.destination, scope)),
            "headers": {k: _text(render(v, scope)) for k, v in action.headers.items()},
            "body": render(action.body, scope),
        }
    )
    return run_publish(concrete, ctx, endpoint, timeout=task.timeout)


def _container(
    action: ContainerAction,
    task: TaskSpec,
    ctx: TaskContext,
    scope: dict[str, Any],
    containers: ContainerSettings | None,
) -> Any:
    from orchestrion.worker.containers.run import run_container

    concrete = action.model_copy(
        update={
            "command": None
            if action.command is None
            else tuple(_text(render(a, scope)) for a in action.command),
            "env": {k: _text(render(v, scope)) for k, v in action.env.items()},
        }
    )
    # Secrets reach that container's environment only, never through templates.
    secret_env = {env: ctx.secret(name) for env, name in task.secrets.items()}
    return run_container(
        concrete,
        ctx,
        timeout=task.timeout,
        extra_env=secret_env,
        settings=containers,
        inputs=scope,
    )


def _text(value: Any) -> str:
    return to_text(value)


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
    if done.failure is not None:
        raise RemoteTaskFailed(done.failure)
    return done.value


def _call_condition(fn: Callable[..., Any], claim: Claim) -> bool:
    params = inspect.signature(fn).parameters
    available = {"params": claim.params, "results": claim.upstream}
    kwargs = {k: v for k, v in available.items() if k in params}
    return bool(fn(**kwargs))


def _outcome(claim: Claim, status: Any, *, result: Any = None, error: str | None = None) -> Outcome:
    return Outcome(
        task_run_id=claim.task_run_id, epoch=claim.epoch, status=status, result=result, error=error
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

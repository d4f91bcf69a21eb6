"""Running a task of any kind but Python and sub-workflow through the `TaskKind` interface
(`orchestrion.spec.kinds`): find the kind (a core kind's runner, the built-in ``sql`` or a
plugin, all in one registry), render its options over the task's scope, validate them, and
call `TaskKind.run` with an `AttemptKindContext`.

The worker's own guarantees stay here, around the kind: the lease, heartbeats, fencing,
secret masking (the connections a kind names are opened before the attempt and their
passwords masked like declared secrets, see `connection_names`) and the mapping of what
`run` raises to an outcome (`orchestrion.worker.runner`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from orchestrion.auth.ssrf import AllowList
from orchestrion.brokers.endpoint import Endpoint
from orchestrion.errors import SpecError, TaskError
from orchestrion.spec.actions import PluginAction, PythonAction, SubWorkflowAction
from orchestrion.spec.kinds import TaskKind, installed_kinds, options_message
from orchestrion.spec.model import Action
from orchestrion.types import NO_RICH_REPR, repr_hiding
from orchestrion.worker.containers.settings import ContainerSettings
from orchestrion.worker.context import TaskContext

__all__ = ["AttemptKindContext", "connection_names", "run_kind", "run_plugin"]


def _kind(action: PluginAction) -> TaskKind[Any]:
    try:
        return installed_kinds().get(action.plugin)
    except SpecError as exc:  # not installed on this worker: a failure the task can retry
        raise TaskError(f"this worker cannot run the task: {exc}") from None


def _resolved(action: Action) -> tuple[TaskKind[Any], Any]:
    """The kind that runs `action` and the options it stores: a plugin's options mapping, or
    a core action's own model (its runner renders that model)."""
    if isinstance(action, PluginAction):
        return _kind(action), action.options
    try:
        return installed_kinds().core_kind(action.kind), action
    except SpecError as exc:  # python and workflow tasks never get here (runner.execute)
        raise TaskError(f"this worker cannot run the task: {exc}") from None


def _validated(kind: TaskKind[Any], options: Any) -> Any:
    try:
        return kind.validate(options)
    except ValueError as exc:
        raise TaskError(f"bad {kind.name} options: {options_message(exc)}") from None


def connection_names(action: Action | None) -> tuple[str, ...]:
    """The connections the worker opens before the attempt: those the task's kind names
    (a publish task's, a SQL task's, a plugin's). Raises `TaskError` for a kind this worker
    does not have."""
    if action is None or isinstance(action, PythonAction | SubWorkflowAction):
        return ()
    kind, stored = _resolved(action)
    return tuple(kind.connections(_validated(kind, stored)))


class AttemptKindContext(msgspec.Struct, frozen=True, kw_only=True):
    """The `KindContext` of one attempt: the worker's `TaskContext`, the attempt's deadline
    and the connections opened for it; plus what the core kinds' runners need of the task
    and the worker (a plugin may read them too, but `KindContext` does not promise them)."""

    task: TaskContext
    deadline: float | None
    connections: Mapping[str, Endpoint] = msgspec.field(default_factory=dict)
    #: The task's timeout in seconds (None without one), for "timed out after Ns" messages;
    #: `deadline` is what to wait against.
    timeout: float | None = None
    #: What templates see: ``params``, ``tasks`` (upstream results), ``item``.
    scope: Mapping[str, Any] = msgspec.field(default_factory=dict)
    #: The task's ``secrets:`` (environment variable -> secret name): shell and container
    #: tasks get those values in their environment, read through `secret`.
    task_secrets: Mapping[str, str] = msgspec.field(default_factory=dict)
    #: The non-public destinations HTTP tasks may reach (the worker's setting).
    http_allow: AllowList | None = None
    #: Where container tasks run (the worker's setting).
    containers: ContainerSettings | None = None
    #: Stored upstream results (task name -> a local file) that a container task gets in its
    #: work folder as ``results/<task>.json`` (the scope names that path).
    files: Mapping[str, Path] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:
        # The scope holds run parameters and upstream results; connections, credentials.
        return repr_hiding(self, "connections", "scope")

    __rich_repr__ = NO_RICH_REPR

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.task.run_id

    @property
    def task_name(self) -> str:
        """The task's name."""
        return self.task.task_name

    @property
    def attempt(self) -> int:
        """The attempt's number."""
        return self.task.attempt

    @property
    def idempotency_key(self) -> str:
        """Stable across the attempts of one task run."""
        return self.task.idempotency_key

    @property
    def params(self) -> Mapping[str, Any]:
        """The run's parameters."""
        return self.task.params

    @property
    def cancel_event(self) -> threading.Event:
        """Set once the attempt should stop."""
        return self.task.cancel_event

    def time_left(self) -> float | None:
        """Seconds until the deadline, or None without one."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def check_cancel(self) -> None:
        """Raise `CancelRequested` once the attempt should stop."""
        self.task.check_cancel()

    def log(self, text: str) -> None:
        """A line in the attempt's log (masked by the worker)."""
        self.task.log(text)

    def secret(self, name: str) -> str:
        """A declared secret's value."""
        return self.task.secret(name)

    def connection(self, name: str) -> Endpoint:
        """A connection the kind named, opened before the attempt."""
        found = self.connections.get(name)
        if found is None:
            raise TaskError(
                f"connection {name!r} was not opened for this task (a kind names the"
                " connections it uses in TaskKind.connections)"
            )
        return found


def run_kind(action: Action, context: AttemptKindContext) -> Any:
    """Run one attempt of `action` (any kind but Python and sub-workflow): the one code path
    of every such kind. Its options are rendered over ``context.scope`` and validated."""
    kind, stored = _resolved(action)
    options = _validated(kind, kind.render(stored, context.scope))
    context.check_cancel()
    return kind.run(options, context)


def attempt_deadline(ctx: TaskContext, timeout: float | None) -> float | None:
    """When the attempt must end: the one the worker set when it took the claim
    (`TaskContext.deadline`), else `timeout` seconds from now (a caller without a worker)."""
    if ctx.deadline is not None or timeout is None:
        return ctx.deadline
    return time.monotonic() + timeout


def run_plugin(
    action: PluginAction,
    ctx: TaskContext,
    scope: Mapping[str, Any],
    connections: Mapping[str, Endpoint],
    timeout: float | None,
) -> Any:
    """Run one attempt of a plugin-kind `action` (`run_kind` with a plain context)."""
    context = AttemptKindContext(
        task=ctx,
        deadline=attempt_deadline(ctx, timeout),
        connections=connections,
        timeout=timeout,
        scope=scope,
    )
    return run_kind(action, context)

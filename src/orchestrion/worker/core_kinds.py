"""The core kinds a worker runs through the `TaskKind` interface: shell, http, publish and
container (`orchestrion.spec.kinds.CORE_KINDS` names them for the registry).

Their specs stay the `Action` union's own models, so stored JSON and version hashes do not
change: a core kind's options *are* that model. `render` makes the attempt's concrete model
(each kind renders its own template fields, as before: argv elements and environment values
as text, a URL through `render_url`, ...), `validate` passes it through (it was checked when
the spec was loaded) and `run` calls the kind's engine module, imported only then: a worker
that runs no container task never imports the Docker client.

`run` gets the same `AttemptKindContext` a plugin gets (parameters, secrets, log,
cancellation, deadline, opened connections); it also reads what that context carries for the
core kinds (the task's ``secrets:`` mapping, the worker's HTTP allow-list and container
settings) and the `TaskContext` it wraps, which the engine modules take.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from orchestrion.errors import TaskError
from orchestrion.spec.actions import DESTINATIONS, HttpAction, PublishAction, ShellAction
from orchestrion.spec.container import ContainerAction
from orchestrion.spec.expressions import render, render_url, to_text
from orchestrion.spec.kinds import KindContext, TaskKind
from orchestrion.spec.structs import SpecModel
from orchestrion.worker.kinds import AttemptKindContext

__all__ = ["ContainerKind", "CoreKind", "HttpKind", "PublishKind", "ShellKind"]

ModelT = TypeVar("ModelT", bound=SpecModel)


class CoreKind(TaskKind[ModelT]):
    """A core kind: its options are its spec model, already checked when it was loaded."""

    def validate(self, raw: Any) -> ModelT:
        """The rendered model as it is (a mapping is validated, for callers that have one)."""
        if isinstance(raw, self.options):
            return raw
        return super().validate(raw)

    def stored(self, options: ModelT) -> dict[str, Any]:
        """The model as the spec stores it: the action itself, every field."""
        return options.model_dump()

    def json_schema(self, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
        """Not the kind's to say: a core action's schema is part of the workflow schema
        (`orchestrion.spec.json_schema`), hand-written with its YAML shorthands."""
        del ref_template
        raise NotImplementedError(f"the {self.name} action is described by the workflow schema")


def _attempt(ctx: KindContext) -> AttemptKindContext:
    """The worker's context: core kinds run only in a worker, which always passes one."""
    if not isinstance(ctx, AttemptKindContext):
        raise TaskError("a core task kind runs only in an Orchestrion worker")
    return ctx


def _texts(values: tuple[str, ...] | None, scope: Mapping[str, Any]) -> tuple[str, ...] | None:
    return None if values is None else tuple(to_text(render(v, scope)) for v in values)


def _env(env: Mapping[str, str], scope: Mapping[str, Any]) -> dict[str, str]:
    return {k: to_text(render(v, scope)) for k, v in env.items()}


def _secret_env(ctx: AttemptKindContext) -> dict[str, str]:
    """The task's declared secrets as environment variables: they reach the process or
    container this way only, never through templates."""
    return {env: ctx.secret(name) for env, name in ctx.task_secrets.items()}


class ShellKind(CoreKind[ShellAction]):
    """A process: argv elements, environment values and the working folder are templates."""

    name = "shell"
    options = ShellAction
    summary = "A process (argv or a bash script)."

    def render(self, stored: ShellAction, scope: Mapping[str, Any]) -> ShellAction:
        """The argv, env and cwd rendered as text; a script is never templated."""
        return stored.model_copy(
            update={
                "argv": _texts(stored.argv, scope),
                "env": _env(stored.env, scope),
                "cwd": None if stored.cwd is None else to_text(render(stored.cwd, scope)),
            }
        )

    def run(self, options: ShellAction, ctx: KindContext) -> Any:
        """Run the process to its end; see `orchestrion.worker.shell.run_shell`."""
        from orchestrion import artifact
        from orchestrion.worker.shell import run_shell

        attempt = _attempt(ctx)
        if not artifact.active():
            return run_shell(
                options,
                attempt.task,
                timeout=attempt.timeout,
                deadline=attempt.deadline,
                extra_env=_secret_env(attempt),
            )
        from orchestrion.worker.attempt_outputs import shell_artifacts

        with shell_artifacts(options.cwd) as artifacts_env:
            return run_shell(
                options,
                attempt.task,
                timeout=attempt.timeout,
                deadline=attempt.deadline,
                extra_env={**_secret_env(attempt), **artifacts_env},
            )


class HttpKind(CoreKind[HttpAction]):
    """One HTTP request: the URL, header values and JSON body's strings are templates."""

    name = "http"
    options = HttpAction
    summary = "One HTTP request."

    def render(self, stored: HttpAction, scope: Mapping[str, Any]) -> HttpAction:
        """The URL (its templated parts escaped), headers and JSON body rendered."""
        return stored.model_copy(
            update={
                "url": render_url(stored.url, scope),
                "headers": _env(stored.headers, scope),
                "json_body": render(stored.json_body, scope),
            }
        )

    def run(self, options: HttpAction, ctx: KindContext) -> Any:
        """Send it; see `orchestrion.worker.http.run_http`."""
        from orchestrion.worker.http import run_http

        attempt = _attempt(ctx)
        return run_http(
            options,
            attempt.task,
            timeout=attempt.timeout,
            deadline=attempt.deadline,
            allow=attempt.http_allow,
        )


class PublishKind(CoreKind[PublishAction]):
    """One message to a broker, on the connection the worker opened for it."""

    name = "publish"
    options = PublishAction
    summary = "Publish one message to a broker through a named connection."

    def render(self, stored: PublishAction, scope: Mapping[str, Any]) -> PublishAction:
        """The destination, header values and body rendered."""
        return stored.model_copy(
            update={
                DESTINATIONS[stored.broker]: to_text(render(stored.destination, scope)),
                "headers": _env(stored.headers, scope),
                "body": render(stored.body, scope),
            }
        )

    def connections(self, options: PublishAction) -> tuple[str, ...]:
        """The connection it publishes on."""
        return (options.connection,)

    def run(self, options: PublishAction, ctx: KindContext) -> Any:
        """Publish; see `orchestrion.worker.publish.run_publish`."""
        from orchestrion.worker.publish import run_publish

        attempt = _attempt(ctx)
        endpoint = attempt.connections.get(options.connection)
        if endpoint is None:
            raise TaskError(f"this worker cannot open connection {options.connection!r}")
        return run_publish(
            options, attempt.task, endpoint, timeout=attempt.timeout, deadline=attempt.deadline
        )


class ContainerKind(CoreKind[ContainerAction]):
    """A container: command elements and environment values are templates; the image is not
    (a worker pulls only what the spec names)."""

    name = "container"
    options = ContainerAction
    summary = "A command in a fresh container of an image."

    def render(self, stored: ContainerAction, scope: Mapping[str, Any]) -> ContainerAction:
        """The command and env rendered as text."""
        return stored.model_copy(
            update={"command": _texts(stored.command, scope), "env": _env(stored.env, scope)}
        )

    def run(self, options: ContainerAction, ctx: KindContext) -> Any:
        """Run the container to its end; see `orchestrion.worker.containers.run`."""
        from orchestrion.worker.containers.run import run_container

        attempt = _attempt(ctx)
        return run_container(
            options,
            attempt.task,
            timeout=attempt.timeout,
            deadline=attempt.deadline,
            extra_env=_secret_env(attempt),
            settings=attempt.containers,
            inputs=attempt.scope,
            files=attempt.files,
        )

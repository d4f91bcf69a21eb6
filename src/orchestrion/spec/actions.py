"""What a task does: the six core action kinds a task (or its undo) runs, one model each,
and `PluginAction`, every other kind (`orchestrion.spec.kinds`): built in (``sql``) or
third-party.

A Python action names its callable by reference, resolved by workers only; the others are
data whose string fields may be templates over ``params``, ``tasks`` and ``item``, checked
when the workflow is validated (`orchestrion.spec.validation`) and rendered by the worker.
`Action` is their union, told apart by ``kind``.
"""

import re
from typing import Annotated, Any, Final, Literal

from msgspec import Meta

from orchestrion.spec.container import ContainerAction
from orchestrion.spec.rules import (
    BROKER_KINDS,
    CONNECTION_KINDS,
    DESTINATIONS,
    SECRET_NAME_PATTERN,
    SQL_KINDS,
)
from orchestrion.spec.structs import ActionModel, Bool, Duration, Int, Line, Name, Pattern, Str
from orchestrion.spec.waits import ApprovalAction, WaitAction

__all__ = [
    "BROKER_KINDS",
    "CONNECTION_KINDS",
    "DESTINATIONS",
    "SQL_KINDS",
    "Action",
    "ApprovalAction",
    "ContainerAction",
    "HttpAction",
    "PluginAction",
    "PublishAction",
    "PythonAction",
    "ShellAction",
    "SubWorkflowAction",
    "WaitAction",
]

# The kinds of broker, database and connection are `orchestrion.spec.rules` (an edge names
# them without loading the models); re-exported here, beside the actions that use them.

#: A connection's name: like a secret's (letters, digits, '_', '.', '-').
CONNECTION_NAME_PATTERN: Final = SECRET_NAME_PATTERN


class PythonAction(ActionModel, frozen=True, kw_only=True, tag="python"):
    """Call a Python function, named by reference so that the spec stays data: only workers
    resolve it."""

    #: ``module:qualname`` or ``path/to/file.py:qualname``.
    ref: Annotated[Line, Meta(min_length=1, max_length=500)]
    is_async: Bool = False


class ShellAction(ActionModel, frozen=True, kw_only=True, tag="shell"):
    """A process. Values reach it only as argv elements or environment variables."""

    #: argv, each element a template; no shell parses it.
    argv: tuple[Str, ...] | None = None
    #: A bash script whose text is never templated: parameters arrive as ``env``.
    script: Str | None = None
    env: dict[str, Str] = {}
    cwd: Str | None = None
    #: Parse stdout as JSON for the result; otherwise the result is the last stdout line.
    json_output: Bool = False

    def check(self) -> None:
        """One form (argv or script), a non-empty argv, valid environment names."""
        if (self.argv is None) == (self.script is None):
            raise ValueError("a shell task needs exactly one of 'argv' or 'script'")
        if self.argv is not None and not self.argv:
            raise ValueError("'argv' must not be empty")
        for key in self.env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"bad environment variable name {key!r}")


class HttpAction(ActionModel, frozen=True, kw_only=True, tag="http"):
    """Send one HTTP request; the task fails unless the status is one of `expect_status` (by default
    any 2xx)."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: Annotated[Str, Meta(min_length=1, max_length=4096)]
    headers: dict[str, Str] = {}
    #: A JSON body; string leaves may be templates.
    json_body: Any = None
    expect_status: tuple[Annotated[Int, Meta(ge=100, le=599)], ...] = ()
    timeout: Duration = 30.0


class SubWorkflowAction(ActionModel, frozen=True, kw_only=True, tag="workflow"):
    """Start a run of another workflow and wait for it to finish: the task's result is the
    child run's leaf results."""

    workflow: Name
    #: Child run parameters; string values may be templates.
    params: dict[str, Any] = {}


class PublishAction(ActionModel, frozen=True, kw_only=True, tag="publish"):
    """Publish one message to a broker through a named connection of the workflow's
    namespace (credentials live in the connection's secret, never here). The task succeeds
    once the broker acknowledged the message where it acknowledges (RabbitMQ publisher
    confirms, a JetStream ack, MQTT QoS 1 PUBACK, the Redis stream id)."""

    broker: Literal["redis", "rabbitmq", "nats", "mqtt"]
    connection: Annotated[Str, Pattern(CONNECTION_NAME_PATTERN)]
    #: Redis: the stream (XADD).
    stream: Str | None = None
    #: RabbitMQ: the routing key (a queue's name on the default exchange).
    queue: Str | None = None
    #: RabbitMQ: the exchange to publish to (default: the default exchange).
    exchange: Str | None = None
    #: NATS: the subject.
    subject: Str | None = None
    #: MQTT: the topic.
    topic: Str | None = None
    #: NATS: publish through JetStream and wait for its ack (default), or core NATS.
    jetstream: Bool = True
    #: MQTT: keep the message as the topic's retained one.
    retain: Bool = False
    #: The message: a string is sent as it is (UTF-8), anything else as JSON. String leaves
    #: may be templates.
    body: Any = None
    #: Message headers (AMQP headers, NATS headers, MQTT 5 user properties, Redis fields).
    headers: dict[Str, Str] = {}
    timeout: Duration = 30.0

    @property
    def destination(self) -> str:
        """The destination, as the one field this broker takes names it."""
        value = getattr(self, DESTINATIONS[self.broker])
        return str(value)

    def check(self) -> None:
        """The one destination field the broker takes, and nothing else's."""
        wanted = DESTINATIONS[self.broker]
        given = [name for name in DESTINATIONS.values() if getattr(self, name) is not None]
        wrong = [name for name in given if name != wanted]
        if wrong:
            raise ValueError(f"a {self.broker} publish takes {wanted!r}, not {wrong[0]!r}")
        if not given or not getattr(self, wanted):
            raise ValueError(f"a {self.broker} publish needs {wanted!r}")
        if self.exchange is not None and self.broker != "rabbitmq":
            raise ValueError("'exchange' is for rabbitmq only")


class PluginAction(ActionModel, frozen=True, kw_only=True, tag="plugin"):
    """A task of a kind that implements `orchestrion.spec.kinds.TaskKind`: built in (``sql``)
    or installed as a plugin. `options` are stored as the kind validated them (fields at
    their default left out); the loaders check them against the kind, and the worker checks
    them again after rendering the kind's templated fields. The model itself checks only
    their shape, so a server that has not installed a plugin still reads specs using it."""

    #: The kind's name, its YAML key.
    plugin: Annotated[Str, Pattern(r"^[a-z][a-z0-9_-]{0,62}$")]
    options: dict[Str, Any] = {}


#: The actions, told apart by their ``kind`` (msgspec's tag).
Action = (
    PythonAction
    | ShellAction
    | HttpAction
    | SubWorkflowAction
    | PublishAction
    | ContainerAction
    | PluginAction
    | ApprovalAction
    | WaitAction
)

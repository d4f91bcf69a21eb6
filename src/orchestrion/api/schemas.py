"""The JSON shapes the REST API exposes; the only ones.

Records are shown through models built from their `api.wire` tables (`model_of`), so a
record's new field appears here without an edit. `Workflow` and `WorkerTask` are views
(a workflow's summary, a worker's lease), written out because they are not field copies.
"""

from __future__ import annotations

import base64
from types import GenericAlias
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, create_model

from orchestrion.api.wire import (
    ATTEMPT,
    CHANNEL,
    CONNECTION,
    CONSUMER,
    DELIVERY,
    EVENT,
    LOG_LINE,
    RETENTION,
    RULE,
    RUN,
    SECRET,
    TASK_RUN,
    WORKER,
    Wire,
)
from orchestrion.errors import OrchestrionError
from orchestrion.spec.fields import Line
from orchestrion.store.records import TaskRunRecord, WorkflowRecord

__all__ = [
    "Attempt",
    "BadCursor",
    "ChannelInfo",
    "ConnectionInfo",
    "ConsumerInfo",
    "DeliveryInfo",
    "ErrorBody",
    "Event",
    "LogLine",
    "Page",
    "RecordModel",
    "RetentionInfo",
    "RuleInfo",
    "Run",
    "SecretInfo",
    "SetVersionRequest",
    "TaskRun",
    "TriggerRequest",
    "Worker",
    "WorkerTask",
    "Workflow",
    "decode_cursor",
    "encode_cursor",
    "list_of",
    "model_of",
]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorDetail(_Out):
    code: str
    message: str


class ErrorBody(_Out):
    """Every error response: a stable machine-readable code and a message for people."""

    error: ErrorDetail


class Workflow(_Out):
    """A workflow version's summary as listed (its full spec only when asked for), with
    whether the workflow is paused and whether this version is its current one."""

    name: str
    version: str
    namespace: str
    description: str
    tasks: int
    params: dict[str, Any]
    schedules: list[dict[str, Any]]
    paused: bool = False
    #: whether this is the version that triggers, schedules and runs without a version start
    current: bool = False
    created_at: float
    spec: dict[str, Any] | None = None
    #: The Git commit this version was first deployed from (a project's sync or apply).
    commit: str | None = None

    @classmethod
    def of(
        cls, rec: WorkflowRecord, *, paused: bool = False, current: bool, full: bool = False
    ) -> Workflow:
        """The view of `rec`; `full` includes the whole spec as JSON."""
        spec = rec.spec
        return cls(
            name=rec.name,
            version=rec.version,
            namespace=rec.namespace,
            description=spec.description,
            tasks=len(spec.tasks),
            params={k: v.model_dump(mode="json") for k, v in spec.params.items()},
            schedules=[s.model_dump(mode="json") for s in spec.schedules],
            paused=paused,
            current=current,
            created_at=rec.created_at,
            spec=spec.model_dump(mode="json") if full else None,
        )


class SetVersionRequest(BaseModel):
    """The body of a request to make a registered version of a workflow its current one."""

    model_config = ConfigDict(extra="forbid")

    version: Line = Field(min_length=1, max_length=200)


class TriggerRequest(BaseModel):
    """The body of a request to start a run: its parameters, an idempotency key (the same key gives
    back the same run) and a priority."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: Line | None = Field(default=None, min_length=1, max_length=200)
    priority: int = Field(default=0, ge=-1000, le=1000)
    #: Cached tasks compute again and overwrite their entries (``docs/caching.md``).
    no_cache: bool = False


class RecordModel(_Out):
    """A response model built from a record's `Wire` (`model_of`); `of` shows a record."""

    wire: ClassVar[Wire[Any]]

    @classmethod
    def of(cls, record: Any, **extra: Any) -> Self:
        """The response model of `record`, with the `extra` fields that are not the record's."""
        return cls(**cls.wire.encode(record), **extra)


def list_of(model: type[BaseModel]) -> Any:
    """``list[model]``, for a ``response_model``: spelled so that a type checker accepts a
    model built at run time (it is the same `GenericAlias`)."""
    return GenericAlias(list, (model,))


def model_of(wire: Wire[Any], name: str, **extra: Any) -> type[RecordModel]:
    """The response model `name` of a record: one required field per field on the wire, in
    the record's order, then the `extra` fields (name=type) that are not the record's."""
    fields: dict[str, Any] = {f.wire: (f.json_type, ...) for f in wire.fields}
    fields.update({key: (kind, ...) for key, kind in extra.items()})
    model = create_model(name, __base__=RecordModel, __module__=__name__, **fields)
    model.wire = wire
    return model


Run = model_of(RUN, "Run")
TaskRun = model_of(TASK_RUN, "TaskRun")
Attempt = model_of(ATTEMPT, "Attempt")
Event = model_of(EVENT, "Event")
LogLine = model_of(LOG_LINE, "LogLine")
SecretInfo = model_of(SECRET, "SecretInfo")
ConnectionInfo = model_of(CONNECTION, "ConnectionInfo")
ConsumerInfo = model_of(CONSUMER, "ConsumerInfo")
RetentionInfo = model_of(RETENTION, "RetentionInfo")
ChannelInfo = model_of(CHANNEL, "ChannelInfo")
RuleInfo = model_of(RULE, "RuleInfo")
DeliveryInfo = model_of(DELIVERY, "DeliveryInfo")


# A task run a worker holds a lease on: a view of the task run, not a copy. (No docstring:
# it would become the schema's description, and the published schema has none.)
class WorkerTask(_Out):
    """A task run a worker holds a lease on, as the workers page shows it (a mapped item named
    ``task[i]``)."""

    run_id: str
    task_run_id: int
    task: str
    attempt: int
    started_at: float | None

    @classmethod
    def of(cls, rec: TaskRunRecord) -> WorkerTask:
        """The view of the running task run `rec`."""
        return cls(
            run_id=rec.run_id,
            task_run_id=rec.id,
            task=rec.task_name if rec.map_index < 0 else f"{rec.task_name}[{rec.map_index}]",
            attempt=rec.attempts,
            started_at=rec.started_at,
        )


#: A worker, and (``running``) the task runs it holds a lease on now.
Worker = model_of(WORKER, "Worker", running=list[WorkerTask])


class Page(_Out):
    """One page of a list: its items, and the cursor of the next page (None on the last)."""

    items: list[Any]
    next_cursor: str | None


class BadCursor(OrchestrionError):
    """The cursor is not one this API issued."""


def encode_cursor(value: str) -> str:
    """The opaque cursor for the page after `value` (the last item's id): versioned, so that its
    format can change without breaking clients."""
    return base64.urlsafe_b64encode(f"v1:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The item id a cursor stands for; `BadCursor` (400) for one this API did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadCursor(
            f"bad cursor {cursor[:40]!r}: use the next_cursor of a previous page"
        ) from None
    if not raw.startswith("v1:") or len(raw) > 100:
        raise BadCursor(f"bad cursor {cursor[:40]!r}: use the next_cursor of a previous page")
    return raw[3:]

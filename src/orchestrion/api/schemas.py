"""The JSON shapes the REST API exposes; the only ones. Records map onto them here."""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrion.errors import OrchestrionError
from orchestrion.store.records import (
    AttemptRecord,
    EventRecord,
    LogRecord,
    RunRecord,
    TaskRunRecord,
    WorkerRecord,
    WorkflowRecord,
)

__all__ = [
    "Attempt",
    "BadCursor",
    "ErrorBody",
    "Event",
    "LogLine",
    "Page",
    "Run",
    "TaskRun",
    "TriggerRequest",
    "Worker",
    "Workflow",
    "decode_cursor",
    "encode_cursor",
]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorDetail(_Out):
    code: str
    message: str


class ErrorBody(_Out):
    error: ErrorDetail


class Workflow(_Out):
    name: str
    version: str
    namespace: str
    description: str
    tasks: int
    params: dict[str, Any]
    schedules: list[dict[str, Any]]
    paused: bool = False
    created_at: float
    spec: dict[str, Any] | None = None

    @classmethod
    def of(cls, rec: WorkflowRecord, *, paused: bool = False, full: bool = False) -> Workflow:
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
            created_at=rec.created_at,
            spec=spec.model_dump(mode="json") if full else None,
        )


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, max_length=200)
    priority: int = Field(default=0, ge=-1000, le=1000)


class Run(_Out):
    id: str
    workflow: str
    version: str
    state: str
    params: dict[str, Any]
    trigger: str
    priority: int
    idempotency_key: str | None
    parent_task_run_id: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    result: Any
    error: str | None

    @classmethod
    def of(cls, rec: RunRecord) -> Run:
        return cls(
            id=rec.id,
            workflow=rec.workflow,
            version=rec.version,
            state=rec.state.value,
            params=rec.params,
            trigger=rec.trigger,
            priority=rec.priority,
            idempotency_key=rec.idempotency_key,
            parent_task_run_id=rec.parent_task_run_id,
            created_at=rec.created_at,
            started_at=rec.started_at,
            finished_at=rec.finished_at,
            result=rec.result,
            error=rec.error,
        )


class TaskRun(_Out):
    id: int
    run_id: str
    task: str
    map_index: int | None
    kind: str
    state: str
    queue: str
    priority: int
    attempts: int
    result: Any
    error: str | None
    started_at: float | None
    finished_at: float | None

    @classmethod
    def of(cls, rec: TaskRunRecord) -> TaskRun:
        return cls(
            id=rec.id,
            run_id=rec.run_id,
            task=rec.task_name,
            map_index=rec.map_index if rec.map_index >= 0 else None,
            kind=rec.kind,
            state=rec.state.value,
            queue=rec.queue,
            priority=rec.priority,
            attempts=rec.attempts,
            result=rec.result,
            error=rec.error,
            started_at=rec.started_at,
            finished_at=rec.finished_at,
        )


class Attempt(_Out):
    id: int
    task_run_id: int
    number: int
    worker: str
    started_at: float
    finished_at: float | None
    outcome: str | None
    error: str | None
    error_type: str | None
    traceback: str | None

    @classmethod
    def of(cls, rec: AttemptRecord) -> Attempt:
        return cls(
            id=rec.id,
            task_run_id=rec.task_run_id,
            number=rec.number,
            worker=rec.worker,
            started_at=rec.started_at,
            finished_at=rec.finished_at,
            outcome=rec.outcome,
            error=rec.error,
            error_type=rec.error_type,
            traceback=rec.traceback,
        )


class Event(_Out):
    id: int
    run_id: str | None
    task_run_id: int | None
    at: float
    kind: str
    from_state: str | None
    to_state: str | None
    data: dict[str, Any] | None

    @classmethod
    def of(cls, rec: EventRecord) -> Event:
        return cls(
            id=rec.id,
            run_id=rec.run_id,
            task_run_id=rec.task_run_id,
            at=rec.at,
            kind=rec.kind,
            from_state=rec.from_state,
            to_state=rec.to_state,
            data=rec.data,
        )


class LogLine(_Out):
    id: int
    task: str
    task_run_id: int
    attempt: int
    at: float
    stream: str
    line: str

    @classmethod
    def of(cls, rec: LogRecord) -> LogLine:
        return cls(
            id=rec.id,
            task=rec.task_name,
            task_run_id=rec.task_run_id,
            attempt=rec.attempt,
            at=rec.at,
            stream=rec.stream,
            line=rec.line,
        )


class WorkerTask(_Out):
    run_id: str
    task_run_id: int
    task: str
    attempt: int
    started_at: float | None


class Worker(_Out):
    id: str
    host: str
    pid: int
    queues: list[str]
    started_at: float
    heartbeat_at: float
    state: str
    #: Routing labels it was started with (``--label KEY=VALUE``).
    labels: dict[str, str]
    #: The task runs it holds a lease on now.
    running: list[WorkerTask]

    @classmethod
    def of(cls, rec: WorkerRecord, running: list[TaskRunRecord] | None = None) -> Worker:
        return cls(
            id=rec.id,
            host=rec.host,
            pid=rec.pid,
            queues=list(rec.queues),
            started_at=rec.started_at,
            heartbeat_at=rec.heartbeat_at,
            state=rec.state,
            labels=dict(rec.labels),
            running=[
                WorkerTask(
                    run_id=t.run_id,
                    task_run_id=t.id,
                    task=t.task_name if t.map_index < 0 else f"{t.task_name}[{t.map_index}]",
                    attempt=t.attempts,
                    started_at=t.started_at,
                )
                for t in running or []
            ],
        )


class Page(_Out):
    items: list[Any]
    next_cursor: str | None


class BadCursor(OrchestrionError):
    """The cursor is not one this API issued."""


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(f"v1:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadCursor(
            f"bad cursor {cursor[:40]!r}: use the next_cursor of a previous page"
        ) from None
    if not raw.startswith("v1:") or len(raw) > 100:
        raise BadCursor(f"bad cursor {cursor[:40]!r}: use the next_cursor of a previous page")
    return raw[3:]

"""What task code sees of the system: ids, attempt, an idempotency key, a logger, a cancel check.

A task opts in by declaring a parameter named ``ctx`` (or annotated ``TaskContext``); the
worker passes it explicitly. There is no thread-local magic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import msgspec

from orchestrion.auth.masking import Masker
from orchestrion.auth.secret_box import Secret
from orchestrion.errors import CancelRequested, SecretError
from orchestrion.types import NO_RICH_REPR, repr_hiding

__all__ = ["LogSink", "TaskContext"]

#: Receives one captured log line: (stream, text). Streams: "stdout", "stderr", "log".
LogSink = Callable[[str, str], None]


def _discard(stream: str, text: str) -> None:
    return None


class TaskContext(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """What a task's code sees of its attempt: which run and task it is, its parameters, a log, a
    cancel check and its declared secrets. The worker makes one per attempt and passes it to a
    task that asks for it."""

    run_id: str
    task_run_id: int
    task_name: str
    workflow: str
    attempt: int
    #: Position in the mapped list, or None for an unmapped task.
    map_index: int | None = None
    #: Stable across attempts of one task run: use it to make external effects exactly once.
    idempotency_key: str
    params: Mapping[str, Any] = msgspec.field(default_factory=dict)
    cancel_event: threading.Event = msgspec.field(default_factory=threading.Event)
    log_sink: LogSink = _discard
    #: The secrets this task declared, opened by the worker: read them with `secret`.
    secret_values: Mapping[str, Secret] = msgspec.field(default_factory=dict)
    #: The W3C ``traceparent`` of this attempt's span when tracing is on (else None): HTTP
    #: tasks send it as a header, shell tasks get it as ``TRACEPARENT``; code may pass it on.
    traceparent: str | None = None
    #: When the attempt must end, as a `time.monotonic` value (None without a timeout): set
    #: by the worker when it takes the claim, so a kind's own timeout fires before the
    #: worker's watchdog (which waits a second longer) and reports what was stopped.
    deadline: float | None = None

    def __repr__(self) -> str:
        return repr_hiding(self, "secret_values")

    __rich_repr__ = NO_RICH_REPR

    @cached_property  # in the instance's __dict__ (``dict=True``)
    def masker(self) -> Masker:
        """Masks every declared secret's value: the worker's code that shortens output (a cut
        log line, a stderr tail, a preview) masks with it *before* cutting."""
        return Masker(v.reveal() for v in self.secret_values.values())

    @property
    def logger(self) -> logging.Logger:
        """A logger whose records land in this attempt's log."""
        return logging.getLogger(f"orchestrion.task.{self.workflow}.{self.task_name}")

    def should_cancel(self) -> bool:
        """True once the run or task was canceled, or the attempt's lease was lost."""
        return self.cancel_event.is_set()

    def check_cancel(self) -> None:
        """Raise `CancelRequested` if the task should stop; call it in long loops."""
        if self.cancel_event.is_set():
            raise CancelRequested()

    def log(self, text: str) -> None:
        """Write a line to this attempt's log."""
        self.log_sink("log", text)

    def secret(self, name: str) -> str:
        """The value of a secret this task declared (``@task(secrets=[name])`` or YAML
        ``secrets:``), from its workflow's namespace. Printing, returning or raising it is
        safe: the worker masks every declared value in logs, results and errors."""
        value = self.secret_values.get(name)
        if value is None:
            declared = ", ".join(sorted(self.secret_values)) or "none"
            raise SecretError(
                f"task {self.task_name!r} did not declare the secret {name!r} (declared:"
                f" {declared}); add it to the task's secrets"
            )
        return value.reveal()

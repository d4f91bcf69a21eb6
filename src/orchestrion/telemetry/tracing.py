"""Traces: one per run, a span per task attempt (docs/operating.md).

Off unless the standard OpenTelemetry environment asks for it (`tracing_wanted`): then
`start_tracing` imports the SDK and an OTLP/HTTP exporter, both configured by the usual
``OTEL_*`` variables. Off, nothing here imports OpenTelemetry and nothing is computed.

Every id is derived, not remembered: a run's trace id from its top-level run's id, its
span id from its own id, an attempt's span id from its task run and lease epoch. So any
worker process emits the spans of the attempts it ran, in the right trace and under the
right parent, without asking anyone; a span is emitted once, complete, by the process that
saw it end.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
from collections.abc import Iterator, Mapping
from typing import Protocol

from orchestrion.telemetry.spans import Attribute, SpanRecord

__all__ = [
    "Attribute",
    "SpanRecord",
    "Tracer",
    "attempt_span_id",
    "current_ids",
    "in_span",
    "run_span_id",
    "start_tracing",
    "trace_id_of",
    "traceparent",
    "tracing_wanted",
]

#: The variables that name where OTLP/HTTP traces go; one of them (or
#: ``OTEL_TRACES_EXPORTER=otlp``) turns tracing on.
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

#: The (trace id, span id) of the attempt this thread runs, for the JSON logs.
_CURRENT: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "orchestrion_span", default=None
)


def tracing_wanted(env: Mapping[str, str] | None = None) -> bool:
    """On when an OTLP endpoint is configured or ``OTEL_TRACES_EXPORTER=otlp``; off when
    ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``; off by default."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return exporter == "otlp" or any(env.get(name, "").strip() for name in _ENDPOINTS)


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


def _nonzero(value: int) -> int:
    return value or 1  # an all-zero id is invalid in W3C trace context


def trace_id_of(root_run_id: str) -> int:
    """The trace of a run tree, from its top-level run's id (128 bits)."""
    return _nonzero(int.from_bytes(_digest("trace", root_run_id)[:16], "big"))


def run_span_id(run_id: str) -> int:
    """The span of one run (64 bits)."""
    return _nonzero(int.from_bytes(_digest("run", run_id)[:8], "big"))


def attempt_span_id(run_id: str, task_run_id: int, epoch: int) -> int:
    """The span of one attempt: a task run under one lease epoch (64 bits)."""
    return _nonzero(
        int.from_bytes(_digest("attempt", run_id, str(task_run_id), str(epoch))[:8], "big")
    )


def traceparent(trace_id: int, span_id: int) -> str:
    """The W3C ``traceparent`` value naming a sampled span."""
    return f"00-{trace_id:032x}-{span_id:016x}-01"


@contextlib.contextmanager
def in_span(trace_id: int, span_id: int) -> Iterator[None]:
    """Within: `current_ids` names this span (log records carry its ids)."""
    token = _CURRENT.set((trace_id, span_id))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_ids() -> tuple[int, int] | None:
    """(trace id, span id) of the attempt this thread runs, if traced."""
    return _CURRENT.get()


class Tracer(Protocol):
    """Where finished spans go (an OpenTelemetry SDK pipeline when tracing is on)."""

    def emit(self, span: SpanRecord) -> None:
        """Export one finished span (batched; never blocks on the collector)."""
        ...

    def shutdown(self) -> None:
        """Export what is pending and stop."""
        ...


def start_tracing(
    service_name: str = "orchestrion", env: Mapping[str, str] | None = None
) -> Tracer | None:
    """An OpenTelemetry tracer if `tracing_wanted`, else None (and the SDK not imported).
    ``OTEL_SERVICE_NAME`` wins over `service_name`."""
    if not tracing_wanted(env):
        return None
    from orchestrion.telemetry.otel import OtelTracer

    return OtelTracer(service_name)

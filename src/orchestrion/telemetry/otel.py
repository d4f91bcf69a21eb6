"""The OpenTelemetry SDK behind `tracing.Tracer`: imported only when tracing is on.

Spans are made through the SDK's public API (``start_span`` with explicit times and a
parent context) so that its sampler, span processors, resource detection and exporter all
read the standard ``OTEL_*`` environment. The one thing Orchestrion decides is the ids
(derived from the run, `tracing`): a per-thread id generator hands the SDK the id of the
span being made.
"""

from __future__ import annotations

import os
import threading

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from orchestrion.telemetry.spans import SpanRecord

__all__ = ["OtelTracer"]


class _DerivedIds(IdGenerator):
    """The ids of the span being made on this thread (`OtelTracer.emit` sets them);
    random ones for anything else the SDK might make."""

    def __init__(self) -> None:
        self.local = threading.local()
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        found: int | None = getattr(self.local, "span_id", None)
        return found if found is not None else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        found: int | None = getattr(self.local, "trace_id", None)
        return found if found is not None else self._random.generate_trace_id()


class OtelTracer:
    """Finished spans out through a batch processor and the OTLP/HTTP exporter."""

    def __init__(self, service_name: str) -> None:
        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
        self._ids = _DerivedIds()
        self._provider = TracerProvider(
            resource=Resource.create(attributes), id_generator=self._ids
        )
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self._tracer = self._provider.get_tracer("orchestrion")

    def emit(self, span: SpanRecord) -> None:
        """Make `span` through the SDK with its derived ids, start and end times."""
        if span.parent_span_id is None:
            parent = Context()  # a root: nothing ambient may become its parent
        else:
            context = SpanContext(
                span.trace_id,
                span.parent_span_id,
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
            parent = trace.set_span_in_context(NonRecordingSpan(context), Context())
        self._ids.local.trace_id, self._ids.local.span_id = span.trace_id, span.span_id
        try:
            made = self._tracer.start_span(
                span.name,
                context=parent,
                attributes=dict(span.attributes),
                start_time=int(span.start * 1e9),
            )
        finally:
            self._ids.local.trace_id = self._ids.local.span_id = None
        if span.error is not None:
            made.set_status(Status(StatusCode.ERROR, span.error))
        made.end(end_time=int(span.end * 1e9))

    def shutdown(self) -> None:
        """Flush pending spans and stop the exporter."""
        self._provider.shutdown()

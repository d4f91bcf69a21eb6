"""Trace ids derived from runs, the W3C traceparent, and when tracing is on."""

from __future__ import annotations

import json
import logging

import pytest

from orchestrion.telemetry.logging import JsonFormatter
from orchestrion.telemetry.tracing import (
    attempt_span_id,
    in_span,
    run_span_id,
    trace_id_of,
    traceparent,
    tracing_wanted,
)


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
    ],
)
def test_tracing_is_off_unless_the_environment_asks(env: dict[str, str], wanted: bool) -> None:
    assert tracing_wanted(env) is wanted


def test_ids_are_derived_stable_and_distinct() -> None:
    run = "01a24bb3f01a771866e9"
    assert trace_id_of(run) == trace_id_of(run) and 0 < trace_id_of(run) < 2**128
    assert trace_id_of(run) != trace_id_of("01a24bb3f01a771866ea")
    assert 0 < run_span_id(run) < 2**64
    spans = {attempt_span_id(run, 7, epoch) for epoch in (1, 2, 3)} | {run_span_id(run)}
    assert len(spans) == 4
    header = traceparent(trace_id_of(run), run_span_id(run))
    version, trace, span, flags = header.split("-")
    assert (version, len(trace), len(span), flags) == ("00", 32, 16, "01")
    assert int(trace, 16) == trace_id_of(run)


def test_a_json_log_line_names_the_span_it_was_logged_in() -> None:
    record = logging.LogRecord("orchestrion.task", logging.INFO, "f", 1, "hello", (), None)
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
    with in_span(0xABC, 0x12):
        entry = json.loads(JsonFormatter().format(record))
    assert entry["trace_id"] == f"{0xABC:032x}" and entry["span_id"] == f"{0x12:016x}"

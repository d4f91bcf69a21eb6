"""The ``traces`` duty (`orchestrion.triggers.traces`) on a real store, exporting through
the real OpenTelemetry SDK to the loopback OTLP/HTTP receiver of the acceptance tests.

Runs ended three ways no worker's outcome covers alone (a worker's outcome, a user's
cancel, the reaper failing a task whose worker was lost five times) each get one root
span, with the right status, though two processes' shares of the duty pass over the same
history: only the holder of the ``traces`` lease emits, and the cursor moves past what it
emitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrion import planner
from orchestrion.telemetry.otel import OtelTracer
from orchestrion.telemetry.tracing import run_span_id, trace_id_of
from orchestrion.triggers.leases import DutyLease
from orchestrion.triggers.traces import CURSOR, RunSpans
from tests.acceptance.test_server import wait_for
from tests.acceptance.test_tracing import Receiver
from tests.helpers import Driver, py, wf


@pytest.fixture
def d(tmp_path: Path) -> Iterator[Driver]:
    drv = Driver(tmp_path / "spans.db")
    yield drv
    drv.close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    r = Receiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{r.url}/v1/traces")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    try:
        yield r
    finally:
        r.close()


def _share(d: Driver, tracer: OtelTracer, holder: str) -> RunSpans:
    lease = DutyLease(d.store.triggers, "traces", holder, ttl=3600.0)
    return RunSpans(d.store.runs, d.store.triggers, tracer, d.clock, lease=lease)


def test_every_run_end_is_one_root_span_whoever_ended_it(d: Driver, receiver: Receiver) -> None:
    tracer = OtelTracer("orchestrion-test")
    first, second = _share(d, tracer, "a"), _share(d, tracer, "b")
    assert first.pass_once() == 0  # places the cursor at the history's end
    assert d.store.triggers.get_cursor(CURSOR) is not None
    assert second.pass_once() == 0  # the lease is the first share's

    ok = d.start(wf("ok", py("t")))
    d.succeed(d.claim_one("t"))
    stopped = d.start(wf("stopped", py("t")))
    d.claim_one("t")
    assert d.store.runs.cancel_run(stopped, now=d.now)
    lost = d.start(wf("lost", py("t", retries=10)))
    for _ in range(planner.MAX_LOST_ATTEMPTS):
        d.claim_one("t", lease=5.0)
        d.clock.advance(6.0)
        assert d.store.runs.reap_expired(now=d.now) == 1

    assert second.pass_once() == 0
    assert first.pass_once() == 3
    assert first.pass_once() == 0  # read once: the cursor moved past them
    first.stop()  # gives the lease up: the other share goes on from the same cursor
    later = d.start(wf("later", py("t")))
    d.fail(d.claim_one("t"))
    assert second.pass_once() == 1
    tracer.shutdown()
    wait_for("the spans", lambda: len(receiver.spans) >= 4, 10, str)

    by_name = {s.name: s for s in receiver.spans}
    names = sorted(s.name for s in receiver.spans)
    assert names == ["run later", "run lost", "run ok", "run stopped"]
    assert by_name["run later"].span_id == run_span_id(later) and by_name["run later"].failed
    for name, run_id in (("ok", ok), ("stopped", stopped), ("lost", lost)):
        span = by_name[f"run {name}"]
        assert span.span_id == run_span_id(run_id) and span.trace_id == trace_id_of(run_id)
        assert span.parent is None
    assert by_name["run ok"].attributes["orchestrion.outcome"] == "succeeded"
    assert not by_name["run ok"].failed
    assert by_name["run stopped"].attributes["orchestrion.outcome"] == "canceled"
    assert not by_name["run stopped"].failed
    assert by_name["run lost"].attributes["orchestrion.outcome"] == "failed"
    assert by_name["run lost"].failed
    assert "worker lost" in str(by_name["run lost"].attributes["orchestrion.error"])

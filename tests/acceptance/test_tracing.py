"""Traces from real ``orchestrion run`` processes to an OTLP/HTTP receiver on loopback.

The receiver is a tiny HTTP server in this test that decodes each export with the
opentelemetry-proto package; the same server answers the workflow's HTTP task and records
the ``traceparent`` it was sent. A run with a retried task, an HTTP task, a shell task and a
sub-workflow gives one trace: its run span the root, each attempt under its run's span, the
child run under the attempt that started it; the HTTP server saw its attempt's span, the
shell task its ``TRACEPARENT``. A failing saga shows its compensation as undo spans. The
JSON logs name the attempt's trace and span. Off (no ``OTEL_*``), a worker imports no
OpenTelemetry at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from orchestrion.telemetry.tracing import attempt_span_id, run_span_id, trace_id_of
from tests.acceptance.test_metrics_processes import query
from tests.acceptance.test_server import wait_for
from tests.helpers import database_url_for, db_arg
from tests.processes import Proc

FLOWS = """
import os
from typing import Any

from orchestrion.spec.python import http, shell, task, workflow

RECEIVER = os.environ["RECEIVER"]


@task(retries=1, backoff="50ms")
def flaky(ctx: Any) -> int:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    ctx.logger.info("second attempt")
    return 1


@task
def leaf(n: int) -> int:
    return n * 2


@workflow
def child(n: int = 1):
    leaf(n)


@workflow
def main():
    first = flaky()
    http("call", f"{RECEIVER}/hello", expect_status=[200])
    shell("env", script='echo "$TRACEPARENT"')
    child.options(name="sub")(n=first)


def unreserve(result: Any, **_: Any) -> None:
    return None


@task(undo=unreserve)
def reserve() -> int:
    return 1


@task
def charge(stock: int, ctx: Any) -> None:
    ctx.logger.warning("charging the card")
    raise ValueError("card declined")


@workflow
def saga():
    charge(reserve())


@task
def items() -> list[int]:
    return list(range(12))


@task
def part(i: int) -> int:
    import time

    time.sleep(0.2)  # long enough that both workers take some
    return i


@task
def total(parts: list[int]) -> int:
    return sum(parts)


@workflow
def fan():
    total(part.map(items()))
"""


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: int
    span_id: int
    parent: int | None
    attributes: dict[str, Any]
    failed: bool


class Receiver:
    """OTLP/HTTP traces at ``/v1/traces``; ``GET /hello`` records its ``traceparent``."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.traceparents: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.take(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:
                receiver.traceparents.append(self.headers.get("traceparent"))
                answer = b'{"ok": true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def take(self, request: ExportTraceServiceRequest) -> None:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for s in scope.spans:
                    attributes = {a.key: _value(a.value) for a in s.attributes}
                    self.spans.append(
                        Span(
                            name=s.name,
                            trace_id=int.from_bytes(s.trace_id, "big"),
                            span_id=int.from_bytes(s.span_id, "big"),
                            parent=int.from_bytes(s.parent_span_id, "big") or None,
                            attributes=attributes,
                            failed=s.status.code == 2,  # STATUS_CODE_ERROR
                        )
                    )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def _env(receiver: Receiver) -> dict[str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "RECEIVER": receiver.url,
        "ORCHESTRION_HTTP_ALLOW": "127.0.0.1/32",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{receiver.url}/v1/traces",
        "OTEL_SERVICE_NAME": "orchestrion-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    env.pop("ORCHESTRION_DATABASE_URL", None)
    return env


def _run(tmp_path: Path, receiver: Receiver, workflow: str) -> subprocess.CompletedProcess[str]:
    env = _env(receiver)
    args = ["run", str(tmp_path / "flows.py"), "-w", workflow, "--db", db_arg(tmp_path / "t.db")]
    return subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_run_is_one_trace_with_attempts_children_and_propagation(
    tmp_path: Path, receiver: Receiver
) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    done = _run(tmp_path, receiver, "main")
    assert done.returncode == 0, done.stdout + done.stderr
    db = database_url_for(tmp_path / "t.db")
    [(root,)] = query(db, "SELECT id FROM runs WHERE parent_task_run_id IS NULL")
    [(child,)] = query(db, "SELECT id FROM runs WHERE parent_task_run_id IS NOT NULL")
    trace = trace_id_of(root)
    wait_for("the spans", lambda: len(receiver.spans) >= 8, 30, lambda: str(receiver.spans))
    spans = receiver.spans
    assert {s.trace_id for s in spans} == {trace}, spans
    by_name: dict[str, list[Span]] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)

    [run] = by_name["run main"]
    assert run.parent is None and run.span_id == run_span_id(root)
    assert run.attributes["orchestrion.outcome"] == "succeeded"
    for name in ("task flaky", "task call", "task env", "task sub"):
        assert all(s.parent == run.span_id for s in by_name[name]), name
    first, second = sorted(by_name["task flaky"], key=lambda s: s.attributes["orchestrion.attempt"])
    assert first.failed and first.attributes["orchestrion.retry"] is False
    assert not second.failed and second.attributes["orchestrion.retry"] is True

    [sub] = by_name["task sub"]
    [child_run] = by_name["run child"]
    assert child_run.span_id == run_span_id(child) and child_run.parent == sub.span_id
    [leaf] = by_name["task leaf"]
    assert leaf.parent == child_run.span_id

    [call] = by_name["task call"]
    assert receiver.traceparents == [f"00-{trace:032x}-{call.span_id:016x}-01"]
    [(shell_result,)] = query(db, "SELECT result FROM task_runs WHERE task_name = 'env'")
    [env_span] = by_name["task env"]
    assert json.loads(shell_result) == f"00-{trace:032x}-{env_span.span_id:016x}-01"
    [(task_run_id, epoch)] = query(
        db, "SELECT id, lease_epoch FROM task_runs WHERE task_name = 'call'"
    )
    assert call.span_id == attempt_span_id(root, task_run_id, epoch)


def test_compensation_shows_as_undo_spans(tmp_path: Path, receiver: Receiver) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    done = _run(tmp_path, receiver, "saga")
    assert done.returncode != 0, done.stdout + done.stderr
    wait_for("the spans", lambda: any(s.name == "run saga" for s in receiver.spans), 30, str)
    by_name = {s.name: s for s in receiver.spans}
    run, undo = by_name["run saga"], by_name["undo reserve"]
    assert run.failed and run.attributes["orchestrion.outcome"] == "failed"
    assert undo.parent == run.span_id and undo.attributes["orchestrion.compensation"] is True
    assert by_name["task charge"].failed


def test_json_logs_carry_the_attempt_trace_and_span(tmp_path: Path, receiver: Receiver) -> None:
    """A real ``orchestrion worker --log-format json``: what a task logs while it runs is a
    JSON line naming its attempt's trace and span, the ones the receiver got."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "flows.py").write_text(FLOWS)
    db = db_arg(tmp_path / "t.db")
    args = ["worker", "--workflows", str(flows), "--db", db, "--log-format", "json"]
    worker = Proc("worker", args, tmp_path, _env(receiver), tmp_path)
    try:
        url = database_url_for(tmp_path / "t.db")
        registered = "SELECT count(*) FROM workflow_current WHERE name = 'saga'"

        def ready() -> bool:
            try:
                return bool(query(url, registered)[0][0])
            except Exception:  # the database is not made yet
                return False

        wait_for("the worker's workflows", ready, 60, worker.output)
        trigger = [sys.executable, "-m", "orchestrion.cli.main", "trigger", "saga", "--db", db]
        started = subprocess.run(trigger, env=_env(receiver), capture_output=True, text=True)
        assert started.returncode == 0, started.stdout + started.stderr
        wait_for("run saga", lambda: _named(receiver, "run saga"), 60, worker.output)
    finally:
        worker.signal(signal.SIGTERM)
        worker.wait(30)
    entries = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    [charging] = [e for e in entries if e["event"] == "charging the card"]
    [span] = [s for s in receiver.spans if s.name == "task charge"]
    assert charging["trace_id"] == f"{span.trace_id:032x}"
    assert charging["span_id"] == f"{span.span_id:016x}"


def test_two_worker_processes_emit_one_trace_for_a_run(tmp_path: Path, receiver: Receiver) -> None:
    """The attempts of one run, run by two worker processes that share nothing but the
    database, land in one trace under the one run span: the ids are derived, not passed."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "flows.py").write_text(FLOWS)
    db = db_arg(tmp_path / "t.db")
    url = database_url_for(tmp_path / "t.db")
    workers = []
    try:
        ready = (
            "SELECT count(*) FROM workers WHERE state = 'running' AND EXISTS"
            " (SELECT 1 FROM workflow_current WHERE name = 'fan')"
        )
        for n, name in enumerate(("w1", "w2"), start=1):
            args = ["worker", "--workflows", str(flows), "--db", db, "-c", "3"]
            workers.append(Proc(name, args, tmp_path, _env(receiver), tmp_path))
            # One at a time: both register the workflows on the same new database.
            wait_for(f"worker {name}", _at_least(url, ready, n), 60, workers[-1].output)
        trigger = [sys.executable, "-m", "orchestrion.cli.main", "trigger", "fan", "--db", db]
        started = subprocess.run(trigger, env=_env(receiver), capture_output=True, text=True)
        assert started.returncode == 0, started.stdout + started.stderr
        wait_for("run fan", lambda: _named(receiver, "run fan"), 60, workers[0].output)
    finally:
        for worker in workers:
            worker.signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(30)
    [(root,)] = query(url, "SELECT id FROM runs")
    spans = receiver.spans
    [run] = [s for s in spans if s.name == "run fan"]
    attempts = [s for s in spans if s.name in ("task items", "task part", "task total")]
    assert len(attempts) == 14 and {s.trace_id for s in spans} == {trace_id_of(root)}
    assert all(s.parent == run.span_id for s in attempts)
    assert len({s.attributes["orchestrion.worker"] for s in attempts}) == 2


def _at_least(url: str, sql: str, n: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return int(query(url, sql)[0][0]) >= n
        except Exception:  # the database is not made yet
            return False

    return check


def _named(receiver: Receiver, name: str) -> bool:
    return any(s.name == name for s in receiver.spans)


def _otel_modules(imports: str) -> list[str]:
    code = (
        f"import sys; import {imports};"
        "from orchestrion.telemetry.tracing import start_tracing;"
        "assert start_tracing() is None;"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('opentelemetry'))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_tracing_off_imports_no_opentelemetry_sdk() -> None:
    """Off, a worker imports no OpenTelemetry at all; the server none of the SDK or the
    exporter (FastAPI itself imports the OpenTelemetry API, which costs nothing unused)."""
    assert _otel_modules("orchestrion.worker.loop, orchestrion.app.runtime") == []
    loaded = _otel_modules("orchestrion.cli.main, orchestrion.server")
    assert not [m for m in loaded if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))]


ENDINGS = """
import time
from typing import Any

from orchestrion.spec.python import task, workflow


@task
def wait(ctx: Any) -> None:
    while not ctx.should_cancel():
        time.sleep(0.05)


@workflow
def slow():
    wait()


@workflow(timeout="1s")
def late():
    wait()
"""


def test_canceled_and_timed_out_runs_get_one_root_span_each(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Runs no worker outcome ends: one canceled by ``orchestrion cancel`` from a process
    that does not trace at all, one timed out by the maintenance duty. Each gets its root
    span, once, from the ``traces`` duty of the tracing worker; the timeout is an error,
    the cancel is not; the canceled attempts still show as spans under their runs."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "flows.py").write_text(ENDINGS)
    db = db_arg(tmp_path / "t.db")
    url = database_url_for(tmp_path / "t.db")
    args = ["worker", "--workflows", str(flows), "--db", db]
    worker = Proc("worker", args, tmp_path, _env(receiver), tmp_path)
    plain = {k: v for k, v in _env(receiver).items() if not k.startswith("OTEL_")}

    def cli(*words: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", *words, "--db", db],
            env=plain,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    try:
        registered = "SELECT count(*) FROM workflow_current WHERE name = 'late'"
        wait_for("the worker's workflows", _at_least(url, registered, 1), 60, worker.output)
        cli("trigger", "slow")
        cli("trigger", "late")
        running = "SELECT count(*) FROM task_runs WHERE state = 'running'"
        wait_for("both tasks running", _at_least(url, running, 2), 60, worker.output)
        [(slow_id,)] = query(url, "SELECT id FROM runs WHERE workflow = 'slow'")
        cli("cancel", slow_id)
        wait_for(
            "both run spans",
            lambda: _named(receiver, "run slow") and _named(receiver, "run late"),
            60,
            worker.output,
        )
    finally:
        worker.signal(signal.SIGTERM)
        worker.wait(30)
    [(late_id,)] = query(url, "SELECT id FROM runs WHERE workflow = 'late'")
    spans = receiver.spans
    [slow] = [s for s in spans if s.name == "run slow"]
    [late] = [s for s in spans if s.name == "run late"]
    assert slow.span_id == run_span_id(slow_id) and slow.trace_id == trace_id_of(slow_id)
    assert slow.parent is None and not slow.failed
    assert slow.attributes["orchestrion.outcome"] == "canceled"
    assert late.span_id == run_span_id(late_id) and late.parent is None and late.failed
    assert late.attributes["orchestrion.outcome"] == "failed"
    assert late.attributes["orchestrion.error"] == "run timed out"
    attempts = {s.attributes["orchestrion.run_id"]: s for s in spans if s.name == "task wait"}
    assert attempts[slow_id].parent == slow.span_id
    assert attempts[late_id].parent == late.span_id

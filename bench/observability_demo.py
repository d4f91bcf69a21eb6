"""Operators' eyes on a real failing run: a scrape, a trace tree and a failure email.

Usage: .venv/bin/python bench/observability_demo.py [--keep DIR]

Starts, all on loopback: an OTLP/HTTP trace receiver (decoding exports with the
opentelemetry-proto package), a real SMTP server (aiosmtpd, a dev dependency), and
``orchestrion server --workers 1`` on a new SQLite database with tracing on
(``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). It configures an email channel and a
``run.failed`` rule with the CLI (``orchestrion notifications ... --server``), triggers a
saga whose charge fails twice (one retry) and whose reservation is then compensated, and
prints (a) an excerpt of ``GET /metrics``, (b) the trace tree the receiver got, (c) the
failure email. Nothing is mocked; every process is the real command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiosmtpd.controller import Controller
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

FLOWS = """
from typing import Any

from orchestrion.spec.python import task, workflow


def release(result: Any, **_: Any) -> None:
    print("released reservation", result)


@task(undo=release)
def reserve() -> str:
    return "R-1001"


@task(retries=1, backoff="100ms")
def charge(reservation: str, ctx: Any) -> None:
    ctx.logger.warning("charging for %s", reservation)
    raise ValueError("card declined")


@workflow(tags=["shop"])
def checkout():
    charge(reserve())
"""

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


class Traces:
    """OTLP/HTTP receiver: every span exported to ``/v1/traces``."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                request = ExportTraceServiceRequest()
                request.ParseFromString(self.rfile.read(int(self.headers["content-length"])))
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        for s in scope.spans:
                            spans.append(
                                {
                                    "name": s.name,
                                    "trace": s.trace_id.hex(),
                                    "id": s.span_id.hex(),
                                    "parent": s.parent_span_id.hex() or None,
                                    "start": s.start_time_unix_nano,
                                    "ms": (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6,
                                    "error": s.status.message if s.status.code == 2 else None,
                                    "attrs": {
                                        a.key: getattr(a.value, a.value.WhichOneof("value"))
                                        for a in s.attributes
                                    },
                                }
                            )
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tree(self) -> str:
        children: dict[str | None, list[dict[str, Any]]] = {}
        for s in self.spans:
            children.setdefault(s["parent"], []).append(s)
        lines: list[str] = []

        def show(span: dict[str, Any], depth: int) -> None:
            a = span["attrs"]
            extra = [f"outcome={a['orchestrion.outcome']}"]
            if "orchestrion.attempt" in a:
                extra.append(f"attempt={a['orchestrion.attempt']}")
            if a.get("orchestrion.compensation"):
                extra.append("compensation")
            if span["error"]:
                extra.append(f"ERROR: {span['error'][:60]!r}")
            lines.append(
                f"{'  ' * depth}{span['name']}  [{span['id']}] {span['ms']:.0f} ms  "
                + " ".join(extra)
            )
            for child in sorted(children.get(span["id"], []), key=lambda c: c["start"]):
                show(child, depth + 1)

        for root in children.get(None, []):
            lines.append(f"trace {root['trace']}")
            show(root, 1)
        return "\n".join(lines)


class Mailbox:
    """aiosmtpd handler keeping every message it is sent."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="orchestrion-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    (root / "flows").mkdir(exist_ok=True)
    (root / "flows" / "checkout.py").write_text(FLOWS)
    traces, mailbox = Traces(), Mailbox()
    smtp_port, port = free_port(), free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    key = subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", "secrets", "generate-key"],
        capture_output=True, text=True, check=True,
    ).stdout.split()[0]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ORCHESTRION_"))},
        "ORCHESTRION_MASTER_KEY": key,
        "ORCHESTRION_CREDENTIALS_FILE": str(root / "credentials.json"),
        "ORCHESTRION_HTTP_ALLOW": "127.0.0.1/32",  # the SMTP server is on loopback
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": traces.url,
        "OTEL_SERVICE_NAME": "orchestrion-demo",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "PYTHONUNBUFFERED": "1",
    }
    db = f"sqlite:///{root / 'orchestrion.db'}"
    log = (root / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestrion.cli.main", "server", "--port", str(port),
         "--workers", "1", "--workflows", str(root / "flows"), "--db", db],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        _drive(root, url, env, traces, mailbox, smtp_port)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        smtp.stop()
        traces.server.shutdown()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def _drive(
    root: Path, url: str, env: dict[str, str], traces: Traces, mailbox: Mailbox, smtp_port: int
) -> None:
    """Configure the notification, run the failing workflow and print what was seen."""
    token = wait_for("the server's first start", lambda: _token(root / "server.log"))
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
    env["ORCHESTRION_TOKEN"] = token

    def ready() -> bool:
        try:
            workers = http.get("/api/v1/workers").json()
            names = {w["name"] for w in http.get("/api/v1/workflows").json()}
        except (httpx.HTTPError, ValueError, TypeError):
            return False
        return "checkout" in names and any(w["state"] == "running" for w in workers)

    wait_for("the server, its worker and the workflow", ready)

    def cli(*words: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", *words, "--server", url],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"orchestrion {' '.join(words)}: {done.stdout}{done.stderr}")
        return done.stdout

    cli("notifications", "channels", "add", "default/mail", "--kind", "smtp",
        "--host", "127.0.0.1", "--port", str(smtp_port),
        "--sender", "orchestrion@example.com", "--to", "oncall@example.com")  # fmt: skip
    cli("notifications", "rules", "add", "default/failures", "--channel", "mail",
        "--on", "run.failed", "--workflows", "check*")  # fmt: skip
    made = http.post("/api/v1/workflows/checkout/runs", json={"params": {}})
    made.raise_for_status()
    run_id = made.json()["id"]

    def ended() -> str | None:
        state = str(http.get(f"/api/v1/runs/{run_id}").json()["state"])
        return state if state in ("succeeded", "failed", "canceled") else None

    state = wait_for(f"run {run_id}", ended)
    wait_for("the failure email", lambda: mailbox.messages)
    wait_for("the run's span", lambda: any(s["name"] == "run checkout" for s in traces.spans))
    time.sleep(1.0)  # the last batch of attempt spans
    scrape = http.get("/metrics").text
    print(f"run {run_id} of checkout ended {state}\n")
    print("=== (a) GET /metrics (excerpt) ===")
    print(_excerpt(scrape))
    print("\n=== (b) trace tree received by the OTLP/HTTP receiver ===")
    print(traces.tree())
    print("\n=== (c) failure email received by the SMTP server ===")
    email = message_from_bytes(mailbox.messages[0])
    print(f"To: {email['To']}\nSubject: {email['Subject']}\n")
    body = email.get_payload(decode=True)
    print(body.decode() if isinstance(body, bytes) else email.get_payload())


def _token(log: Path) -> str | None:
    for line in log.read_text().splitlines():
        if "API token:" in line:
            return line.split("API token:")[1].strip()
    return None


_SHOWN = (
    "orchestrion_runs_finished",
    "orchestrion_task_attempts_total",
    "orchestrion_run_duration_seconds_count",
    "orchestrion_queue_",
    "orchestrion_worker_",
    "orchestrion_database_roundtrip",
    "orchestrion_api_requests_total",
)


def _excerpt(scrape: str) -> str:
    keep = [
        line
        for line in scrape.splitlines()
        if line.startswith(_SHOWN) and ('route="/metrics"' not in line)
    ]
    return "\n".join(keep[:40])


if __name__ == "__main__":
    main()

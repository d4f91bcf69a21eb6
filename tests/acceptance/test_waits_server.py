"""End to end: steps that wait without a worker, on a real ``orchestrion server`` (its
scheduler runs the waits duty) and a real worker process, over the API and the CLI.

Approvals approved, rejected, timed out and refused to a principal without the role;
signals sent before and after their step waits; an event; sensors (a file, an HTTP
server on loopback) that come true; a worker killed and replaced while runs wait; and N
runs waiting on approvals holding no worker slot.
"""

from __future__ import annotations

import http.server
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_server import free_port, wait_for
from tests.helpers import database_url_for, db_arg, seed_admin
from tests.processes import Proc

FINAL = ("succeeded", "failed", "canceled")

FLOWS = """\
name: {name}
tasks:
{tasks}
"""

#: name -> tasks (YAML, indented under ``tasks:``).
WORKFLOWS = {
    "ship": """\
  build:
    shell: [echo, built]
  ship:
    depends_on: [build]
    approval: {approvers: {role: editor}, message: "Ship it?"}
  deploy:
    depends_on: [ship]
    shell: [echo, deployed]
""",
    "gate": """\
  ok:
    approval: {}
""",
    "hurry": """\
  quick:
    approval: {timeout: 1s, on_timeout: reject}
""",
    "lenient": """\
  quick:
    approval: {timeout: 1s, on_timeout: approve}
""",
    "sig_after": """\
  go:
    wait_for: {signal: go}
""",
    "sig_before": """\
  hold:
    approval: {}
  go:
    depends_on: [hold]
    wait_for: {signal: go}
""",
    "sig_timeout": """\
  go:
    wait_for: {signal: never, timeout: 1s}
""",
    "on_event": """\
  landed:
    wait_for: {event: shipment.landed, filter: "event.data.port == 'rotterdam'"}
""",
    "on_file": """\
  arrived:
    wait_for: {file: "{{FILE}}", every: 0.2s}
""",
    "on_http": """\
  up:
    wait_for: {http: "{{URL}}", every: 0.2s}
""",
    "on_sql": """\
  stocked:
    wait_for: {sql: {connection: stock, query: "SELECT n, sku FROM stock"}, every: 0.2s}
""",
}


class _Health(http.server.BaseHTTPRequestHandler):
    """Answers 503 until `up` is set, then 200."""

    up = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200 if self.up.is_set() else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class WaitCluster:
    """One server (one worker inside it unless `workers=0`) on the workflows above."""

    def __init__(self, root: Path, *, workers: int = 0) -> None:
        self.root = root
        self.flows = root / "flows"
        self.flows.mkdir()
        self.file = root / "arrived.flag"
        self.health = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
        threading.Thread(target=self.health.serve_forever, daemon=True).start()
        health_url = f"http://127.0.0.1:{self.health.server_address[1]}/health"
        for name, tasks in WORKFLOWS.items():
            text = FLOWS.format(name=name, tasks=tasks)
            text = text.replace("{{FILE}}", str(self.file)).replace("{{URL}}", health_url)
            (self.flows / f"{name}.yaml").write_text(text)
        self.work = root / "work"
        self.work.mkdir()
        self.logs = root / "logs"
        self.logs.mkdir()
        self.db = root / "waits.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        token = seed_admin(database_url_for(self.db))
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
            "COLUMNS": "250",
            "ORCHESTRION_LEASE_SECONDS": "3",
            "ORCHESTRION_HEARTBEAT_SECONDS": "0.5",
            "ORCHESTRION_HTTP_ALLOW": "127.0.0.1/32",  # the HTTP sensor's loopback server
            "ORCHESTRION_TOKEN": token,
            "ORCHESTRION_CREDENTIALS_FILE": str(root / "credentials.json"),
        }
        for name in ("ORCHESTRION_DATABASE_URL", "ORCHESTRION_SERVER"):
            self.env.pop(name, None)
        self.procs: list[Proc] = []
        self.http = httpx.Client(
            base_url=self.url, timeout=10.0, headers={"Authorization": f"Bearer {token}"}
        )
        self.start(
            "server", "server", "--port", self.port, "--workers", workers,
            "--workflows", self.flows, "--db", db_arg(self.db),
        )  # fmt: skip

    def start(self, name: str, *args: Any) -> Proc:
        proc = Proc(name, [str(a) for a in args], self.work, self.env, self.logs)
        self.procs.append(proc)
        return proc

    def cli(self, *args: str, local: bool = False) -> subprocess.CompletedProcess[str]:
        """``orchestrion ARGS`` to completion: through the server, or on the database."""
        where = ["--db", db_arg(self.db)] if local else ["--server", self.url]
        return subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", *args, *where],
            cwd=self.work, env=self.env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip

    def report(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.output()[-5000:]}" for p in self.procs)

    def wait_ready(self, workers: int) -> None:
        def ready() -> bool:
            dead = [p for p in self.procs if not p.alive()]
            if dead:
                pytest.fail(f"{dead[0].name} exited early\n{self.report()}")
            try:
                names = {w["name"] for w in self.http.get("/api/v1/workflows").json()}
                running = [w for w in self.http.get("/api/v1/workers").json()
                           if w["state"] == "running"]  # fmt: skip
            except (httpx.HTTPError, ValueError, TypeError):
                return False
            return set(WORKFLOWS) <= names and len(running) >= workers

        wait_for("the server and its workflows", ready, 30.0, self.report)

    def trigger(self, workflow: str) -> str:
        made = self.http.post(f"/api/v1/workflows/{workflow}/runs", json={"params": {}})
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def tasks(self, run_id: str) -> dict[str, dict[str, Any]]:
        answer = self.http.get(f"/api/v1/runs/{run_id}/tasks").json()
        return {t["task"]: t for t in answer}

    def waiting(self, run_id: str, task: str) -> dict[str, Any]:
        """Until the run's task waits; its wait as the API lists it."""

        def found() -> dict[str, Any] | None:
            for wait in self.http.get(f"/api/v1/runs/{run_id}/waits").json():
                if wait["task"] == task:
                    return dict(wait)
            return None

        result: dict[str, Any] = wait_for(f"{task} of {run_id} to wait", found, 20, self.report)
        return result

    def wait_run(self, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            run: dict[str, Any] = self.http.get(f"/api/v1/runs/{run_id}").json()
            return run if run["state"] in FINAL else None

        result: dict[str, Any] = wait_for(f"run {run_id}", done, timeout, self.report)
        return result

    def close(self) -> None:
        self.http.close()
        self.health.shutdown()
        self.health.server_close()
        for proc in self.procs:
            proc.kill_group()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WaitCluster]:
    c = WaitCluster(tmp_path_factory.mktemp("waits"))
    worker = c.start("worker-1", "worker", "--workflows", c.flows, "--db", db_arg(c.db),
                     "--concurrency", 2, "--grace", 1)  # fmt: skip
    try:
        c.wait_ready(workers=1)
        c.worker = worker  # type: ignore[attr-defined]
        yield c
    finally:
        c.close()


def test_an_approval_approved_through_the_api_lets_the_run_go_on(cluster: WaitCluster) -> None:
    run_id = cluster.trigger("ship")
    wait = cluster.waiting(run_id, "ship")
    assert wait["kind"] == "approval"
    assert wait["details"] == {"role": "editor", "message": "Ship it?"}
    assert cluster.tasks(run_id)["ship"]["state"] == "waiting"
    answer = cluster.http.post(
        f"/api/v1/runs/{run_id}/tasks/ship/approve", json={"reason": "release notes ok"}
    )
    assert answer.status_code == 200, answer.text
    assert cluster.wait_run(run_id)["state"] == "succeeded"
    tasks = cluster.tasks(run_id)
    assert tasks["ship"]["result"] == {
        "approved": True, "by": "token:tests", "reason": "release notes ok"
    }  # fmt: skip
    assert tasks["ship"]["attempts"] == 0  # no worker ever held it
    assert tasks["deploy"]["state"] == "succeeded"
    again = cluster.http.post(f"/api/v1/runs/{run_id}/tasks/ship/approve", json={})
    assert again.status_code == 409, again.text  # decided already
    assert "is succeeded" in again.json()["error"]["message"]
    kinds = [e["kind"] for e in cluster.http.get(f"/api/v1/runs/{run_id}/events").json()]
    assert "wait.approval_pending" in kinds and "wait.approved" in kinds
    audit = cluster.http.get("/api/v1/audit", params={"action": "run.approve"}).json()
    assert any(run_id in str(a) and a["outcome"] == "ok" for a in audit["items"]), audit


def test_an_approval_rejected_from_the_cli_fails_its_run_with_the_reason(
    cluster: WaitCluster,
) -> None:
    run_id = cluster.trigger("ship")
    cluster.waiting(run_id, "ship")
    done = cluster.cli("reject", run_id, "ship", "--reason", "not on a Friday")
    assert done.returncode == 0, done.stderr
    assert "rejected task ship" in done.stdout
    run = cluster.wait_run(run_id)
    assert run["state"] == "failed"
    ship = cluster.tasks(run_id)["ship"]
    assert ship["error"] == "rejected by token:tests: not on a Friday"
    assert cluster.tasks(run_id)["deploy"]["state"] == "upstream_failed"


def test_the_local_cli_approves_on_the_database(cluster: WaitCluster) -> None:
    run_id = cluster.trigger("gate")
    cluster.waiting(run_id, "ok")
    listed = cluster.cli("waits", run_id, local=True)
    assert listed.returncode == 0 and "gate.ok  waits on approval" in listed.stdout, listed
    done = cluster.cli("approve", run_id, "ok", "--reason", "fine", local=True)
    assert done.returncode == 0, done.stderr
    assert cluster.wait_run(run_id)["state"] == "succeeded"
    assert cluster.tasks(run_id)["ok"]["result"]["reason"] == "fine"


def test_a_principal_without_the_role_is_refused_naming_it(cluster: WaitCluster) -> None:
    run_id = cluster.trigger("ship")
    cluster.waiting(run_id, "ship")
    made = cluster.http.post(
        "/api/v1/tokens",
        json={"name": "op", "bindings": {"default": "operator"}, "expires": "never"},
    )
    assert made.status_code in (200, 201), made.text
    operator = made.json()["token"]
    refused = cluster.http.post(
        f"/api/v1/runs/{run_id}/tasks/ship/approve",
        json={},
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert refused.status_code == 403, refused.text
    message = refused.json()["error"]["message"]
    assert "needs role editor" in message and "operator" in message, message
    assert cluster.tasks(run_id)["ship"]["state"] == "waiting"  # undecided
    denied = cluster.http.get("/api/v1/audit", params={"action": "run.approve"}).json()
    assert any(run_id in str(a) and a["outcome"] != "ok" for a in denied["items"]), denied
    cluster.http.post(f"/api/v1/runs/{run_id}/cancel")


def test_timeouts_decide_by_on_timeout(cluster: WaitCluster) -> None:
    rejected = cluster.trigger("hurry")
    approved = cluster.trigger("lenient")
    silent = cluster.trigger("sig_timeout")
    assert cluster.wait_run(rejected)["state"] == "failed"
    assert "approval timed out after 1s: rejected" in cluster.tasks(rejected)["quick"]["error"]
    assert cluster.wait_run(approved)["state"] == "succeeded"
    assert cluster.tasks(approved)["quick"]["result"]["by"] == "timeout"
    assert cluster.wait_run(silent)["state"] == "failed"
    assert cluster.tasks(silent)["go"]["error"] == "wait for signal timed out after 1s"


def test_a_signal_reaches_its_step_sent_after_or_before_it_waits(cluster: WaitCluster) -> None:
    after = cluster.trigger("sig_after")
    cluster.waiting(after, "go")
    sent = cluster.http.post(f"/api/v1/runs/{after}/signals", json={"name": "go", "data": [1, 2]})
    assert sent.status_code == 201, sent.text
    assert sent.json()["delivered_to"] == "go"
    assert cluster.wait_run(after)["state"] == "succeeded"
    assert cluster.tasks(after)["go"]["result"] == [1, 2]

    before = cluster.trigger("sig_before")
    cluster.waiting(before, "hold")
    done = cluster.cli("signal", before, "go", '{"colour": "green"}')
    assert done.returncode == 0, done.stderr
    assert "kept until a step waits on it" in done.stdout
    assert cluster.tasks(before)["go"]["state"] == "pending"
    cluster.http.post(f"/api/v1/runs/{before}/tasks/hold/approve", json={})
    assert cluster.wait_run(before)["state"] == "succeeded"
    assert cluster.tasks(before)["go"]["result"] == {"colour": "green"}

    late = cluster.http.post(f"/api/v1/runs/{before}/signals", json={"name": "go"})
    assert late.status_code == 409, late.text  # the run finished


def test_an_event_resolves_the_step_whose_filter_matches(cluster: WaitCluster) -> None:
    run_id = cluster.trigger("on_event")
    cluster.waiting(run_id, "landed")
    for port in ("hamburg", "rotterdam"):
        sent = cluster.http.post(
            "/api/v1/events", json={"type": "shipment.landed", "payload": {"port": port}}
        )
        assert sent.status_code < 300, sent.text
        if port == "hamburg":
            assert cluster.tasks(run_id)["landed"]["state"] == "waiting"
    assert cluster.wait_run(run_id)["state"] == "succeeded"
    assert cluster.tasks(run_id)["landed"]["result"]["data"] == {"port": "rotterdam"}


def test_sensors_come_true_a_file_and_an_http_server(cluster: WaitCluster) -> None:
    on_file, on_http = cluster.trigger("on_file"), cluster.trigger("on_http")
    cluster.waiting(on_file, "arrived")
    cluster.waiting(on_http, "up")
    wait_for(
        "a few checks",
        lambda: all(
            w["checks"] >= 2
            for w in cluster.http.get("/api/v1/waits").json()
            if w["run_id"] in (on_file, on_http)
        ),
        20,
        cluster.report,
    )
    assert cluster.tasks(on_file)["arrived"]["state"] == "waiting"
    cluster.file.write_text("here")
    _Health.up.set()
    assert cluster.wait_run(on_file)["state"] == "succeeded"
    assert cluster.tasks(on_file)["arrived"]["result"]["path"] == str(cluster.file)
    assert cluster.wait_run(on_http)["state"] == "succeeded"
    assert cluster.tasks(on_http)["up"]["result"] == {"status": 200}


def test_a_sql_sensor_retries_a_missing_table_then_comes_true(cluster: WaitCluster) -> None:
    db = cluster.root / "stock.db"
    made = cluster.cli(
        "connections", "create", "default/stock", "--kind", "sqlite", "--url", f"sqlite:///{db}"
    )
    assert made.returncode == 0, made.stderr
    run = cluster.trigger("on_sql")
    cluster.waiting(run, "stocked")

    def failed_once() -> bool:
        events = cluster.http.get(f"/api/v1/runs/{run}/events").json()
        return any(e["kind"] == "wait.check_failed" for e in events)

    wait_for("a failed check in the history", failed_once, 20, cluster.report)
    assert cluster.tasks(run)["stocked"]["state"] == "waiting"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE stock (n INTEGER, sku TEXT)")
        conn.execute("INSERT INTO stock VALUES (5, 'a')")
    conn.close()
    assert cluster.wait_run(run)["state"] == "succeeded"
    assert cluster.tasks(run)["stocked"]["result"] == {"n": 5, "sku": "a"}


def test_many_waiting_runs_hold_no_worker_and_survive_a_worker_restart(
    cluster: WaitCluster,
) -> None:
    n = 50
    runs = [cluster.trigger("gate") for _ in range(n)]
    wait_for(
        f"{n} approvals waiting",
        lambda: (
            len([w for w in cluster.http.get("/api/v1/waits").json() if w["run_id"] in runs]) == n
        ),
        30,
        cluster.report,
    )
    # No attempt exists for any of them: no worker slot was ever taken.
    for run_id in runs[:5]:
        assert cluster.http.get(f"/api/v1/runs/{run_id}/attempts").json() == []
    # The worker (2 slots) is free: a run with real work goes through meanwhile.
    busy = cluster.trigger("ship")
    cluster.waiting(busy, "ship")
    assert cluster.tasks(busy)["build"]["state"] == "succeeded"
    # A worker restart while they wait loses nothing.
    worker: Proc = cluster.worker  # type: ignore[attr-defined]
    worker.signal(signal.SIGKILL)
    worker.wait(10)
    replacement = cluster.start("worker-2", "worker", "--workflows", cluster.flows,
                                "--db", db_arg(cluster.db), "--concurrency", 2)  # fmt: skip
    cluster.worker = replacement  # type: ignore[attr-defined]
    for run_id in runs:
        answer = cluster.http.post(f"/api/v1/runs/{run_id}/tasks/ok/approve", json={})
        assert answer.status_code == 200, answer.text
    cluster.http.post(f"/api/v1/runs/{busy}/tasks/ship/approve", json={})
    assert cluster.wait_run(busy, timeout=60)["state"] == "succeeded"
    for run_id in runs:
        assert cluster.wait_run(run_id)["state"] == "succeeded"

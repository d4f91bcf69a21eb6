"""End to end: ``orchestrion server`` and ``orchestrion worker`` as real processes.

Real processes, real HTTP on a free loopback port, one SQLite file in ``tmp_path`` (or a
PostgreSQL schema with ``ORCHESTRION_TEST_DATABASE=postgres``). Leases
are shortened (``ORCHESTRION_LEASE_SECONDS=3``, heartbeats every 0.5 s) so that a dead
worker is noticed in seconds.

* every example runs to success on a server with two separate worker processes;
* a workflow written into the watched folder is registered and runs;
* ``orchestrion trigger --wait --server`` exit codes: 0 success, 1 failed, 2 bad input;
* the server listens on 127.0.0.1 only; hostile HTTP requests get a 4xx JSON error;
* SIGKILL of a worker mid-task: the attempt is ``lost`` once the lease expires and the other
  worker runs the task to success;
* SIGTERM of a worker: with a long grace the task finishes there (exit 0); with a short
  grace the attempt is released and retried elsewhere, without spending the task's retries;
* SIGTERM of the server: it exits promptly and takes its worker processes with it.

Every process writes to a log file in ``tmp_path``; teardown kills whatever is left and
prints the logs (pytest shows them when a test fails).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import EXAMPLES
from tests.helpers import database_url_for, db_arg, seed_admin
from tests.processes import Proc

LEASE = 3.0
HEARTBEAT = 0.5
FINAL = ("succeeded", "failed", "canceled")

#: The examples' workflows and parameters that make each succeed.
EXAMPLE_RUNS: dict[str, dict[str, Any]] = {
    "etl": {"day": "2026-03-01", "partitions": 3},
    "shell_pipeline": {},
    "api_chain": {"customer": "Grace"},
    "branching": {"mode": "full"},
    "saga": {"order_id": "E2E-1"},
    "nightly_report": {},
    "region_report": {"region": "apac"},
}

#: Test workflows, in the watched folder from the start: a slow task that ignores
#: cancellation, and a polite one that checks for it. Both write a marker file
#: (``markers/<tag>-<attempt>-<pid>``) when an attempt starts, and have no retries: any
#: second attempt comes from a lost or released lease, never from the retry budget.
SLOW_FLOWS = '''"""Slow tasks for the end-to-end tests."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from orchestrion.spec.python import task, workflow


def _mark(tag: str, ctx: Any) -> None:
    Path("markers").mkdir(exist_ok=True)
    Path("markers", f"{tag}-{ctx.attempt}-{os.getpid()}").write_text("started")


@task(retries=0)
def nap(tag: str, seconds: float, ctx: Any) -> dict[str, Any]:
    """Sleep without ever looking at cancellation."""
    _mark(tag, ctx)
    time.sleep(seconds)
    return {"pid": os.getpid(), "attempt": ctx.attempt}


@task(retries=0)
def polite(tag: str, seconds: float, ctx: Any) -> dict[str, Any]:
    """Work in small steps, stopping when asked."""
    _mark(tag, ctx)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.check_cancel()
        time.sleep(0.05)
    return {"pid": os.getpid(), "attempt": ctx.attempt}


@workflow
def e2e_slow(tag: str = "slow", seconds: float = 3.0):
    """One slow task."""
    nap(tag, seconds)


@workflow
def e2e_polite(tag: str = "polite", seconds: float = 3.0):
    """One slow task that honours cancellation."""
    polite(tag, seconds)
'''

HOT_YAML = """\
name: e2e_hot
description: Deployed while the server runs.
tasks:
  hello:
    shell: [echo, "hot deployed"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, on_fail: Callable[[], str] = str
) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{on_fail()}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Cluster:
    """A server and its workers on one database (a SQLite file, or a PostgreSQL schema with
    ``ORCHESTRION_TEST_DATABASE=postgres``), driven over HTTP."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.flows = root / "flows"
        shutil.copytree(EXAMPLES, self.flows, ignore=shutil.ignore_patterns("__pycache__"))
        (self.flows / "e2e_slow.py").write_text(SLOW_FLOWS)
        self.work = root / "work"  # every process's working directory
        self.work.mkdir()
        self.markers = self.work / "markers"
        self.logs = root / "logs"
        self.logs.mkdir()
        self.db = root / "orchestrion.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "ORCHESTRION_LEASE_SECONDS": str(LEASE),
            "ORCHESTRION_HEARTBEAT_SECONDS": str(HEARTBEAT),
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
            "COLUMNS": "250",
            # The api_chain example calls a demo API on loopback: allowed explicitly.
            "ORCHESTRION_HTTP_ALLOW": "127.0.0.1/32",
        }
        for name in ("ORCHESTRION_DATABASE_URL", "ORCHESTRION_SERVER"):
            self.env.pop(name, None)
        token = seed_admin(database_url_for(self.db))
        self.env["ORCHESTRION_TOKEN"] = token  # the CLI's remote commands use it
        self.env["ORCHESTRION_CREDENTIALS_FILE"] = str(root / "credentials.json")
        self.procs: list[Proc] = []
        self.http = httpx.Client(
            base_url=self.url, timeout=10.0, headers={"Authorization": f"Bearer {token}"}
        )

    # ------------------------------------------------------------------ processes

    def start(self, name: str, *args: Any) -> Proc:
        proc = Proc(name, [str(a) for a in args], self.work, self.env, self.logs)
        self.procs.append(proc)
        return proc

    def server(self, *extra: Any, workers: int = 0) -> Proc:
        return self.start(
            "server",
            "server",
            "--port",
            self.port,
            "--workers",
            workers,
            "--workflows",
            self.flows,
            "--db",
            db_arg(self.db),
            *extra,
        )

    def worker(self, name: str, *, grace: float = 10.0) -> Proc:
        return self.start(
            name,
            "worker",
            "--workflows",
            self.flows,
            "--db",
            db_arg(self.db),
            "--concurrency",
            4,
            "--grace",
            grace,
        )

    def report(self) -> str:
        return "\n".join(
            f"===== {p.name} (pid {p.pid}, exit {p.popen.poll()})\n{p.output()[-6000:]}"
            for p in self.procs
        )

    def close(self, *, show: bool = True) -> None:
        self.http.close()
        for proc in self.procs:
            proc.kill_group()
        if show:
            print(self.report())  # shown by pytest only when the test failed

    # ------------------------------------------------------------------ HTTP

    def get(self, path: str, **kw: Any) -> Any:
        response = self.http.get(path, **kw)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def _answer(self, path: str) -> httpx.Response | None:
        try:
            return self.http.get(path, timeout=2.0)
        except httpx.HTTPError:
            return None

    def wait_ready(self, *, workers: int, workflows: tuple[str, ...] = tuple(EXAMPLE_RUNS)) -> None:
        """Until the API is ready, the workflows are registered and `workers` run."""

        def ready() -> bool:
            dead = [p for p in self.procs if p.popen.poll() is not None]
            if dead:
                pytest.fail(f"{dead[0].name} exited early\n{self.report()}")
            answer = self._answer("/api/v1/ready")
            if answer is None or answer.status_code != 200:
                return False
            names = {w["name"] for w in self.get("/api/v1/workflows")}
            running = [w for w in self.get("/api/v1/workers") if w["state"] == "running"]
            return set(workflows) <= names and len(running) >= workers

        wait_for("the server, its workflows and workers", ready, 30.0, self.report)

    def trigger(self, workflow: str, params: dict[str, Any] | None = None) -> str:
        response = self.http.post(
            f"/api/v1/workflows/{workflow}/runs", json={"params": params or {}}
        )
        assert response.status_code == 201, (workflow, response.text)
        return str(response.json()["id"])

    def wait_run(self, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            run: dict[str, Any] = self.get(f"/api/v1/runs/{run_id}")
            return run if run["state"] in FINAL else None

        def why() -> str:
            return json.dumps(self.get(f"/api/v1/runs/{run_id}/tasks"), indent=1) + self.report()

        result: dict[str, Any] = wait_for(f"run {run_id}", finished, timeout, why)
        return result

    def attempts(self, run_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get(f"/api/v1/runs/{run_id}/attempts")
        return sorted(found, key=lambda a: (a["task_run_id"], a["number"]))

    def workers(self) -> dict[int, dict[str, Any]]:
        """Worker records by pid."""
        return {w["pid"]: w for w in self.get("/api/v1/workers")}

    def wait_marker(self, tag: str, attempt: int = 1, timeout: float = 15.0) -> int:
        """The pid of the process whose attempt `attempt` of task `tag` has started."""

        def started() -> int | None:
            for path in self.markers.glob(f"{tag}-{attempt}-*"):
                return int(path.name.rsplit("-", 1)[1])
            return None

        pid: int = wait_for(f"attempt {attempt} of {tag} to start", started, timeout, self.report)
        return pid

    def proc(self, pid: int) -> Proc:
        [proc] = [p for p in self.procs if p.pid == pid]
        return proc


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh cluster; the test starts the processes it needs."""
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A server (no embedded workers) and two worker processes, shared by the tests that
    leave them running."""
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.server()
        c.worker("worker-a")
        c.worker("worker-b")
        c.wait_ready(workers=2)
        yield c
    finally:
        c.close(show=False)  # `shared` shows the logs after each test


@pytest.fixture
def shared(running: Cluster) -> Iterator[Cluster]:
    """The shared cluster; its logs are printed (shown on failure) after each test."""
    yield running
    print(running.report())


# ---------------------------------------------------------------------------- examples


def test_every_example_succeeds_on_two_worker_processes(shared: Cluster) -> None:
    runs = {name: shared.trigger(name, params) for name, params in EXAMPLE_RUNS.items()}
    finished = {name: shared.wait_run(run_id, timeout=45) for name, run_id in runs.items()}
    states = {name: run["state"] for name, run in finished.items()}
    assert states == dict.fromkeys(EXAMPLE_RUNS, "succeeded"), shared.report()

    # the work really was shared between the two processes (over all runs)
    pids = {p.pid for p in shared.procs if p.name.startswith("worker")}
    by_id = {w["id"]: w["pid"] for w in shared.get("/api/v1/workers")}
    used = {by_id[a["worker"]] for run_id in runs.values() for a in shared.attempts(run_id)}
    assert used <= pids
    print(f"attempts ran on worker pids {sorted(used)} of {sorted(pids)}")

    # api_chain: its demo API lives in the worker that ran start_api; the HTTP tasks reach
    # it over loopback from either process. stop_api can only stop it in that process.
    chain = runs["api_chain"]
    tasks = {t["task"]: t for t in shared.get(f"/api/v1/runs/{chain}/tasks")}
    attempts = {a["task_run_id"]: a for a in shared.attempts(chain)}
    where = {name: by_id[attempts[t["id"]]["worker"]] for name, t in tasks.items()}
    assert tasks["pay_order"]["result"]["status"] == "paid"
    assert tasks["stop_api"]["result"] in ("stopped", "already stopped")
    if tasks["stop_api"]["result"] == "stopped":
        assert where["stop_api"] == where["start_api"]
    print(f"api_chain tasks by worker pid: {where}")


def test_both_workers_are_listed_with_recent_heartbeats(shared: Cluster) -> None:
    pids = {p.pid for p in shared.procs if p.name.startswith("worker")}
    time.sleep(2 * HEARTBEAT)
    workers = shared.workers()
    assert pids <= set(workers), workers
    now = time.time()
    for pid in pids:
        record = workers[pid]
        assert record["state"] == "running"
        assert str(pid) in record["id"]
        assert record["queues"] == ["default"]
        assert now - record["heartbeat_at"] < 3 * HEARTBEAT + 1.0, record


def test_a_workflow_written_into_the_watched_folder_is_registered_and_runs(
    shared: Cluster,
) -> None:
    (shared.flows / "e2e_hot.yaml").write_text(HOT_YAML)

    def registered() -> bool:
        answer = shared._answer("/api/v1/workflows/e2e_hot")
        return answer is not None and answer.status_code == 200

    wait_for("e2e_hot to be registered", registered, 10.0, shared.report)  # polled every 2 s
    run = shared.wait_run(shared.trigger("e2e_hot"))
    assert run["state"] == "succeeded"
    [line] = [x["line"] for x in shared.get(f"/api/v1/runs/{run['id']}/logs")["items"]]
    assert line == "hot deployed"


# ---------------------------------------------------------------------------- the trigger command


def test_trigger_wait_exit_codes(shared: Cluster) -> None:
    cases = {
        "success": (["etl", "-p", "day=2026-04-01"], 0),
        "failed run": (["saga", "-p", "fail_at=ship", "-p", "order_id=E2E-2"], 1),
        "unknown workflow": (["no_such_flow"], 2),
        "bad parameter value": (["etl", "-p", "partitions=many"], 2),
        "unknown parameter": (["etl", "-p", "nope=1"], 2),
    }
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    command = (sys.executable, "-m", "orchestrion.cli.main", "trigger")

    def run(case: str, args: list[str]) -> None:
        results[case] = subprocess.run(
            [*command, *args, "--wait", "--server", shared.url],
            cwd=shared.work,
            env=shared.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    threads = [threading.Thread(target=run, args=(c, a)) for c, (a, _) in cases.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for case, (_, code) in cases.items():
        res = results[case]
        assert res.returncode == code, (case, res.stdout, res.stderr)
    assert "run finished: succeeded" in results["success"].stdout
    assert "run finished: failed" in results["failed run"].stdout
    assert "no_such_flow" in results["unknown workflow"].stderr
    assert "partitions" in results["bad parameter value"].stderr
    assert "nope" in results["unknown parameter"].stderr


def test_remote_commands_act_under_the_token_and_are_audited_by_the_server(
    shared: Cluster,
) -> None:
    """``--server`` commands send the caller's token; a viewer's token is refused a write;
    the server writes the audit record; a secret's value never comes back."""
    value = "remote-sentinel-4e1d"

    def orch(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", *args, "--server", shared.url],
            cwd=shared.work, env=env, input=stdin, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip

    made = orch("secrets", "set", "default/remote-db", env=shared.env, stdin=value)
    assert made.returncode == 0 and "created secret default/remote-db" in made.stdout, made
    listed = orch("secrets", "list", "-o", "json", env=shared.env)
    assert listed.returncode == 0 and "remote-db" in listed.stdout and value not in listed.stdout
    viewer = orch("tokens", "create", "ro", "--role", "viewer", env=shared.env)
    assert viewer.returncode == 0, viewer
    as_viewer = {**shared.env, "ORCHESTRION_TOKEN": viewer.stdout.strip()}
    refused = orch("secrets", "delete", "default/remote-db", env=as_viewer)
    assert refused.returncode == 2 and "needs admin" in refused.stderr
    assert orch("runs", "list", env=as_viewer).returncode == 0  # reading is allowed
    gone = orch("secrets", "delete", "default/remote-db", env=shared.env)
    assert gone.returncode == 0, gone
    audit = orch("audit", "list", "--action", "secret.delete", "-o", "json", env=shared.env)
    outcomes = [(r["actor"], r["outcome"]) for r in json.loads(audit.stdout)]
    assert outcomes == [("tests", "ok"), ("ro", "denied")]
    assert value not in audit.stdout


def test_remote_commands_load_neither_the_app_nor_pydantic(shared: Cluster) -> None:
    """A ``--server`` command is a client of the API: it imports no App, no store roles, no
    spec and no pydantic, which cost a local command a third of a second of start-up
    (issue 20). Pinned by the modules a fresh process loads, not by time."""
    run_id = shared.trigger("shell_pipeline")
    shared.wait_run(run_id)
    waiting = shared.trigger("release_approval")  # takes its `deployed` signal early too
    heavy = (
        "pydantic",
        "orchestrion.app",
        "orchestrion.spec.model",
        "orchestrion.worker",
        "orchestrion.store.stores",
        "orchestrion.store.sql",
        "sqlite3",
    )
    commands = [
        ["runs", "list"],
        ["runs", "show", run_id],
        ["logs", run_id],
        ["workflows", "list"],
        ["trigger", "shell_pipeline", "--wait"],  # no --param: the spec is not fetched
        ["waits"],
        ["tokens", "list"],
        ["audit", "list"],
        ["secrets", "list"],
        ["connections", "list"],
        ["notifications", "channels", "list"],
        ["templates", "list"],
        ["signal", waiting, "deployed", '{"url": "u"}'],  # DATA checked as the API checks it
    ]
    for args in commands:
        probe = "\n".join(
            [
                "import contextlib, io, json, sys",
                "from orchestrion.cli.main import main",
                "code = 0",
                "with contextlib.redirect_stdout(io.StringIO()):",
                "    try:",
                f"        main({[*args, '--server', shared.url]!r})",
                "    except SystemExit as exc:",
                "        code = exc.code",
                f"found = [w for w in {list(heavy)!r}"
                " if any(m == w or m.startswith(w + '.') for m in sys.modules)]",
                "print(json.dumps([code, found]))",
            ]
        )
        out = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=shared.work,
            env=shared.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, (args, out.stderr)
        code, found = json.loads(out.stdout.strip().splitlines()[-1])
        assert (code, found) == (0, []), (args, out.stderr)
    # It would wait a day for its sign-off in the cluster the other tests share.
    assert shared.http.post(f"/api/v1/runs/{waiting}/cancel").status_code == 200


# ---------------------------------------------------------------------------- network exposure


def _local_addresses() -> set[str]:
    """This host's IPv4 addresses other than loopback (may be empty)."""
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(str(info[4][0]))
    except OSError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.123", 9))  # no packet is sent; picks the outbound address
            found.add(sock.getsockname()[0])
        except OSError:
            pass
    return {a for a in found if not a.startswith("127.") and a != "0.0.0.0"}


def test_the_server_listens_on_loopback_only(shared: Cluster) -> None:
    server = shared.procs[0]
    assert f"orchestrion server on http://127.0.0.1:{shared.port} " in server.output()
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port = local.rsplit(":", 1)
            if state == "0A" and int(port, 16) == shared.port:  # 0A: LISTEN
                listening.append(address)
    assert listening == ["0100007F"], listening  # 127.0.0.1, and nothing on IPv6
    for address in _local_addresses():
        with socket.socket() as sock, pytest.raises(OSError):
            sock.settimeout(2.0)
            sock.connect((address, shared.port))


# ---------------------------------------------------------------------------- hostile HTTP


def test_hostile_requests_get_a_4xx_json_error(shared: Cluster) -> None:
    long_name = "w" * 10_000

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65_536

    requests: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", "/api/v1/workflows/etl/runs", {"content": b"{" + b" " * 2_000_000 + b"}"}, 413),
        ("POST", "/api/v1/workflows/etl/runs", {"content": b'{"params": {'}, 422),
        ("POST", "/api/v1/workflows/etl/runs", {"content": b"\xff\xfe\x00garbage"}, 422),
        ("POST", "/api/v1/workflows/etl/runs", {"json": [1, 2, 3]}, 422),
        ("POST", "/api/v1/workflows/etl/runs", {"json": {"params": {"partitions": "x"}}}, 422),
        ("POST", "/api/v1/workflows/etl/runs", {"json": {"params": {}, "extra": 1}}, 422),
        ("POST", "/api/v1/workflows", {"json": {"name": "x", "tasks": "nope"}}, 422),
        ("GET", "/api/v1/no/such/route", {}, 404),
        ("DELETE", "/api/v1/workflows", {}, 405),
        ("GET", "/api/v1/runs/..%2F..%2Fetc%2Fpasswd", {}, 404),
        ("GET", "/api/v1/runs/%2e%2e", {}, 404),
        ("GET", "/api/v1/runs/r%C3%BCn-%E2%98%83-%F0%9F%92%A5", {}, 404),
        ("GET", "/api/v1/runs/%00%01", {}, 400),  # NUL: refused before anything reads it
        ("POST", "/api/v1/runs/..%2Fx/cancel", {}, 404),
        ("GET", f"/api/v1/workflows/{long_name}", {}, 404),
        ("POST", f"/api/v1/workflows/{long_name}/runs", {"json": {}}, 404),
        ("GET", "/api/v1/runs", {"params": {"cursor": "!!not-a-cursor!!"}}, 400),
        ("GET", "/api/v1/runs", {"params": {"limit": "-5"}}, 422),
        ("GET", "/api/v1/runs", {"params": {"state": "exploded"}}, 422),
        ("GET", "/api/v1/runs/x/logs", {"params": {"after": "1e99"}}, 422),
    ]
    problems = []
    for method, path, kw, status in requests:
        response = shared.http.request(method, path, **kw)
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        if response.status_code != status or not code:
            problems.append((method, path[:80], status, response.status_code, response.text[:200]))
    # a body with no Content-Length, streamed over the cap
    response = shared.http.post("/api/v1/workflows/etl/runs", content=chunks())
    if response.status_code != 413 or response.json()["error"]["code"] != "too_large":
        problems.append(("POST", "(chunked 2.6 MB)", 413, response.status_code, response.text))
    assert not problems, problems
    assert shared.http.get("/api/v1/health").json() == {"status": "ok"}  # still serving


# ---------------------------------------------------------------------------- losing a worker


def test_sigkill_of_a_worker_mid_task_is_retried_by_the_other(cluster: Cluster) -> None:
    cluster.server()
    cluster.worker("worker-a")
    cluster.worker("worker-b")
    cluster.wait_ready(workers=2, workflows=("e2e_slow",))
    run_id = cluster.trigger("e2e_slow", {"tag": "kill", "seconds": 3.0})
    victim_pid = cluster.wait_marker("kill", attempt=1)
    [first] = cluster.attempts(run_id)
    assert str(victim_pid) in first["worker"], first
    victim = cluster.proc(victim_pid)
    victim.signal(signal.SIGKILL)
    killed_at = time.time()
    assert victim.wait(5) == -signal.SIGKILL

    survivor_pid = cluster.wait_marker("kill", attempt=2, timeout=LEASE + 6)
    assert survivor_pid != victim_pid
    run = cluster.wait_run(run_id, timeout=15)
    assert run["state"] == "succeeded", cluster.report()
    lost, retried = cluster.attempts(run_id)
    assert (lost["number"], lost["outcome"], lost["worker"]) == (1, "lost", first["worker"])
    assert "lost" in (lost["error"] or "")
    assert retried["number"] == 2 and retried["outcome"] == "succeeded"
    assert str(survivor_pid) in retried["worker"] and str(victim_pid) not in retried["worker"]
    took = retried["started_at"] - killed_at
    assert took < LEASE + 4.0, f"retried {took:.1f}s after the kill"
    print(f"retried by the other worker {took:.2f}s after SIGKILL (lease {LEASE}s)")
    [task] = cluster.get(f"/api/v1/runs/{run_id}/tasks")
    assert task["result"] == {"pid": survivor_pid, "attempt": 2}


# ---------------------------------------------------------------------------- graceful shutdown


def test_sigterm_with_a_long_grace_lets_the_task_finish(cluster: Cluster) -> None:
    cluster.server()
    worker = cluster.worker("worker", grace=15.0)
    cluster.wait_ready(workers=1, workflows=("e2e_slow",))
    # the task outlives the lease: heartbeats must go on during the grace period
    run_id = cluster.trigger("e2e_slow", {"tag": "long", "seconds": LEASE + 1.5})
    assert cluster.wait_marker("long") == worker.pid
    worker.signal(signal.SIGTERM)
    time.sleep(0.5)
    late = cluster.trigger("e2e_slow", {"tag": "late", "seconds": 0.1})  # must not be claimed
    assert worker.wait(LEASE + 10) == 0, worker.output()

    run = cluster.get(f"/api/v1/runs/{run_id}")
    assert run["state"] == "succeeded", cluster.report()
    [attempt] = cluster.attempts(run_id)
    assert attempt["outcome"] == "succeeded" and str(worker.pid) in attempt["worker"]
    assert cluster.attempts(late) == []
    assert cluster.workers()[worker.pid]["state"] == "stopped"


@pytest.mark.parametrize("workflow", ["e2e_polite", "e2e_slow"])
def test_sigterm_with_a_short_grace_releases_the_attempt_to_another_worker(
    cluster: Cluster, workflow: str
) -> None:
    """e2e_polite stops when asked; e2e_slow ignores it: either way the worker exits soon
    after the grace period and the other worker runs the task."""
    cluster.server()
    first = cluster.worker("worker-a", grace=0.5)
    cluster.wait_ready(workers=1, workflows=(workflow,))
    run_id = cluster.trigger(workflow, {"tag": "short", "seconds": 4.0})
    assert cluster.wait_marker("short") == first.pid
    second = cluster.worker("worker-b")
    cluster.wait_ready(workers=2, workflows=(workflow,))
    first.signal(signal.SIGTERM)
    stopped_at, signaled_at = time.monotonic(), time.time()
    assert first.wait(8) == 0, first.output()
    exit_took = time.monotonic() - stopped_at
    # grace 0.5 s, then up to 2 s for the task to notice cancellation
    assert exit_took < 4.5, f"the worker took {exit_took:.1f}s to exit"

    assert cluster.wait_marker("short", attempt=2, timeout=5) == second.pid
    run = cluster.wait_run(run_id, timeout=15)
    assert run["state"] == "succeeded", cluster.report()
    released, retried = cluster.attempts(run_id)
    assert str(first.pid) in released["worker"]
    assert released["outcome"] == "lost", released  # released: no retry budget spent
    assert retried["outcome"] == "succeeded" and str(second.pid) in retried["worker"]
    # released at the end of the grace period, not left to lapse (>= 0.5 + 2.5 s)
    assert retried["started_at"] - signaled_at < LEASE
    print(f"{workflow}: worker exited {exit_took:.2f}s after SIGTERM (grace 0.5s)")


def test_sigterm_of_the_server_stops_it_and_its_worker_processes(cluster: Cluster) -> None:
    server = cluster.server("--grace", 2, workers=1)
    cluster.wait_ready(workers=1, workflows=("e2e_slow",))
    [child] = [pid for pid, w in cluster.workers().items() if w["state"] == "running"]
    assert child != server.pid and alive(child)
    cluster.wait_run(cluster.trigger("e2e_slow", {"tag": "child", "seconds": 0.1}))

    server.signal(signal.SIGTERM)
    started = time.monotonic()
    code = server.wait(10)
    took = time.monotonic() - started
    assert code == 0, server.output()
    assert took < 6.0, f"server took {took:.1f}s to stop"
    wait_for(f"worker process {child} to exit", lambda: not alive(child), 3.0, cluster.report)
    with pytest.raises(httpx.ConnectError):
        cluster.http.get("/api/v1/health", timeout=2.0)
    print(f"server and worker stopped {took:.2f}s after SIGTERM")

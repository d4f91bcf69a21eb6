"""A version's code is part of it, with real processes on one database.

A server with no worker of its own and no workflow folder, and one ``orchestrion worker``
started in an empty folder with its own code cache: the worker has no copy of the files,
so everything it runs comes from the database (the "other machine"). Through the server:

* v1 of a Python workflow (``pin.py`` importing ``helpers.py``) is deployed and a run starts;
  while its second task waits, v2 (only ``helpers.py`` changed) is deployed and run to the
  end, printing v2's output; then the v1 run finishes, printing v1's: both on the one worker
  process;
* a YAML workflow beside ``helpers.py`` referencing ``helpers:fn`` and ``helpers.py:fn``
  runs under ``orchestrion run`` from another folder, and under the server, without
  ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_server import free_port, wait_for
from tests.helpers import database_url_for, db_arg, seed_admin
from tests.processes import Proc

PIN = """\
import pathlib
import time

import helpers
from orchestrion import task, workflow


@task
def a():
    print("a says", helpers.tag())
    return helpers.tag()


@task
def b(x):
    gate = pathlib.Path({gate!r})
    while not gate.exists():
        time.sleep(0.05)
    print("b says", helpers.tag(), "after", x)
    return helpers.tag()


@workflow
def pin():
    b(a())
"""

HELPERS = """\
def tag():
    return {tag!r}


def shout(text: str = "hi"):
    print("shout", text.upper(), tag())
    return text.upper()
"""

FLOW_YAML = """\
name: beside
tasks:
  by_module:
    python: helpers:shout
    inputs: {text: module}
  by_path:
    python: helpers.py:shout
    inputs: {text: path}
    depends_on: [by_module]
"""


class Setup:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "project"
        self.project.mkdir()
        self.elsewhere = root / "elsewhere"  # where commands run: no copy of the files
        self.elsewhere.mkdir()
        self.logs = root / "logs"
        self.logs.mkdir()
        self.db = db_arg(root / "orchestrion.db")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "250"}
        for name in (
            "ORCHESTRION_DATABASE_URL",
            "ORCHESTRION_SERVER",
            "ORCHESTRION_ACTOR",
            "PYTHONPATH",
            "ORCHESTRION_PROJECT_ROOT",
        ):
            self.env.pop(name, None)
        self.env["ORCHESTRION_CODE_CACHE"] = str(root / "cli-cache")
        token = seed_admin(database_url_for(root / "orchestrion.db"))
        self.env["ORCHESTRION_TOKEN"] = token
        self.env["ORCHESTRION_CREDENTIALS_FILE"] = str(root / "credentials.json")
        self.http = httpx.Client(
            base_url=self.url, timeout=10.0, headers={"Authorization": f"Bearer {token}"}
        )
        port = self.url.rsplit(":", 1)[1]
        server_dir = root / "server"
        server_dir.mkdir()
        self.server = Proc(
            "server",
            ["server", "--port", port, "--workers", "0", "--db", self.db],
            server_dir,
            self.env,
            self.logs,
        )
        worker_dir = root / "worker-machine"
        worker_dir.mkdir()
        worker_env = {**self.env, "ORCHESTRION_CODE_CACHE": str(worker_dir / "cache")}
        self.worker = Proc(
            "worker",
            ["worker", "--db", self.db, "--concurrency", "4"],
            worker_dir,
            worker_env,
            self.logs,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", *args],
            cwd=self.elsewhere,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr, self.server.output())
        return done

    def start(self, workflow: str) -> str:
        made = self.http.post(f"/api/v1/workflows/{workflow}/runs", json={})
        assert made.status_code == 201, made.text
        run_id: str = made.json()["id"]
        return run_id

    def run(self, run_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.http.get(f"/api/v1/runs/{run_id}").json()
        return found

    def wait_state(self, run_id: str, state: str) -> dict[str, Any]:
        wait_for(
            f"run {run_id} {state}",
            lambda: self.run(run_id)["state"] == state,
            timeout=60,
            on_fail=lambda: self.worker.output() + str(self.run(run_id)),
        )
        return self.run(run_id)

    def said(self, run_id: str) -> list[str]:
        logs = self.http.get(f"/api/v1/runs/{run_id}/logs").json()["items"]
        return [x["line"] for x in logs]

    def workers_of(self, run_id: str) -> set[str]:
        attempts = self.http.get(f"/api/v1/runs/{run_id}/attempts").json()
        items = attempts["items"] if isinstance(attempts, dict) else attempts
        return {a["worker"] for a in items}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = Setup(tmp_path)
    try:
        wait_for("the server", lambda: _ready(s), timeout=60, on_fail=s.server.output)
        yield s
    finally:
        s.http.close()
        s.worker.kill_group()
        s.server.kill_group()
        print(s.server.output()[-4000:], s.worker.output()[-6000:])  # shown on failure


def _ready(s: Setup) -> bool:
    try:
        if s.http.get("/api/v1/ready", timeout=2).status_code != 200:
            return False
        workers = s.http.get("/api/v1/workers", timeout=2).json()
    except httpx.HTTPError:
        return False
    return any(w["state"] == "running" for w in workers)


def _task(s: Setup, run_id: str, name: str) -> dict[str, Any]:
    tasks = s.http.get(f"/api/v1/runs/{run_id}/tasks").json()
    items = tasks["items"] if isinstance(tasks, dict) else tasks
    [found] = [t for t in items if t["task"] == name]
    return dict(found)


def test_a_run_keeps_its_versions_code_beside_a_newer_one_on_one_worker(setup: Setup) -> None:
    s = setup
    gate1, gate2 = s.root / "gate-v1", s.root / "gate-v2"
    pin, helpers = s.project / "pin.py", s.project / "helpers.py"
    pin.write_text(PIN.format(gate=str(gate1)))
    helpers.write_text(HELPERS.format(tag="v1"))
    s.cli("deploy", str(pin), "--server", s.url)
    v1_run = s.start("pin")
    wait_for(
        "v1's task b to start",
        lambda: _task(s, v1_run, "b")["state"] == "running",
        timeout=60,
        on_fail=s.worker.output,
    )

    # v2: only the helper's body changes, and the gate is another file
    pin.write_text(PIN.format(gate=str(gate2)))
    helpers.write_text(HELPERS.format(tag="v2"))
    said = s.cli("deploy", str(pin), "--server", s.url).stdout
    gate2.touch()
    v2_run = s.start("pin")
    v2 = s.wait_state(v2_run, "succeeded")
    assert "(current)" in said
    assert [x for x in s.said(v2_run) if "says" in x] == ["a says v2", "b says v2 after v2"]
    assert s.run(v1_run)["state"] == "running"

    gate1.touch()
    v1 = s.wait_state(v1_run, "succeeded")
    assert [x for x in s.said(v1_run) if "says" in x] == ["a says v1", "b says v1 after v1"]
    assert v1["version"] != v2["version"]
    # one worker process ran both, side by side, from code it got from the database
    assert len(s.workers_of(v1_run) | s.workers_of(v2_run)) == 1
    cache = s.root / "worker-machine" / "cache"
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 2
    assert not (s.root / "worker-machine" / "pin.py").exists()
    # the code is readable per version through the API
    code = s.http.get("/api/v1/workflows/pin/code", params={"version": v1["version"]}).json()
    assert set(code["files"]) == {"pin.py", "helpers.py"}
    assert "'v1'" in code["files"]["helpers.py"]


def test_a_yaml_workflow_calls_the_module_beside_it_without_pythonpath(setup: Setup) -> None:
    s = setup
    (s.project / "helpers.py").write_text(HELPERS.format(tag="beside"))
    flow = s.project / "flow.yaml"
    flow.write_text(FLOW_YAML)
    # `orchestrion run` from another folder, its own database
    local_db = db_arg(s.root / "local.db")
    done = s.cli("run", str(flow), "--db", local_db)
    assert "succeeded" in done.stdout.splitlines()[-1], done.stdout
    # the server and its separate worker
    s.cli("deploy", str(flow), "--server", s.url)
    run_id = s.start("beside")
    s.wait_state(run_id, "succeeded")
    said = [x for x in s.said(run_id) if x.startswith("shout")]
    assert said == ["shout MODULE beside", "shout PATH beside"]
    # a changed helper is a new version
    before = s.run(run_id)["version"]
    (s.project / "helpers.py").write_text(HELPERS.format(tag="changed"))
    s.cli("deploy", str(flow), "--server", s.url)
    run_id = s.start("beside")
    assert s.wait_state(run_id, "succeeded")["version"] != before
    assert next(x for x in s.said(run_id) if x.startswith("shout")) == "shout MODULE changed"

"""A worker SIGKILLed mid-container leaves no container running once its lease is reaped
(issue 15, part 2).

A real ``orchestrion worker`` process runs a container task that sleeps; it is SIGKILLed
(with its whole process group: the container is not in it, Podman's conmon keeps it
running). A second worker process, serving another queue so that it does not run the
retry, takes over the maintenance duty, reaps the dead worker's lease (its attempt becomes
``lost``), and its container reaper removes the orphan: `podman ps -a` shows nothing of the
run afterwards. SQLite, or PostgreSQL with ``ORCHESTRION_TEST_DATABASE=postgres``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from tests.containers import HOST, IMAGE, containers_of, require_podman
from tests.helpers import database_url_for
from tests.processes import Proc

LEASE = 2.0

FLOW = f"""
name: orphaned
tasks:
  long:
    container:
      image: {IMAGE}
      pull: never
      command: [sleep, "300"]
"""


def _wait(what: str, check: Callable[[], Any], timeout: float, report: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{report()}")


def test_a_killed_workers_container_is_reaped(tmp_path: Path) -> None:
    require_podman()
    db = database_url_for(tmp_path / "orphans.db")
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "orphaned.yaml").write_text(FLOW)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        **os.environ,
        "ORCHESTRION_LEASE_SECONDS": str(LEASE),
        "ORCHESTRION_HEARTBEAT_SECONDS": "0.3",
        "ORCHESTRION_CONTAINER_HOST": HOST,
        "ORCHESTRION_CONTAINER_WORK_DIR": str(tmp_path / "work"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("ORCHESTRION_DATABASE_URL", None)
    deployed = subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", "deploy", "--db", db, str(flows)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    procs: list[Proc] = []

    def report() -> str:
        return "\n".join(f"--- {p.name}\n{p.output()}" for p in procs)

    def worker(name: str, queue: str) -> Proc:
        args = ["worker", "--db", db, "--queue", queue, "--concurrency", "2"]
        proc = Proc(name, args, tmp_path, env, logs)
        procs.append(proc)
        return proc

    run_id = ""
    try:
        doomed = worker("doomed", "default")
        with App(Settings(database_url=db)).open() as app:
            run_id = app.runs.trigger("orphaned", {}).id
        _wait("the container to run", lambda: containers_of(run_id, running=True), 60, report)
        doomed.kill_group()
        doomed.wait(10)
        time.sleep(LEASE / 2)
        # The worker is gone, its container is not: the orphan this test is about.
        assert containers_of(run_id, running=True), "the container died with its worker"
        worker("janitor", "elsewhere")  # does not claim the retry: only reaps
        _wait("the orphan to be removed", lambda: containers_of(run_id) == [], 60, report)
        with App(Settings(database_url=db)).open() as app:
            outcomes = [a.outcome for a in app.runs.attempts(run_id)]
            assert outcomes[0] == "lost", outcomes
            app.runs.cancel(run_id)
    finally:
        for proc in procs:
            proc.signal(signal.SIGTERM)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(15)
            proc.kill_group()
        if run_id:
            for name in containers_of(run_id):  # never leave one behind, even on failure
                subprocess.run(
                    ["podman", "rm", "-f", "-t", "0", name], capture_output=True, check=False
                )


RESUMABLE = f"""
name: resumable
tasks:
  long:
    container:
      image: {IMAGE}
      pull: never
      command: [sh, -c, 'if [ "$ORCHESTRION_ATTEMPT" = 1 ]; then sleep 300; fi; echo done']
"""


def test_resuming_a_killed_local_run_removes_its_container(tmp_path: Path) -> None:
    """``orchestrion run`` SIGKILLed mid-container; ``run --resume`` reaps the dead
    process's lease at once, removes its container, and finishes the task in a new one."""
    require_podman()
    db = database_url_for(tmp_path / "resume.db")
    flow = tmp_path / "resumable.yaml"
    flow.write_text(RESUMABLE)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        **os.environ,
        "ORCHESTRION_CONTAINER_HOST": HOST,
        "ORCHESTRION_CONTAINER_WORK_DIR": str(tmp_path / "work"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("ORCHESTRION_DATABASE_URL", None)
    first = Proc("run", ["run", str(flow), "--db", db], tmp_path, env, logs)
    run_id = ""
    try:

        def started() -> str:
            with App(Settings(database_url=db)).open() as app:
                runs = app.runs.list_runs()
            return runs[0].id if runs else ""

        run_id = _wait("the run", started, 60, first.output)
        _wait("its container", lambda: containers_of(run_id, running=True), 60, first.output)
        first.kill_group()
        first.wait(10)
        assert containers_of(run_id, running=True), "the container died with its process"
        resumed = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", "run", "--resume", run_id,
             "--db", db],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert containers_of(run_id) == []
        with App(Settings(database_url=db)).open() as app:
            (task,) = app.runs.task_runs(run_id)
            outcomes = [a.outcome for a in app.runs.attempts(run_id)]
        assert task.result == "done" and outcomes == ["lost", "succeeded"], outcomes
    finally:
        first.kill_group()
        if run_id:
            for name in containers_of(run_id):
                subprocess.run(
                    ["podman", "rm", "-f", "-t", "0", name], capture_output=True, check=False
                )

"""Fault tests: real ``orchestrion`` processes on a fresh PostgreSQL database per module.

Every process runs in its own session (process group) with its output in a log file under
``tmp_path``; teardown SIGKILLs every group that is left and prints the logs (pytest shows
them when a test fails). Sizes follow ``ORCHESTRION_FAULT_SCALE``: small by default (CI),
the issue's full sizes with ``ORCHESTRION_FAULT_SCALE=full``.

Tests marked ``serial`` restart PostgreSQL: run them in a pass of their own, never next to
other tests that use the server.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg.rows import dict_row

from tests import pg
from tests.processes import Proc

#: What scale() picks from: a figure of the same type at either scale.
T = TypeVar("T")

FULL = os.environ.get("ORCHESTRION_FAULT_SCALE", "").strip().lower() == "full"

#: The side-effect helper every test workflow uses: one line, O_APPEND, fsync.
APPEND = """
def append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "serial: restarts PostgreSQL; run in a separate pass, never in parallel with others",
    )


def scale(ci: T, full: T) -> T:
    return full if FULL else ci


@pytest.fixture(scope="module")
def pg_db() -> Iterator[str]:
    """A fresh PostgreSQL database for the module (a failure, not a skip, with CI=true)."""
    pg.require_postgres()
    url = pg.create_database()
    yield url
    with contextlib.suppress(psycopg.Error):
        pg.drop_database(url)


def query(url: str, sql: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row, connect_timeout=5) as conn:
        return list(conn.execute(sql, params).fetchall())


def wait_for(
    what: str, check: Callable[[], T], timeout: float, on_fail: Callable[[], str] = str
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{on_fail()}")
        time.sleep(0.1)


class Cluster:
    """Processes on one database, their working directory and logs in ``root``."""

    def __init__(self, root: Path, db_url: str, *, lease: float = 2.0, heartbeat: float = 0.3):
        self.root = root
        self.db = db_url
        self.flows = root / "flows"
        self.flows.mkdir(parents=True, exist_ok=True)
        self.work = root / "work"
        self.work.mkdir(exist_ok=True)
        self.logs = root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "ORCHESTRION_LEASE_SECONDS": str(lease),
            "ORCHESTRION_HEARTBEAT_SECONDS": str(heartbeat),
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
            "COLUMNS": "250",
        }
        for name in ("ORCHESTRION_DATABASE_URL", "ORCHESTRION_SERVER"):
            self.env.pop(name, None)
        self.procs: list[Proc] = []
        self._names: dict[str, int] = {}

    def start(self, name: str, *args: Any) -> Proc:
        n = self._names.get(name, 0)
        self._names[name] = n + 1
        label = name if n == 0 else f"{name}.{n}"
        proc = Proc(label, [str(a) for a in args], self.work, self.env, self.logs)
        self.procs.append(proc)
        return proc

    def worker(self, name: str, *, concurrency: int = 8, grace: float = 5.0) -> Proc:
        return self.start(
            name,
            "worker",
            "--db",
            self.db,
            "--workflows",
            self.flows,
            "--concurrency",
            concurrency,
            "--grace",
            grace,
        )

    def scheduler(self, name: str = "scheduler") -> Proc:
        return self.start(name, "scheduler", "--db", self.db)

    def deploy(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", "deploy", "--db", self.db, self.flows],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def trigger(self, workflow: str, params: dict[str, Any]) -> str:
        from orchestrion.app import App
        from orchestrion.app.settings import Settings

        with App(Settings(database_url=self.db)) as app:
            return app.runs.trigger(workflow, params).id

    def run_state(self, run_id: str) -> str:
        with contextlib.suppress(psycopg.Error):
            rows = query(self.db, "SELECT state FROM runs WHERE id = %s", (run_id,))
            return str(rows[0]["state"]) if rows else "?"
        return "?"

    def wait_run(self, run_id: str, timeout: float) -> str:
        def done() -> str | None:
            state = self.run_state(run_id)
            return state if state in ("succeeded", "failed", "canceled") else None

        return str(wait_for(f"run {run_id}", done, timeout, self.report))

    def wait_workers(self, count: int, timeout: float = 30.0) -> None:
        def ready() -> bool:
            dead = [p for p in self.procs if not p.alive()]
            if dead:
                pytest.fail(f"{dead[0].name} exited early\n{self.report()}")
            with contextlib.suppress(psycopg.Error):
                rows = query(self.db, "SELECT count(*) AS n FROM workers WHERE state = 'running'")
                return int(rows[0]["n"]) >= count
            return False

        wait_for(f"{count} workers", ready, timeout, self.report)

    def report(self) -> str:
        return "\n".join(
            f"===== {p.name} (pid {p.pid}, exit {p.popen.poll()})\n{p.output()[-4000:]}"
            for p in self.procs
        )

    def close(self) -> None:
        for proc in self.procs:
            proc.kill_group()


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    clusters: list[Cluster] = []

    def make(db_url: str, name: str = "c", **kw: Any) -> Cluster:
        cluster = Cluster(tmp_path / name, db_url, **kw)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()
    for cluster in clusters:
        print(cluster.report())  # shown by pytest when the test failed

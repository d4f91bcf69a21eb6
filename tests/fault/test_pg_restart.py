"""PostgreSQL restarted during a run: every process survives and the run completes.

2 ``orchestrion worker`` processes and an ``orchestrion server`` (API + scheduler +
housekeeping) run M tasks (CI: 500; ``ORCHESTRION_FAULT_SCALE=full``: 2,000) while
PostgreSQL is restarted several times (CI: 2; full: 5). The run must succeed, no process
may have exited, and every task run has exactly one ``succeeded`` attempt (its last; any
other attempt was lost while the database was away).

Marked ``serial``: restarting the server breaks every other test using it. PostgreSQL is
started again in a ``finally`` whatever happens.
"""

from __future__ import annotations

import collections
import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests import pg
from tests.fault.conftest import APPEND, Cluster, query, scale, wait_for

TASKS = scale(500, 2_000)
RESTARTS = scale(2, 5)

FLOW = f'''"""Tasks that sleep a little and append "done <key> <attempt>"."""
import os
import time
from typing import Any

from orchestrion.spec.python import task, workflow
{APPEND}

@task(retries=0)
def items(n: int) -> list[int]:
    return list(range(n))


@task(retries=0)
def step(i: int, log: str, pause: float, ctx: Any) -> int:
    time.sleep(pause)
    append(log, f"done {{ctx.idempotency_key}} {{ctx.attempt}}")
    return i


@workflow
def fault_restart(n: int = 10, log: str = "effects.log", pause: float = 0.05):
    step.map(items(n), log=log, pause=pause)
'''


def _cluster_name() -> tuple[str, str]:
    versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: float(v))
    return versions[-1], "main"


def _pg_ctl(action: str) -> None:
    version, name = _cluster_name()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _pg_up() -> bool:
    try:
        psycopg.connect(pg.ADMIN_URL, connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.serial
def test_processes_survive_postgres_restarts(
    pg_db: str, make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    if not Path("/etc/postgresql").is_dir():
        pytest.skip("no local PostgreSQL cluster to restart (pg_ctlcluster)")
    cluster = make_cluster(pg_db, "restart", lease=4.0, heartbeat=0.3)
    (cluster.flows / "restart.py").write_text(FLOW)
    effects = cluster.root / "effects.log"
    cluster.deploy()
    server = cluster.start(
        "server", "server", "--port", _free_port(), "--workers", 0, "--db", pg_db
    )
    workers = [cluster.worker(f"w{i}", concurrency=8) for i in range(2)]
    cluster.wait_workers(2)
    # about 6 s of work per restart (a restart takes 1-4 s here), at 16 slots
    pause = RESTARTS * 6.0 * 16 / TASKS
    run = cluster.trigger("fault_restart", {"n": TASKS, "log": str(effects), "pause": pause})
    outages = []
    try:
        for _ in range(RESTARTS):
            time.sleep(1.0)
            state = cluster.run_state(run)
            assert state in ("queued", "running"), f"the run ended before a restart: {state}"
            began = time.monotonic()
            _pg_ctl("restart")
            wait_for("PostgreSQL to answer", _pg_up, 60)
            outages.append(time.monotonic() - began)
    finally:
        if not _pg_up():
            with contextlib.suppress(subprocess.SubprocessError):
                _pg_ctl("start")
            wait_for("PostgreSQL to come back", _pg_up, 60)
    state = cluster.wait_run(run, timeout=120 + TASKS * 0.05)
    exited = [p.name for p in [server, *workers] if p.popen.poll() is not None]
    assert not exited, f"exited: {exited}\n{cluster.report()}"
    assert state == "succeeded", cluster.report()

    task_runs = query(pg_db, "SELECT id, kind, state FROM task_runs WHERE run_id = %s", (run,))
    assert {t["state"] for t in task_runs} == {"succeeded"}
    attempts = query(
        pg_db,
        "SELECT task_run_id, outcome FROM attempts WHERE run_id = %s ORDER BY task_run_id, number",
        (run,),
    )
    history: dict[int, list[str]] = collections.defaultdict(list)
    for a in attempts:
        history[int(a["task_run_id"])].append(str(a["outcome"]))
    reruns = 0
    for t in task_runs:
        if t["kind"] == "group":
            continue
        outcomes = history[int(t["id"])]
        assert outcomes.count("succeeded") == 1 and outcomes[-1] == "succeeded", (t, outcomes)
        assert set(outcomes[:-1]) <= {"lost"}, (t, outcomes)
        reruns += len(outcomes) - 1
    done = effects.read_text().splitlines()
    assert len({line.split()[1] for line in done}) == TASKS
    print(
        f"{RESTARTS} restarts (outages {', '.join(f'{o:.1f}' for o in outages)} s) during"
        f" {TASKS} tasks: run succeeded, {reruns} attempts re-run after a lost lease,"
        f" no process exited"
    )

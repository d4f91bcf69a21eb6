"""Workers alone recover from a killed worker (issue 12, finding 9b).

Only ``orchestrion worker`` processes run (no server, no scheduler, as during their
restart). The worker holding the maintenance duty's lease is SIGKILLed while it runs
tasks (then another busy worker): its duty lease lapses, another worker takes it, reaps
the killed workers' expired task leases, and the run finishes. Every task has exactly
one succeeded attempt (its last); every other attempt was a killed worker's and is
``lost``. On SQLite (where it was found) and PostgreSQL; about 10 s each.
``ORCHESTRION_FAULT_SCALE=full`` runs the size it was found at: 4 workers, 20 SIGKILLs
(each killed worker replaced), 3,000 tasks.
"""

from __future__ import annotations

import collections
import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fault.conftest import APPEND, Cluster, query, scale, wait_for

TASKS = scale(60, 3_000)
WORKERS = scale(3, 4)
CONCURRENCY = scale(4, 8)
KILLS = scale(2, 20)
#: Each task's work, in seconds: a run lasts about TASKS * PAUSE / (WORKERS * CONCURRENCY).
PAUSE = scale(1.0, 0.5)

FANOUT = f'''"""Tasks of about 1 s that append "done <key> <attempt>" to a side-effect file."""
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
def workers_only(n: int = 10, log: str = "effects.log", pause: float = 1.0):
    step.map(items(n), log=log, pause=pause)
'''


def _rows(db: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """`sql` (with ``?`` placeholders) on either database; no rows while it is busy."""
    if db.startswith("postgresql"):
        with contextlib.suppress(psycopg.Error):
            return query(db, sql.replace("?", "%s"), params)
        return []
    conn = sqlite3.connect(db.removeprefix("sqlite:///"), timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params).fetchall()]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def _pid(worker_id: str) -> int:
    """Worker ids are ``<host>-<pid>-<hex>``; maintenance holders ``worker:<worker id>``."""
    return int(worker_id.removeprefix("worker:").rsplit("-", 2)[1])


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'workers-only.db'}"
    return str(request.getfixturevalue("pg_db"))


def test_workers_alone_reap_a_killed_worker(
    db_url: str, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = make_cluster(db_url, "workers-only", lease=2.0, heartbeat=0.3)
    (cluster.flows / "fanout.py").write_text(FANOUT)
    effects = cluster.root / "effects.log"
    cluster.deploy()
    workers = [cluster.worker(f"w{i}", concurrency=CONCURRENCY) for i in range(WORKERS)]

    def running_workers() -> bool:
        for proc in workers:
            assert proc.alive(), f"{proc.name} exited early\n{cluster.report()}"
        found = _rows(db_url, "SELECT count(*) AS n FROM workers WHERE state = 'running'")
        return bool(found) and int(found[0]["n"]) >= WORKERS

    wait_for(f"{WORKERS} workers", running_workers, 30, cluster.report)
    run = cluster.trigger("workers_only", {"n": TASKS, "log": str(effects), "pause": PAUSE})

    def duty_holder() -> int | None:
        held = _rows(db_url, "SELECT holder FROM leases WHERE name = 'scheduler.maintenance'")
        if not held or not str(held[0]["holder"]).startswith("worker:"):
            return None
        return _pid(str(held[0]["holder"]))

    def victim() -> int | None:
        """The duty holder's pid once it runs tasks of the run (else any busy worker's,
        after the first kill)."""
        busy = _rows(
            db_url,
            "SELECT lease_owner FROM task_runs WHERE run_id = ? AND state = 'running'",
            (run,),
        )
        owners = {_pid(str(r["lease_owner"])) for r in busy if r["lease_owner"]}
        live = {p.pid for p in workers if p.alive()}
        holder = duty_holder()
        if holder in owners and holder in live:
            return holder
        return min(owners & live) if killed and owners & live else None

    killed: set[int] = set()
    for n in range(KILLS):
        pid = wait_for("a busy worker to kill", victim, 30, cluster.report)
        assert pid is not None
        [proc] = [p for p in workers if p.pid == pid]
        proc.kill_group()
        killed.add(pid)
        if n + 1 < KILLS:  # replaced, as a supervisor would; the last one is not
            workers.append(cluster.worker(f"w{WORKERS + n}", concurrency=CONCURRENCY))
            time.sleep(2.0)
    state = cluster_wait(db_url, run, 60 + TASKS * PAUSE / WORKERS, cluster)
    assert state == "succeeded", cluster.report()
    assert all(p.alive() for p in workers if p.pid not in killed), cluster.report()
    assert duty_holder() not in killed  # the duty moved to a live worker

    lost = _check_history(db_url, run, killed, effects)
    print(f"{len(killed)} kill(s): {lost} attempt(s) lost and re-run by the other workers")


def _check_history(db_url: str, run: str, killed: set[int], effects: Path) -> int:
    """Every task has one succeeded attempt, its last; every other attempt is a killed
    worker's, lost; only those may have done the task's effect too. The attempts lost."""
    attempts = _rows(
        db_url,
        "SELECT a.task_run_id, a.number, a.worker, a.outcome FROM attempts a"
        " JOIN task_runs t ON t.id = a.task_run_id"
        " WHERE a.run_id = ? AND t.task_name = 'step' ORDER BY a.task_run_id, a.number",
        (run,),
    )
    by_task: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for a in attempts:
        by_task[int(a["task_run_id"])].append(a)
    assert len(by_task) == TASKS
    lost = 0
    for history in by_task.values():
        outcomes = [a["outcome"] for a in history]
        assert outcomes.count("succeeded") == 1 and outcomes[-1] == "succeeded", history
        for a in history[:-1]:
            assert a["outcome"] == "lost" and _pid(str(a["worker"])) in killed, history
            lost += 1
    assert lost >= 1  # the killed worker was running tasks of this run
    done = collections.Counter(line.split()[1] for line in effects.read_text().splitlines())
    assert len(done) == TASKS
    # Effects are at-least-once: only a killed (lost) attempt may have done one too.
    assert sum(done.values()) <= TASKS + lost, done.most_common(3)
    return lost


def cluster_wait(db: str, run: str, timeout: float, cluster: Cluster) -> str:
    """The run's final state, waiting at most `timeout` seconds."""

    def final() -> str | None:
        rows = _rows(db, "SELECT state FROM runs WHERE id = ?", (run,))
        state = str(rows[0]["state"]) if rows else None
        return state if state in ("succeeded", "failed", "canceled") else None

    start = time.monotonic()
    state = str(wait_for(f"run {run}", final, timeout, cluster.report))
    print(f"run {run} {state} {time.monotonic() - start:.1f} s after the last kill")
    return state

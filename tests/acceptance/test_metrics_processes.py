"""Metrics across real processes: two ``orchestrion server`` processes and two
``orchestrion worker`` processes on one database run a mixed workload (runs that succeed,
attempts that fail and are retried, runs that fail); then a scrape of either server,
parsed by prometheus_client's text parser, says exactly what the database says. On SQLite
the processes share a file; with ``ORCHESTRION_TEST_DATABASE=postgres``, a schema.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_server import free_port, wait_for
from tests.helpers import database_url_for, seed_admin
from tests.integration.test_metrics import Samples, parse, pick
from tests.processes import Proc

_PATIENCE = 90.0  # hang guard, never a timing assertion

FLOWS = """
from typing import Any

from orchestrion.spec.python import task, workflow


@task
def step(n: int) -> int:
    return n + 1


@task(retries=1, backoff="50ms")
def wobbly(ctx: Any) -> str:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return "ok"


@task(retries=1, backoff="50ms")
def broken() -> None:
    raise ValueError("always fails")


@workflow
def good(n: int = 1):
    step(step(n))


@workflow(namespace="team")
def flaky():
    wobbly()


@workflow(namespace="team")
def bad():
    broken()
"""

MIX = {"good": 5, "flaky": 4, "bad": 3}


class Cluster:
    def __init__(self, root: Path) -> None:
        flows = root / "flows"
        flows.mkdir()
        (flows / "mixed.py").write_text(FLOWS)
        work, self.logs = root / "work", root / "logs"
        work.mkdir()
        self.logs.mkdir()
        self.db = database_url_for(root / "shared.db")
        self.token = seed_admin(self.db)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("ORCHESTRION_DATABASE_URL", "ORCHESTRION_TOKEN", "ORCHESTRION_SERVER")
        }
        env.update(PYTHONUNBUFFERED="1", ORCHESTRION_HEARTBEAT_SECONDS="0.5")
        self.urls: list[str] = []
        self.procs: list[Proc] = []
        for name in ("a", "b"):
            port = free_port()
            self.urls.append(f"http://127.0.0.1:{port}")
            args = ["server", "--port", str(port), "--workers", "0", "--workflows",
                    str(flows), "--db", self.db]  # fmt: skip
            self.procs.append(Proc(f"server-{name}", args, work, env, self.logs))
        for name in ("w1", "w2"):
            args = ["worker", "--workflows", str(flows), "--db", self.db, "-c", "2"]
            self.procs.append(Proc(name, args, work, env, self.logs))

    def report(self) -> str:
        return "\n".join(
            f"===== {p.name} (exit {p.popen.poll()})\n{p.output()[-3000:]}" for p in self.procs
        )

    def close(self) -> None:
        for proc in self.procs:
            proc.kill_group()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()
        print(c.report())  # shown only when the test failed


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql`, read from the database behind the processes' backs."""
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(url) as pconn:
            return [tuple(r) for r in pconn.execute(sql).fetchall()]
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def test_counters_match_the_database_across_two_servers_and_two_workers(
    cluster: Cluster,
) -> None:
    bearer = {"Authorization": f"Bearer {cluster.token}"}

    def ready() -> bool:
        for url in cluster.urls:
            try:
                answer = httpx.get(f"{url}/api/v1/workflows", headers=bearer, timeout=2)
            except httpx.HTTPError:
                return False
            if answer.status_code != 200 or {w["name"] for w in answer.json()} != set(MIX):
                return False
        workers = httpx.get(f"{cluster.urls[0]}/api/v1/workers", headers=bearer, timeout=2)
        running = [w for w in workers.json() if w["state"] == "running"]
        return len(running) == 2 and all(p.alive() for p in cluster.procs)

    wait_for("two servers and two workers", ready, _PATIENCE, cluster.report)
    run_ids = []
    for i, name in enumerate(n for n, c in MIX.items() for _ in range(c)):
        url = cluster.urls[i % 2]  # alternate servers, as a load balancer would
        answer = httpx.post(
            f"{url}/api/v1/workflows/{name}/runs", json={"params": {}}, headers=bearer
        )
        assert answer.status_code == 201, answer.text
        run_ids.append(answer.json()["id"])

    def all_finished() -> bool:
        runs = httpx.get(
            f"{cluster.urls[1]}/api/v1/runs", headers=bearer, params={"limit": 100}
        ).json()
        found = runs["items"] if isinstance(runs, dict) else runs
        done = {r["id"] for r in found if r["state"] in ("succeeded", "failed", "canceled")}
        return set(run_ids) <= done

    wait_for("every run to finish", all_finished, _PATIENCE, cluster.report)

    runs = query(
        cluster.db,
        "SELECT workflow, state, count(*) FROM runs GROUP BY workflow, state",
    )
    attempts = query(
        cluster.db,
        "SELECT r.workflow, a.outcome, count(*), count(DISTINCT a.worker) FROM attempts a"
        " JOIN runs r ON r.id = a.run_id WHERE a.outcome IS NOT NULL"
        " GROUP BY r.workflow, a.outcome",
    )
    assert {(w, s): n for w, s, n in runs} == {
        ("good", "succeeded"): 5,
        ("flaky", "succeeded"): 4,
        ("bad", "failed"): 3,
    }
    assert {(w, o): n for w, o, n, _ in attempts} == {
        ("good", "succeeded"): 10,
        ("flaky", "failed"): 4,
        ("flaky", "succeeded"): 4,
        ("bad", "failed"): 6,
    }
    assert len({w for (w,) in query(cluster.db, "SELECT DISTINCT worker FROM attempts")}) == 2

    scrapes = []
    for url in cluster.urls:
        answer = httpx.get(f"{url}/metrics", headers=bearer, timeout=10)
        assert answer.status_code == 200, answer.text
        scrapes.append(parse(answer.text))
    for samples in scrapes:
        _agrees(samples, runs, attempts)
    # Both servers answer alike for everything the database holds: all but their own
    # requests and the timings of the scrape itself.
    own = ("orchestrion_api_", "orchestrion_database_roundtrip", "orchestrion_metrics_read")
    shared = [{k: v for k, v in s.items() if not k[0].startswith(own)} for s in scrapes]
    assert any(k[0] == "orchestrion_run_duration_seconds_bucket" for k in shared[0])
    assert shared[0] == shared[1]


def _agrees(samples: Samples, runs: list[tuple[Any, ...]], attempts: list[tuple[Any, ...]]) -> None:
    """One scrape says what the database's rows say."""
    for workflow, state, n in runs:
        got = pick(samples, "orchestrion_runs_finished_total", workflow=workflow, outcome=state)
        assert got == n, (workflow, state)
        count = "orchestrion_run_duration_seconds_count"
        assert pick(samples, count, workflow=workflow, outcome=state) == n
    for workflow, outcome, n, _ in attempts:
        got = pick(samples, "orchestrion_task_attempts_total", workflow=workflow, outcome=outcome)
        assert got == n, (workflow, outcome)
    assert pick(samples, "orchestrion_runs_finished_total", namespace="team") == 7
    assert len([k for k in samples if k[0] == "orchestrion_worker_free_slots"]) == 2
    assert pick(samples, "orchestrion_worker_free_slots") == 4  # all idle: 2 + 2

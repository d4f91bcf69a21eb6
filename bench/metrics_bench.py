"""What a `GET /metrics` scrape costs the database, with a large history.

Usage: .venv/bin/python bench/metrics_bench.py [--db URL] [--runs 20000] [--tasks 5]

Seeds a new database (a temporary SQLite file, or the PostgreSQL database `--db` names,
which must be empty) with `--runs` finished runs of ten workflows, `--tasks` task runs and
attempts each (100,000 by default), one metric delta per ended run and attempt as the
triggers would have written them, and a live part: 500 running runs with 2,000 ready task
runs over four queues and 50 attempts running on five workers. Then times the scrape's
database reads (`ReadStore.metrics`, median of 20) three ways: with every delta unfolded
(no housekeeping ran: the worst case), after the housekeeping duty folded them, and again
after doubling the finished history (the cost must not grow with it).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from orchestrion.spec.model import PythonAction, TaskSpec, WorkflowSpec
from orchestrion.store import open_store
from orchestrion.store.records import WorkerRecord
from orchestrion.store.stores import Stores

_NOW = 1_800_000_000.0


class Raw:
    """Bulk inserts behind the store's back (either dialect)."""

    def __init__(self, url: str) -> None:
        self.pg = url.startswith(("postgresql://", "postgres://"))
        if self.pg:
            import psycopg

            self.conn: Any = psycopg.connect(url, autocommit=False)
        else:
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"))

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self.pg:
            sql = sql.replace("?", "%s")
        with self.conn.cursor() if self.pg else _Same(self.conn) as cur:
            cur.executemany(sql, rows)
        self.conn.commit()


class _Same:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None


def seed_history(raw: Raw, versions: dict[str, str], runs: int, tasks: int, offset: int) -> None:
    """`runs` finished runs with `tasks` succeeded task runs and attempts each, and their
    metric deltas."""
    run_rows, task_rows, attempt_rows, deltas = [], [], [], []
    for r in range(offset, offset + runs):
        run_id = f"{r:012x}" + "0" * 20
        workflow = f"w{r % 10}"
        state = "failed" if r % 17 == 0 else "succeeded"
        start = _NOW - 86_400 + r
        run_rows.append(
            (run_id, workflow, versions[workflow], state, "{}", start, start, start + 3)
        )
        deltas.append(("run", workflow, state, 3.0))
        for t in range(tasks):
            tid = r * tasks + t + 1
            task_rows.append((tid, run_id, f"t{t}", "succeeded", "default", start, start + 1))
            attempt_rows.append((tid, run_id, 1, 1, "w", start, start + 1, "succeeded"))
            deltas.append(("attempt", workflow, "succeeded", 1.0))
    raw.many(
        "INSERT INTO runs (id, workflow, version, state, params, created_at, started_at,"
        " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        run_rows,
    )
    raw.many(
        "INSERT INTO task_runs (id, run_id, task_name, state, queue, started_at, finished_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        task_rows,
    )
    raw.many(
        "INSERT INTO attempts (task_run_id, run_id, number, epoch, worker, started_at,"
        " finished_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        attempt_rows,
    )
    raw.many(
        "INSERT INTO metric_deltas (family, workflow, outcome, seconds) VALUES (?, ?, ?, ?)",
        deltas,
    )


def seed_live(raw: Raw, versions: dict[str, str], store: Stores) -> None:
    """500 running runs: 2,000 ready task runs over four queues, 50 running attempts."""
    run_rows: list[tuple[Any, ...]] = []
    task_rows: list[tuple[Any, ...]] = []
    for r in range(500):
        run_id = "f" + f"{r:031x}"
        workflow = f"w{r % 10}"
        run_rows.append(
            (run_id, workflow, versions[workflow], "running", "{}", _NOW - 60, _NOW - 60)
        )
        for t in range(4):
            tid = 10_000_000 + r * 4 + t
            task_rows.append(
                (tid, run_id, f"t{t}", "queued", f"q{t}", _NOW - 60 + r / 100, None, None)
            )
    for i, row in enumerate(task_rows[:50]):
        task_rows[i] = (*row[:3], "running", row[4], row[5], f"worker-{i % 5}", _NOW + 30)
    raw.many(
        "INSERT INTO runs (id, workflow, version, state, params, created_at, started_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        run_rows,
    )
    raw.many(
        "INSERT INTO task_runs (id, run_id, task_name, state, queue, ready_at, lease_owner,"
        " lease_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        task_rows,
    )
    for i in range(5):
        store.runs.register_worker(
            WorkerRecord(
                id=f"worker-{i}",
                host="bench",
                pid=i,
                queues=("q0", "q1", "q2", "q3"),
                started_at=_NOW,
                heartbeat_at=_NOW,
                state="running",
                slots=16,
            )
        )


def timed(store: Stores, times: int = 20) -> tuple[float, int]:
    """Median milliseconds of a scrape's reads, and how many series of ended counts."""
    laps = []
    for _ in range(times):
        started = time.perf_counter()
        snap = store.reads.metrics(now=_NOW, alive_since=_NOW - 30)
        laps.append(time.perf_counter() - started)
    return statistics.median(laps) * 1000, len(snap.ended)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="an empty PostgreSQL database (default: a SQLite file)")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=5)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="metrics-bench-")
    url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
    store = open_store(url)
    try:
        for i in range(10):
            spec = WorkflowSpec(
                name=f"w{i}", tasks=(TaskSpec(name="t", action=PythonAction(ref="m:f")),)
            )
            store.workflows.register_workflow(spec, source=None, now=_NOW)
        versions = {w.name: w.version for w in store.workflows.list_workflows()}
        raw = Raw(url)
        seed_history(raw, versions, args.runs, args.tasks, 0)
        seed_live(raw, versions, store)
        history = args.runs * args.tasks
        print(f"load average {os.getloadavg()}; {history:,} finished task runs and attempts")
        ms, series = timed(store)
        print(f"unfolded ({history + args.runs:,} deltas): {ms:.1f} ms per scrape")
        start = time.perf_counter()
        while store.runs.fold_metrics(now=_NOW):
            pass
        print(f"fold: {time.perf_counter() - start:.2f} s (batches of 5,000)")
        ms, series = timed(store)
        print(f"folded: {ms:.1f} ms per scrape ({series} ended series)")
        seed_history(raw, versions, args.runs, args.tasks, args.runs)
        while store.runs.fold_metrics(now=_NOW):
            pass
        ms, series = timed(store)
        print(f"folded, history doubled ({2 * history:,}): {ms:.1f} ms per scrape")
        print(json.dumps({"url": url.split("@")[-1]}))
    finally:
        store.close()


if __name__ == "__main__":
    main()

"""Scale-out on PostgreSQL: the engine workloads with workers in separate processes.

Usage: .venv/bin/python bench/pg_scale_bench.py --db postgresql://postgres@127.0.0.1/bench
       [--processes 1,2,4] [--concurrency N] [--only W1,W4,W2]

For each process count N, starts N real `orchestrion worker` processes against one
PostgreSQL database, waits until each has said it is running, then triggers each workload
from this process and times it from the run's creation to its end as the database recorded
them (so the polling here does not count):
  W1  one task -> 500 parallel -> one join (end-to-end tasks/s)
  W4  one task -> 2,000 parallel -> one join (end-to-end tasks/s)
  W2  a chain of 100: wall time per hop (creation to end / 100, so it includes each
      task's run), and the recorded hop p50/p90 (one task's finish to the next one's
      claim: 0 where the finishing worker claimed it in the same transaction)
The workers stop (SIGTERM) before the next process count starts. The tasks are the no-op
functions of `engine_bench.py`, which the workers import (this folder is on their
PYTHONPATH). Prints the machine's load average, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from engine_bench import chain, fan, hop_latencies

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.spec.model import WorkflowSpec

_HERE = Path(__file__).resolve().parent
#: The module (this folder's engine_bench.py) whose functions the workers run.
_MODULE = "engine_bench"


def start_workers(db: str, count: int, concurrency: int | None) -> list[subprocess.Popen[str]]:
    path = os.pathsep.join(p for p in (str(_HERE), os.environ.get("PYTHONPATH")) if p)
    # A throwaway database: the insecure development key is fine for it.
    env = dict(os.environ, PYTHONPATH=path, ORCHESTRION_DATABASE_URL=db, ORCHESTRION_DEV_MODE="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "orchestrion.cli.main", "worker"]
            + (["-c", str(concurrency)] if concurrency else []),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(count)
    ]
    for proc in procs:  # each prints one line once it claims
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("worker "):
            stop_workers(procs)
            raise SystemExit(f"a worker did not start: {line!r}")
    return procs


def stop_workers(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_once(app: App, spec: WorkflowSpec) -> tuple[float, str]:
    """Trigger `spec`, wait for its end; the seconds from creation to end, and the run id."""
    run = app.runs.trigger(spec.name)
    deadline = time.monotonic() + 300
    while True:
        final = app.store.reads.get_run(run.id)
        if final.state.finished:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{spec.name} did not finish in 300 s")
        time.sleep(0.01)
    assert final.state.value == "succeeded", (final.state, final.error)
    assert final.finished_at is not None
    return final.finished_at - final.created_at, run.id


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of the processes `pids` (those still alive)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def backend_pids(db: str) -> list[int]:
    """The PostgreSQL server processes serving connections to `db`'s database."""
    with psycopg.connect(db, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True, help="postgresql://... (a database to use)")
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="slots per worker (default: the worker's own)"
    )
    parser.add_argument("--only", default="W1,W4,W2")
    args = parser.parse_args()
    only = set(args.only.split(","))
    workloads = [
        (label, spec, tasks)
        for label, spec, tasks in (
            ("W1", fan("scale_w1", 500, _MODULE), 502),
            ("W4", fan("scale_w4", 2000, _MODULE), 2002),
            ("W2", chain(100, _MODULE, "scale_w2"), 100),
        )
        if label in only
    ]
    print(f"{os.cpu_count()} cores; {load()}")
    warm = fan("scale_warm", 50, _MODULE)
    with App(Settings(database_url=args.db)) as app:
        for spec in [warm, *(spec for _, spec, _ in workloads)]:
            app.store.workflows.register_workflow(spec, source=None, now=time.time())
        for count in (int(n) for n in args.processes.split(",")):
            procs = start_workers(args.db, count, args.concurrency)
            try:
                run_once(app, warm)  # imports, caches, pool connections
                for label, spec, tasks in workloads:
                    workers, server = [p.pid for p in procs], backend_pids(args.db)
                    before = cpu_seconds(workers), cpu_seconds(server)
                    elapsed, run_id = run_once(app, spec)
                    used = cpu_seconds(workers) - before[0], cpu_seconds(server) - before[1]
                    cpu = (
                        f"CPU per task: workers {used[0] / tasks * 1000:.2f} ms,"
                        f" PostgreSQL {used[1] / tasks * 1000:.2f} ms"
                    )
                    if label == "W2":
                        hops = hop_latencies(app, run_id)
                        print(
                            f"{count} worker process(es): W2 {tasks} chained tasks in"
                            f" {elapsed:.3f}s = {elapsed / tasks * 1000:.2f} ms per hop (wall);"
                            f" recorded hop p50 {statistics.median(hops):.2f} ms,"
                            f" p90 {statistics.quantiles(hops, n=10)[-1]:.2f} ms; {cpu} ({load()})"
                        )
                    else:
                        print(
                            f"{count} worker process(es): {label} {tasks} tasks in"
                            f" {elapsed:.3f}s = {tasks / elapsed:,.0f} tasks/s; {cpu} ({load()})"
                        )
            finally:
                stop_workers(procs)


if __name__ == "__main__":
    main()

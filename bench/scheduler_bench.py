"""The scheduler's fire rate: one tick that catches up N schedules of ``every: 1s`` after a
K-second outage (N x K fires, each starting its run), through the real store.

Usage: .venv/bin/python bench/scheduler_bench.py [--schedules N] [--seconds K]
       [--db postgresql://...] [--repeat R]

A fake clock places the outage, so only the whole tick is timed: its reads of the specs
and schedule states, planning, each fire's transaction (fire row, overlap decision, run,
audit record, cursor), and the scheduler's other duties (nothing to do here). The figure
is wall-clock fires per second of one tick, the median of `--repeat` ticks, each after a
fresh outage; it varies with the machine's load and its disk's fsync time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from orchestrion.clock import FakeClock
from orchestrion.spec.model import PythonAction, ScheduleSpec, TaskSpec, WorkflowSpec
from orchestrion.store import open_store
from orchestrion.triggers.scheduler import Scheduler


def flows(n: int, seconds: int) -> list[WorkflowSpec]:
    schedule = ScheduleSpec(every=1.0, catchup="all", max_catchup=max(seconds, 1))
    task = TaskSpec(name="t", action=PythonAction(ref="os:getpid"))
    return [
        WorkflowSpec(name=f"tick_{i:04d}", tasks=(task,), schedules=(schedule,)) for i in range(n)
    ]


def measure(url: str, n: int, seconds: int, repeat: int) -> list[float]:
    clock = FakeClock(1_800_000_000.0)
    store = open_store(url)
    try:
        for spec in flows(n, seconds):
            store.workflows.register_workflow(spec, source=None, now=clock.now())
        sched = Scheduler(store.triggers, store.workflows, store.runs, clock, "bench")
        sched.tick()  # leases, specs read and parsed, every schedule's first decision
        rates = []
        for _ in range(repeat):
            clock.advance(seconds)
            start = time.perf_counter()
            made = len(sched.tick().fires)
            took = time.perf_counter() - start
            assert made == n * seconds, (made, n * seconds)
            rates.append(made / took)
        return rates
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schedules", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", help="a PostgreSQL URL (a fresh database is made in it)")
    args = parser.parse_args()
    if args.db:
        name = f"sched_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.db, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            url = urlunsplit(urlsplit(args.db)._replace(path=f"/{name}"))
            rates = measure(url, args.schedules, args.seconds, args.repeat)
        finally:
            with psycopg.connect(args.db, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        where = "PostgreSQL"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            rates = measure(url, args.schedules, args.seconds, args.repeat)
        where = "SQLite"
    print(
        f"{where}: {args.schedules} schedules x {args.seconds} s = "
        f"{args.schedules * args.seconds} fires a tick; fires/s median "
        f"{statistics.median(rates):,.0f} (each tick: {', '.join(f'{r:,.0f}' for r in rates)})"
    )


if __name__ == "__main__":
    main()

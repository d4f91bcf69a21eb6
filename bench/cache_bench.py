"""Task result caching (docs/caching.md) on embedded SQLite: what a fan of tasks costs
without `cache`, with `cache` on a first run (every key a miss: lookup, compute, entry
written by the finish) and on a second run (every key a hit: lookup, no body).

Usage: .venv/bin/python bench/cache_bench.py [--width N] [--workers N]

The figures are wall-clock tasks per second of one run each, through the real store and an
in-process worker; they vary with machine load. Uncached tasks take the same path as
before caching existed (one attribute test in the worker, one `any()` per finished batch).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.spec.model import CacheSpec, InputSpec, PythonAction, TaskSpec, WorkflowSpec
from orchestrion.worker.sizing import DEFAULT_CONCURRENCY


def noop(i: int) -> int:
    return i


def fan(name: str, width: int, *, cached: bool) -> WorkflowSpec:
    tasks = tuple(
        TaskSpec(
            name=f"t{i}",
            action=PythonAction(ref="cache_bench:noop"),
            inputs={"i": InputSpec(value=i)},
            cache=CacheSpec() if cached else None,
        )
        for i in range(width)
    )
    return WorkflowSpec(name=name, tasks=tasks)


def timed(app: App, name: str, workers: int) -> float:
    run = app.runs.trigger(name)
    start = time.perf_counter()
    done = app.runtime.run_until_done(run.id, concurrency=workers, every=0.01)
    took = time.perf_counter() - start
    assert done.state.value == "succeeded", done
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--workers", type=int, default=DEFAULT_CONCURRENCY)
    args = parser.parse_args()
    sys.modules.setdefault("cache_bench", sys.modules[__name__])
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        with App(Settings(database_url=url)) as app:
            app.code.add({"cache_bench:noop": noop})
            for name, cached in (("plain", False), ("cached", True)):
                app.store.workflows.register_workflow(
                    fan(name, args.width, cached=cached), source=None, now=time.time()
                )
            rows = [
                ("no cache", timed(app, "plain", args.workers)),
                ("cache, all misses", timed(app, "cached", args.workers)),
                ("cache, all hits", timed(app, "cached", args.workers)),
            ]
    print(f"{args.width} parallel no-op tasks, {args.workers} worker threads")
    for label, took in rows:
        print(f"  {label:<18} {took:6.2f} s  {args.width / took:8.0f} tasks/s")


if __name__ == "__main__":
    main()

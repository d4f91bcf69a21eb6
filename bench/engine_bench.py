"""Engine benchmarks on embedded SQLite: throughput, per-hop latency, start-up and idle cost.

Usage: .venv/bin/python bench/engine_bench.py [--workers N] [--only W1,W2,...]
       [--executor thread|process]

Workloads (no-op Python tasks returning a small value, through the real store, claims,
leases and event rows, with an in-process worker of N threads):
  W1  one task -> 500 parallel -> one join receiving all 500 results
  W2  a chain of 100: wall time per task, and the recorded hop (one task's finish to the
      next one's claim; 0 where the finishing worker claimed it in the same transaction)
  W3  10 layers x 10 tasks, each depending on every task of the previous layer
  W4  one task -> 2,000 parallel -> one join
Also: `orchestrion run` of a 3-task example from process start to exit, and the CPU an
idle worker and housekeeping loop use over 5 s. ``--executor process`` runs each task of
W1, W2 and W4 in a child process of its own (the cost of that isolation per task).
  CPU 4 CPU-bound tasks at once, in threads and then in child processes (the GIL).
"""

from __future__ import annotations

import argparse
import itertools
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.spec.model import (
    InputSpec,
    ParamSpec,
    ParamType,
    PythonAction,
    TaskSpec,
    WorkflowSpec,
)
from orchestrion.triggers.maintenance import Maintenance
from orchestrion.worker.executor_choice import executor_from_name
from orchestrion.worker.executors import Executor
from orchestrion.worker.loop import Worker, WorkerSettings
from orchestrion.worker.sizing import DEFAULT_CONCURRENCY


def noop() -> int:
    return 1


def join(xs: object) -> int:
    return len(xs) if isinstance(xs, dict | list) else 0


def _task(name: str, deps: tuple[str, ...] = (), module: str = "bench") -> TaskSpec:
    return TaskSpec(name=name, action=PythonAction(ref=f"{module}:noop"), depends_on=deps)


def burn(n: int) -> int:
    return sum(i * i for i in range(n))


def cpu_tasks(count: int, n: int) -> WorkflowSpec:
    """`count` independent CPU-bound tasks (`engine_bench:burn`, importable by a child)."""
    tasks = tuple(
        TaskSpec(
            name=f"b{i}",
            action=PythonAction(ref="engine_bench:burn"),
            inputs={"n": InputSpec(value=n)},
        )
        for i in range(count)
    )
    return WorkflowSpec(name="cpu", tasks=tasks)


def items(n: int) -> list[int]:
    return list(range(n))


def fan(name: str, width: int, module: str = "bench") -> WorkflowSpec:
    """start -> `width` parallel tasks (a mapped task, one task run per item) -> join.
    The tasks' code is `module`'s `items`, `noop` and `join`."""
    return WorkflowSpec(
        name=name,
        params={"n": ParamSpec(type=ParamType.INTEGER, default=width)},
        tasks=(
            TaskSpec(
                name="start",
                action=PythonAction(ref=f"{module}:items"),
                inputs={"n": InputSpec(expr="params.n")},
            ),
            TaskSpec(
                name="mid",
                action=PythonAction(ref=f"{module}:noop"),
                depends_on=("start",),
                map_over="tasks.start",
            ),
            TaskSpec(
                name="join",
                action=PythonAction(ref=f"{module}:join"),
                depends_on=("mid",),
                inputs={"xs": InputSpec(expr="tasks.mid")},
            ),
        ),
    )


def chain(length: int, module: str = "bench", name: str = "w2") -> WorkflowSpec:
    tasks = [_task("c0", (), module)]
    tasks += [_task(f"c{i}", (f"c{i - 1}",), module) for i in range(1, length)]
    return WorkflowSpec(name=name, tasks=tuple(tasks))


def layers(depth: int, width: int) -> WorkflowSpec:
    tasks: list[TaskSpec] = []
    previous: tuple[str, ...] = ()
    for layer in range(depth):
        names = tuple(f"l{layer}_{i}" for i in range(width))
        tasks += [_task(n, previous) for n in names]
        previous = names
    return WorkflowSpec(name="w3", tasks=tuple(tasks))


def round_trips(app: App, label: str) -> None:
    """Print the store's round trips per task run for claims, finishes and heartbeats
    (PostgreSQL counts them; SQLite has no network round trips), then start counting anew."""
    trips = getattr(app.store.backend, "trips", None)
    if trips is None:
        return
    verbs = trips.snapshot()
    trips.reset()
    parts = [
        f"{name} {v.per_item():.2f} round trips/task ({v.round_trips} in {v.calls} calls"
        f" for {v.items} task runs, {v.statements} statements)"
        for name, v in sorted(verbs.items())
    ]
    total = sum(v.round_trips for k, v in verbs.items() if k in ("claim", "finish"))
    finished = verbs["finish"].items if "finish" in verbs else 0
    if finished:
        parts.append(f"claim+finish {total / finished:.2f} round trips/task")
    print(f"  {label} round trips: " + "; ".join(parts))


def run_workload(
    app: App, spec: WorkflowSpec, workers: int, executor: Executor | None = None
) -> tuple[float, int, str]:
    app.store.workflows.register_workflow(spec, source=None, now=time.time())
    worker = Worker(
        app.store.runs,
        app.store.workflows,
        app.store.notifier,
        app.code,
        WorkerSettings(concurrency=workers),
        app.clock,
        executor=executor,
    )
    worker.start()
    try:
        start = time.perf_counter()
        trips = getattr(app.store.backend, "trips", None)
        if trips is not None:
            trips.reset()
        run = app.runs.trigger(spec.name)
        while not app.store.reads.get_run(run.id).state.finished:
            app.store.notifier.wait_for_change(0.01)
        elapsed = time.perf_counter() - start
    finally:
        worker.stop()
    final = app.store.reads.get_run(run.id)
    assert final.state.value == "succeeded", (final.state, final.error)
    return elapsed, len(spec.tasks), run.id


def hop_latencies(app: App, run_id: str) -> list[float]:
    task_runs = {t.id: t for t in app.store.reads.list_task_runs(run_id)}
    attempts = {a.task_run_id: a for a in app.store.reads.list_attempts(run_id)}
    order = sorted(task_runs.values(), key=lambda t: int(t.task_name[1:]))
    hops = []
    for prev, nxt in itertools.pairwise(order):
        finished = prev.finished_at
        started = attempts[nxt.id].started_at
        if finished is not None:
            hops.append((started - finished) * 1000)
    return hops


def cli_startup(tmp: Path) -> float:
    flow = tmp / "three.py"
    flow.write_text(
        textwrap.dedent("""
        from orchestrion.spec.python import task, workflow

        @task
        def a() -> int:
            return 1

        @task
        def b(x: int) -> int:
            return x + 1

        @task
        def c(x: int) -> int:
            return x * 2

        @workflow
        def three():
            c(b(a()))
    """)
    )
    times = []
    for i in range(5):
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "orchestrion.cli.main",
                "run",
                str(flow),
                "--db",
                str(tmp / f"cli{i}.db"),
                "-q",
            ],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def idle_cpu(app: App) -> float:
    worker = Worker(
        app.store.runs,
        app.store.workflows,
        app.store.notifier,
        app.code,
        WorkerSettings(),
        app.clock,
    )
    housekeeping = Maintenance(app.store.runs, app.clock, every=1.0)
    worker.start()
    housekeeping.start()
    time.sleep(0.5)
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    time.sleep(5.0)
    after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - wall
    housekeeping.stop()
    worker.stop()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return 100.0 * cpu / wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--only", default="W1,W2,W3,W4,CLI,IDLE")
    parser.add_argument(
        "--db",
        default=None,
        help="Database URL (default: a fresh SQLite file); e.g. a fresh"
        " postgresql://postgres@127.0.0.1/bench database",
    )
    parser.add_argument("--executor", choices=("thread", "process"), default="thread")
    args = parser.parse_args()
    only = set(args.only.split(","))
    executor = executor_from_name(args.executor)
    # A child process imports this file as `engine_bench` (its folder is on sys.path).
    module = "bench" if executor is None else "engine_bench"
    tmp = Path(tempfile.mkdtemp(prefix="orchestrion-bench-"))
    with App(Settings(database_url=args.db or f"sqlite:///{tmp}/bench.db")) as app:
        app.code.add({f"{module}:noop": noop, f"{module}:join": join, f"{module}:items": items})
        _fans(app, only, args.workers, executor, module)
        if "W2" in only:
            _chain(app, args.workers, executor, module)
        if "W3" in only:
            elapsed, n, _ = run_workload(app, layers(10, 10), args.workers)
            print(f"W3: {n} tasks (10x10 layers) in {elapsed:.3f}s = {n / elapsed:,.0f} tasks/s")
        if "CPU" in only:
            _cpu(app)
        if "CLI" in only:
            print(
                f"CLI: `orchestrion run` of a 3-task workflow, start to exit, median of 5:"
                f" {cli_startup(tmp):.3f}s"
            )
        if "IDLE" in only:
            print(f"IDLE: worker + housekeeping idle for 5 s: {idle_cpu(app):.2f}% of one core")


def _fans(app: App, only: set[str], workers: int, executor: Executor | None, module: str) -> None:
    """W1 and W4: fan-outs of 500 and 2000 tasks, and their per-task cost ratio."""
    per_task: dict[str, float] = {}
    for label, spec in (("W1", fan("w1", 500, module)), ("W4", fan("w4", 2000, module))):
        if label in only:
            elapsed, n, _ = run_workload(app, spec, workers, executor)
            n = n - 1 + int(label == "W1") * 500 + int(label == "W4") * 2000
            per_task[label] = elapsed / n * 1000
            print(
                f"{label}: {n} tasks in {elapsed:.3f}s = {n / elapsed:,.0f} tasks/s"
                f" ({per_task[label]:.3f} ms/task)"
            )
            round_trips(app, label)
    if "W1" in per_task and "W4" in per_task:
        print(f"W4/W1 per-task cost ratio: {per_task['W4'] / per_task['W1']:.2f}")


def _chain(app: App, workers: int, executor: Executor | None, module: str) -> None:
    """W2: a chain of 100 tasks, and the recorded hop from one to the next."""
    elapsed, n, run_id = run_workload(app, chain(100, module), workers, executor)
    hops = hop_latencies(app, run_id)
    print(
        f"W2: {n} chained tasks in {elapsed:.3f}s ({elapsed / n * 1000:.2f} ms per"
        f" task, wall); recorded hop (upstream finished -> claimed) p50"
        f" {statistics.median(hops):.3f} ms, p90"
        f" {statistics.quantiles(hops, n=10)[-1]:.3f} ms, max {max(hops):.3f} ms"
    )
    round_trips(app, "W2")


def _cpu(app: App) -> None:
    """CPU: CPU-bound tasks on threads, then on processes."""
    app.code.add({"engine_bench:burn": burn})
    walls = []
    for chosen in (None, executor_from_name("process")):
        elapsed, _, _ = run_workload(app, cpu_tasks(4, 20_000_000), 4, chosen)
        walls.append(elapsed)
        if chosen is not None:
            chosen.close()
    print(
        f"CPU: 4 CPU-bound tasks (sum of 20M squares each) with 4 slots: threads"
        f" {walls[0]:.2f}s, processes {walls[1]:.2f}s wall"
    )


if __name__ == "__main__":
    main()

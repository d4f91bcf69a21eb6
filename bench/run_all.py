"""Every row of issue 20's table in one command, each the median of N runs, as a table.

Usage: .venv/bin/python bench/run_all.py [--runs 5] [--big-runs 1]
       [--map-sizes 2000,10000,50000] [--only startup,engine,map] [--no-callgrind]
       [--json results.json]

Rows (embedded SQLite, default worker concurrency, no-op Python tasks):
  --version        `orchestrion --version`, whole process (start to exit)
  run (existing)   `orchestrion run` of a 3-task file into a database that exists, whole
                   process (the second run onwards: a user's usual case)
  run (fresh)      the same into a new database file (its migrations are part of it)
  W1               1 -> 500 -> 1, trigger to finished, tasks/s
  W3               10 layers x 10, each task depending on the whole previous layer, tasks/s
  W2               a chain of 100: wall time per task
  map N            a mapped task over N items (one process per size), tasks/s, and the
                   process's peak memory (ru_maxrss) for the largest size

Start-up is also given in figures that the machine's load does not move: the `-X importtime`
total (the sum of top-level imports' cumulative microseconds; it inflates wall time a
little) and, when valgrind is installed, callgrind's instruction count for the whole process.

Python caches compiled modules (``__pycache__``); a machine that sets
``PYTHONDONTWRITEBYTECODE`` (this project's sandbox does) compiles every module on every
start. Start-up rows are measured both ways: the headline row with a bytecode cache in a
temporary ``PYTHONPYCACHEPREFIX`` (what an installed package has), and a "no pyc" row.

Fast rows run `--runs` times (median); map sizes over 10,000 items run `--big-runs` times,
so that the default finishes in a few minutes. Benchmarks are scripts, not timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine_bench import chain, fan, items, join, layers, noop, run_workload

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.spec.model import WorkflowSpec
from orchestrion.worker.sizing import DEFAULT_CONCURRENCY

THREE = textwrap.dedent("""
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

# Issue 20's "today" figures and targets, printed beside what this run measured.
ISSUE = {
    "--version": ("0.61 s", "<= 0.08 s"),
    "run": ("0.71 s", "<= 0.20 s"),
    "W1": ("1,800 tasks/s", ">= 5,000"),
    "W3": ("1,100 tasks/s", ">= 4,000"),
    "W2": ("0.73 ms", "<= 0.25 ms"),
    "map2000": ("2,340 tasks/s", "flat"),
    "map10000": ("1,760 tasks/s", "flat"),
    "map50000": ("1,180 tasks/s", "flat"),
    "map100000": ("", "flat"),
    "flat": ("0.50x (50,000)", ">= 0.9x (100,000)"),
    "memory": ("115 MB at 50,000", "<= 150 MB at 100,000"),
}


@dataclass
class Row:
    """One printed row: what was measured, the median, and the spread."""

    name: str
    value: str
    detail: str
    key: str


# ------------------------------------------------------------------------------ start-up


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrion.cli.main", *args]


def startup_env(pyc: Path | None) -> dict[str, str]:
    """The environment of a measured process: with a bytecode cache in `pyc`, or none."""
    env = dict(os.environ)
    if pyc is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pyc)
    return env


def wall(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds of one process, start to exit, and the CPU seconds it used (user and
    system: on a busy machine, less moved by other processes than wall time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def importtime_total(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """Milliseconds of imports by ``-X importtime`` (top-level cumulative), and modules."""
    out = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True
    )
    total, modules = 0, 0
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)\S", line)
        if m:
            modules += 1
            if len(m[3]) == 1:
                total += int(m[2])
    return total / 1000, modules


def instructions(argv: Sequence[str], env: dict[str, str], cwd: Path) -> int | None:
    """Instructions the whole process ran, counted by callgrind (None without valgrind)."""
    if shutil.which("valgrind") is None:
        return None
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    m = re.search(r"refs:\s+([\d,]+)", out.stderr)
    return int(m[1].replace(",", "")) if m else None


def startup_rows(runs: int, tmp: Path, callgrind: bool) -> list[Row]:
    (tmp / "three.py").write_text(THREE)
    pyc = tmp / "pyc"
    fresh = iter(range(10**6))

    def run_argv(new_db: bool) -> Callable[[], list[str]]:
        def argv() -> list[str]:
            db = f"fresh{next(fresh)}.db" if new_db else "existing.db"
            return cli("run", "three.py", "--db", db, "-q")

        return argv

    cases: list[tuple[str, str, Callable[[], list[str]]]] = [
        ("`orchestrion --version`", "--version", lambda: cli("--version")),
        ("`orchestrion run`, 3 tasks, existing db", "run", run_argv(False)),
        ("`orchestrion run`, 3 tasks, fresh db", "run", run_argv(True)),
    ]
    rows = []
    for label, key, argv in cases:
        for cache, env in (("", startup_env(pyc)), (" (no pyc)", startup_env(None))):
            wall(argv(), env, tmp)  # unmeasured: fills the bytecode cache, makes existing.db
            measured = [wall(argv(), env, tmp) for _ in range(runs)]
            times = [w for w, _ in measured]
            cpu = statistics.median(c for _, c in measured)
            imported, modules = importtime_total(argv(), env, tmp)
            detail = (
                f"min {min(times):.3f} s, CPU {cpu:.3f} s; -X importtime {imported:.0f} ms,"
                f" {modules} modules"
            )
            if callgrind and not cache:
                count = instructions(argv(), env, tmp)
                if count is not None:
                    detail += f"; callgrind {count / 1e6:,.0f} M instructions"
            rows.append(Row(label + cache, f"{statistics.median(times):.3f} s", detail, key))
    return rows


# -------------------------------------------------------------------------------- engine


def fresh_app(tmp: Path, name: str) -> App:
    app = App(Settings(database_url=f"sqlite:///{tmp}/{name}.db"))
    app.open()
    app.code.add({"bench:noop": noop, "bench:join": join, "bench:items": items})
    return app


def measure(tmp: Path, label: str, spec: WorkflowSpec, runs: int, workers: int) -> list[float]:
    """Seconds from trigger to finished of `runs` runs, each in a fresh database."""
    times = []
    for i in range(runs):
        app = fresh_app(tmp, f"{label}-{i}")
        try:
            elapsed, _, _ = run_workload(app, spec, workers)
        finally:
            app.close()
        times.append(elapsed)
    return times


def engine_rows(runs: int, tmp: Path, workers: int) -> list[Row]:
    rows = []
    w1 = measure(tmp, "w1", fan("w1", 500), runs, workers)
    n = 502
    rows.append(rate_row("W1 1 -> 500 -> 1", n, w1, "W1"))
    w3 = measure(tmp, "w3", layers(10, 10), runs, workers)
    rows.append(rate_row("W3 10 layers x 10", 100, w3, "W3"))
    w2 = measure(tmp, "w2", chain(100), runs, workers)
    per = [t / 100 * 1000 for t in w2]
    rows.append(
        Row(
            "W2 chain of 100, wall per task",
            f"{statistics.median(per):.3f} ms",
            f"min {min(per):.3f} ms over {runs} runs",
            "W2",
        )
    )
    return rows


def rate_row(label: str, n: int, times: list[float], key: str) -> Row:
    rates = [n / t for t in times]
    return Row(
        label,
        f"{statistics.median(rates):,.0f} tasks/s",
        f"{n} tasks; best {max(rates):,.0f}, worst {min(rates):,.0f} over {len(times)} runs",
        key,
    )


# ---------------------------------------------------------------------------------- maps


def map_child(width: int, workers: int) -> None:
    """In a process of its own: one mapped run of `width` items; prints JSON."""
    tmp = Path(tempfile.mkdtemp(prefix="orchestrion-map-"))
    try:
        app = fresh_app(tmp, "map")
        try:
            elapsed, _, _ = run_workload(app, fan(f"map{width}", width), workers)
        finally:
            app.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"elapsed": elapsed, "tasks": width + 2, "peak_mb": peak_kb / 1024}))


def map_rows(sizes: list[int], runs: int, big_runs: int, workers: int) -> list[Row]:
    rows = []
    peaks: dict[int, float] = {}
    rates: dict[int, float] = {}
    for width in sizes:
        repeat = runs if width <= 10_000 else big_runs
        times, peak = [], 0.0
        for _ in range(repeat):
            out = subprocess.run(
                [sys.executable, __file__, "--map-child", str(width), "--workers", str(workers)],
                check=True,
                capture_output=True,
                text=True,
            )
            got = json.loads(out.stdout.strip().splitlines()[-1])
            times.append(got["elapsed"])
            peak = max(peak, got["peak_mb"])
        row = rate_row(f"map over {width:,} items", width + 2, times, f"map{width}")
        rates[width] = statistics.median([(width + 2) / t for t in times])
        peaks[width] = peak
        rows.append(row)
    if len(rates) > 1:
        low, high = min(rates), max(rates)
        rows.append(
            Row(
                f"map {high:,} rate / {low:,} rate",
                f"{rates[high] / rates[low]:.2f}x",
                "the cost per item must not grow with the width",
                "flat",
            )
        )
    largest = max(peaks)
    rows.append(
        Row(
            f"peak memory, {largest:,}-item map",
            f"{peaks[largest]:.0f} MB",
            "ru_maxrss of the process (interpreter included)",
            "memory",
        )
    )
    return rows


# ---------------------------------------------------------------------------------- main


def print_table(rows: list[Row], runs: int) -> None:
    headers = ("row", f"median of {runs}", "issue: today", "target", "detail")
    table = [
        (r.name, r.value, ISSUE.get(r.key, ("", ""))[0], ISSUE.get(r.key, ("", ""))[1], r.detail)
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for t in table:
        print(" | ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per row (median)")
    parser.add_argument("--big-runs", type=int, default=1, help="runs of maps over 10,000")
    parser.add_argument("--map-sizes", default="2000,10000,50000")
    parser.add_argument("--only", default="startup,engine,map")
    parser.add_argument("--workers", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--no-callgrind", action="store_true", help="skip valgrind counts")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--map-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.map_child is not None:
        map_child(args.map_child, args.workers)
        return
    only = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="orchestrion-bench-"))
    rows: list[Row] = []
    started = time.perf_counter()
    try:
        if "startup" in only:
            rows += startup_rows(args.runs, tmp, not args.no_callgrind)
        if "engine" in only:
            rows += engine_rows(args.runs, tmp, args.workers)
        if "map" in only:
            sizes = [int(s) for s in args.map_sizes.split(",") if s]
            rows += map_rows(sizes, args.runs, args.big_runs, args.workers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows, args.runs)
    load = os.getloadavg()[0]
    print(
        f"\n{os.cpu_count()} CPUs, load average {load:.1f} at the end;"
        f" took {time.perf_counter() - started:.0f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()

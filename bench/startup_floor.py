"""The floor under `orchestrion run`'s start-up: what its first imports cost before any work.

Usage: .venv/bin/python bench/startup_floor.py [--runs 7] [--no-callgrind]

Issue 20 asks for `orchestrion run` of a 3-task file in at most 0.20 s, whole process. This
script measures, the same way as `bench/run_all.py` measures that row (a bytecode cache in a
temporary ``PYTHONPYCACHEPREFIX``, filled by one unmeasured run; the median and min of
``--runs`` processes; callgrind's instruction count for one), a ladder of processes that
each do a part of what the run must do:

  1. the bare interpreter (``python -c pass``);
  2. the standard library a durable run needs (sqlite3, json, threading, logging, typing,
     dataclasses);
  3. pydantic with one model built and validated (what any pydantic-validated spec pays:
     pydantic, pydantic_core, annotated_types, its first-model set-up including its plugin
     discovery through ``importlib.metadata``);
  4. ``import orchestrion.spec.python`` (what a workflow file's ``from orchestrion import
     task, workflow`` loads: the spec's pydantic models);
  5. ``orchestrion run`` of the 3-task file into an existing database.

Rows 3 and 4 say how much of the target a run has spent before it reads its file.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from run_all import THREE, cli, instructions, startup_env, wall

PYDANTIC_ONE_MODEL = """
from pydantic import BaseModel

class M(BaseModel):
    x: int

M(x=1)
"""

STDLIB = "import sqlite3, json, threading, logging, typing, dataclasses"

TARGET = 0.20


def ladder() -> list[tuple[str, list[str]]]:
    py = sys.executable
    return [
        ("python -c pass", [py, "-c", "pass"]),
        ("the standard library a run needs", [py, "-c", STDLIB]),
        ("pydantic, one model built and validated", [py, "-c", PYDANTIC_ONE_MODEL]),
        ("import orchestrion.spec.python", [py, "-c", "import orchestrion.spec.python"]),
        ("orchestrion run, 3 tasks, existing db", cli("run", "three.py", "--db", "e.db", "-q")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="processes per row (median)")
    parser.add_argument("--no-callgrind", action="store_true", help="skip valgrind counts")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="orchestrion-startup-floor-"))
    try:
        (tmp / "three.py").write_text(THREE)
        env = startup_env(tmp / "pyc")
        rows = []
        for label, argv in ladder():
            wall(argv, env, tmp)  # unmeasured: fills the bytecode cache (and makes e.db)
            times = [wall(argv, env, tmp)[0] for _ in range(args.runs)]
            count = None if args.no_callgrind else instructions(argv, env, tmp)
            rows.append((label, statistics.median(times), min(times), count))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    run_count = rows[-1][3]
    print(f"{'process':42} | median  | min     | callgrind")
    print("-" * 43 + "+---------+---------+" + "-" * 30)
    for label, median, low, count in rows:
        counted = "" if count is None else f"{count / 1e6:,.0f} M instructions"
        if count is not None and run_count:
            counted += f" ({count / run_count:.0%} of the run)"
        print(f"{label:42} | {median:.3f} s | {low:.3f} s | {counted}")
    print(f"\nissue 20's target for the run: <= {TARGET:.2f} s, whole process")


if __name__ == "__main__":
    main()

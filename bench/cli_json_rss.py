"""Peak memory of ``orchestrion runs show`` on a run with a big mapped task.

Usage: .venv/bin/python bench/cli_json_rss.py [--items 100000] [--db FILE]

Runs a mapped workflow of ``--items`` items to the end in a SQLite database (``--db``
keeps it, and reuses the run found there on the next call: making a 100,000-item run takes
minutes), then runs ``python -m orchestrion.cli.main runs show RUN -o json`` (and the table
form) as a child process with stdout to /dev/null, and prints each child's peak RSS
(``ru_maxrss``) and, for the table, how many lines it printed. Not a timed test: a figure
to report (issue 18 asked for under 200 MB at 100,000 items).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine_bench import fan, items, join, noop, run_workload

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.store.records import RunFilter


def ensure_run(db: Path, width: int) -> str:
    """The id of a succeeded run of a `width`-item map in `db`, made if there is none."""
    app = App(Settings(database_url=f"sqlite:///{db}"))
    app.open()
    try:
        app.code.add({"bench:noop": noop, "bench:join": join, "bench:items": items})
        name = f"map{width}"
        found = app.runs.list_runs(RunFilter(workflow=name, limit=5))
        done = [r for r in found if r.state.value == "succeeded"]
        if done:
            return done[0].id
        start = time.perf_counter()
        _, _, run_id = run_workload(app, fan(name, width), workers=8)
        print(f"made run {run_id} of {width:,} items in {time.perf_counter() - start:.0f}s")
        return run_id
    finally:
        app.close()


def child_peak(args: list[str], db: Path) -> tuple[float, int]:
    """Peak RSS (MB) of one CLI child and how many lines it printed."""
    argv = [sys.executable, "-m", "orchestrion.cli.main", *args, "--db", str(db)]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None
        lines = sum(1 for _ in proc.stdout)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{args} exited {proc.returncode}")
    return usage.ru_maxrss / 1024, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="orchestrion-rss-")) / "rss.db"
    run_id = ensure_run(db, args.items)
    for label, cmd in (
        ("runs show -o json", ["runs", "show", run_id, "-o", "json"]),
        ("runs show (table)", ["runs", "show", run_id]),
    ):
        start = time.perf_counter()
        peak, lines = child_peak(cmd, db)
        took = time.perf_counter() - start
        print(
            f"{label:<20} {args.items:>9,} items: peak RSS {peak:6.0f} MB,"
            f" {lines:>9,} lines, {took:.1f}s"
        )
    print(
        f"(interpreter baseline: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        " in this process, which also made the run)"
    )


if __name__ == "__main__":
    main()

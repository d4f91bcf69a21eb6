"""Retention under a steady load: does the database stay flat?

Simulates DAYS days of RUNS finished runs a day (each with a task run, an attempt, two
events and two log lines, written by SQL as the tests do) on a SQLite file, under a policy
that keeps 7 days, applying the policy once a simulated day with a fake clock. Prints one
JSON line per day: runs in the database, file size (after a WAL checkpoint), free pages,
and how long the day's pruning took. After day 7 the run count and the file size should
stay flat.

    uv run --frozen python -m bench.retention_soak [DAYS] [RUNS]
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from tests.retention_fill import Db, fill

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.clock import FakeClock
from orchestrion.triggers.retention import DAY

#: Tags of the fill batches (one a day, reused once a batch is long gone).
_TAGS = "abcdefghijklmnopqrstuvwxyz"


def main(days: int = 30, per_day: int = 5000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "soak.db"
        base = time.time() - (days + 1) * DAY
        clock = FakeClock(base)
        with App(Settings(database_url=f"sqlite:///{path}"), clock=clock) as app:
            spec = Path(tmp) / "w.yaml"
            spec.write_text("name: bulk\ntasks:\n  a:\n    shell: [echo, hi]\n")
            (loaded,) = app.workflows.load(spec)
            app.retention.set_policy("*", runs_days=7, logs_days=3)
            db = Db(app.settings.database_url)
            for day in range(days):
                start, step = base + day * DAY, DAY / per_day / 2
                tag = _TAGS[day % 26]
                fill(db, workflow="bulk", version=loaded.version, n=per_day, start=start,
                     step=step, tag=tag)  # fmt: skip
                clock.set(base + (day + 1) * DAY)
                t0 = time.perf_counter()
                counts = app.retention.apply_policies()
                took = time.perf_counter() - t0
                conn = sqlite3.connect(path)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                free = conn.execute("PRAGMA freelist_count").fetchone()[0]
                conn.close()
                print(json.dumps({
                    "day": day, "runs": db.count("runs"), "logs": db.count("logs"),
                    "file_mb": round(path.stat().st_size / 1e6, 2), "free_pages": free,
                    "pruned_runs": counts.runs, "pruned_logs": counts.logs,
                    "prune_seconds": round(took, 2),
                }), flush=True)  # fmt: skip
            db.close()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))

"""A full disk under ``orchestrion run`` on SQLite (issue 12, finding 9a).

The database lives on a small filesystem of its own: a tmpfs mounted for the test (the
test runs as root here), so that writes fail exactly as on a full disk (ENOSPC, "database
or disk is full"). Without the right to mount, the test fails under CI=true and is
skipped elsewhere: ``ulimit -f`` (RLIMIT_FSIZE) was the alternative, but it fails writes
with EFBIG, which SQLite reports as a generic I/O error, not as a full disk.

``orchestrion run`` works through a chain of tasks; the disk is filled mid-run. Before,
its claim, heartbeat and maintenance threads died with uncaught exceptions and the command
hung. Now: it stops within its patience (``ORCHESTRION_STORE_PATIENCE``) with a message
that says how to resume and a non-zero exit, no thread dies with a traceback, the file
passes an integrity check with everything recorded before the disk filled, and once space
is freed ``orchestrion run --resume`` finishes the run, each task with one success.
Long-running ``orchestrion worker`` processes instead wait the full disk out: none of
their threads dies, and the run finishes once space returns.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fault.conftest import APPEND, Cluster, wait_for
from tests.processes import Proc

TASKS = 40

FLOW = f'''"""A chain of short tasks, each appending "done <key> <attempt>" to a file."""
import os
import time
from typing import Any

from orchestrion.spec.python import task, workflow
{APPEND}

@task(retries=0)
def items(n: int) -> list[int]:
    return list(range(n))


@task(retries=0)
def step(i: int, log: str, ctx: Any) -> int:
    time.sleep(0.25)
    append(log, f"done {{ctx.idempotency_key}} {{ctx.attempt}}")
    return i


@workflow
def disk_fill(n: int = 10, log: str = "effects.log"):
    step.map(items(n), log=log)
'''


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """The test's processes, SIGKILLed (with their children) if still running at the end."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill_group()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs of the test's own (unmounted afterwards)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        why = f"cannot mount a small filesystem here: {made.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the filesystem is full; the file (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):  # down to the last byte
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def _rows(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def test_a_full_disk_stops_orchestrion_run_cleanly_and_resume_finishes(
    tmp_path: Path, small_disk: Path, procs: list[Proc]
) -> None:
    db = small_disk / "run.db"
    flow = tmp_path / "flow.py"
    flow.write_text(FLOW)
    effects = tmp_path / "effects.log"
    env = {
        **os.environ,
        "ORCHESTRION_STORE_PATIENCE": "4",
        "ORCHESTRION_LEASE_SECONDS": "2",
        "ORCHESTRION_HEARTBEAT_SECONDS": "0.3",
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
        "COLUMNS": "250",
    }
    env.pop("ORCHESTRION_DATABASE_URL", None)
    args = ["run", str(flow), "--db", str(db), "-c", "2", "-q", "-p", f"n={TASKS}",
            "-p", f"log={effects}"]  # fmt: skip
    first = Proc("run", args, tmp_path, env, tmp_path)
    procs.append(first)

    def succeeded() -> int:
        with contextlib.suppress(sqlite3.Error):
            found = _rows(db, "SELECT count(*) FROM task_runs WHERE state = 'succeeded'")
            return int(str(found[0][0]))
        return 0

    wait_for("a few tasks to succeed", lambda: succeeded() >= 5, 60, first.output)
    filler = _fill(small_disk)
    before = succeeded()
    filled_at = time.monotonic()
    code = first.wait(60)
    out = first.output()
    print(out[-3000:])
    print(f"exited {code} {time.monotonic() - filled_at:.1f} s after the disk filled")
    assert code != 0
    assert "the database has refused writes" in out and "database or disk is full" in out, out
    match = re.search(r"orchestrion run --resume (\S+?)`", out)
    assert match, out
    run_id = match.group(1)
    assert "Exception in thread" not in out, out  # no thread died with an uncaught error
    assert "cannot rollback" not in out, out

    filler.unlink()  # space returns
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert succeeded() >= before  # nothing recorded before the disk filled was lost
    resumed = Proc("resume", ["run", "--resume", run_id, "--db", str(db), "-q"], tmp_path,
                   env, tmp_path)  # fmt: skip
    procs.append(resumed)
    assert resumed.wait(60) == 0, resumed.output()
    [(state,)] = _rows(db, "SELECT state FROM runs WHERE id = ?", (run_id,))
    assert state == "succeeded"
    outcomes = _rows(
        db,
        "SELECT t.id, a.outcome FROM task_runs t LEFT JOIN attempts a ON a.task_run_id = t.id"
        " WHERE t.run_id = ? AND t.task_name = 'step' AND t.kind = 'item'",
        (run_id,),
    )
    per_task: dict[object, list[object]] = {}
    for task_run, outcome in outcomes:
        per_task.setdefault(task_run, []).append(outcome)
    assert len(per_task) == TASKS
    assert all(o.count("succeeded") == 1 for o in per_task.values()), per_task
    done = {line.split()[1] for line in effects.read_text().splitlines()}
    assert len(done) == TASKS


def test_workers_wait_out_a_full_disk_and_finish_once_space_returns(
    tmp_path: Path, small_disk: Path, make_cluster: Callable[..., Cluster]
) -> None:
    """Long-running workers do not stop on a full disk: their threads back off and retry,
    none dies, and the run finishes once space returns, each task with one success."""
    db = small_disk / "workers.db"
    cluster = make_cluster(f"sqlite:///{db}", "full", lease=2.0, heartbeat=0.3)
    (cluster.flows / "flow.py").write_text(FLOW)
    effects = tmp_path / "effects.log"
    cluster.deploy()
    workers = [cluster.worker(f"w{i}", concurrency=2) for i in range(2)]
    run = cluster.trigger("disk_fill", {"n": TASKS, "log": str(effects)})

    def succeeded() -> int:
        with contextlib.suppress(sqlite3.Error):
            found = _rows(db, "SELECT count(*) FROM task_runs WHERE state = 'succeeded'")
            return int(str(found[0][0]))
        return 0

    wait_for("a few tasks to succeed", lambda: succeeded() >= 5, 60, cluster.report)
    filler = _fill(small_disk)
    time.sleep(8)  # heartbeats, claims and reports fail; leases lapse
    assert all(w.alive() for w in workers), cluster.report()
    logs = cluster.report()
    assert "database or disk is full" in logs, logs
    assert "Exception in thread" not in logs and "cannot rollback" not in logs, logs
    filler.unlink()

    def finished() -> str | None:
        with contextlib.suppress(sqlite3.Error):
            [(state,)] = _rows(db, "SELECT state FROM runs WHERE id = ?", (run,))
            return str(state) if state in ("succeeded", "failed", "canceled") else None
        return None

    assert wait_for("the run to finish", finished, 60, cluster.report) == "succeeded"
    assert all(w.alive() for w in workers), cluster.report()
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    rows = _rows(
        db,
        "SELECT t.id, count(a.id) FROM task_runs t JOIN attempts a ON a.task_run_id = t.id"
        " AND a.outcome = 'succeeded' WHERE t.run_id = ? AND t.kind = 'item' GROUP BY t.id",
        (run,),
    )
    assert len(rows) == TASKS and {n for _, n in rows} == {1}, rows

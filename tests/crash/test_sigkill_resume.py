"""SIGKILL ``orchestrion run`` at random moments, resume, repeat: nothing is lost or redone.

A 200-task workflow (20 layers of 10; each task waits for two tasks of the layer before)
is run by the real command in a subprocess and killed with SIGKILL after a random delay
(0.2 to 2 s, counted from the process start, so start-up, registration, triggering and
resumption are hit too); then ``orchestrion run --resume <run-id>`` is started and maybe
killed again; ten kills in all, then a last resume finishes. Should a run finish before the
ten kills are spent, another run of the same workflow is started and the killing goes on,
so that every kill interrupts real work. Every run must then hold up:

* it succeeded, and each of its 200 task runs has exactly one ``succeeded`` attempt, which
  is its last attempt (no attempt was claimed after a success was committed), and every
  other attempt is ``lost`` (the work of a killed process);
* the side-effect log (appended with O_APPEND and fsync by the tasks, keyed by the
  idempotency key) has a ``start`` line for attempts that the database knows, never after
  the successful attempt, and at least one ``done`` line per task; a task with two ``done``
  lines (killed after its effect, before its success was committed) must have a ``lost``
  attempt for each extra one. The test prints how many such tasks there were.

The seed is printed; set ``ORCHESTRION_CRASH_SEED`` to replay a run's kill schedule.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import db_arg, on_postgres

KILLS = 10
LAYERS, WIDTH = 20, 10
CONCURRENCY = 2

WORKFLOW = f'''\
"""200 tasks: {LAYERS} layers of {WIDTH}; each appends start/done lines to a side-effect log."""
import os
import random
import time

from orchestrion.spec.python import task, workflow


def append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@task
def step(log: str, ctx) -> str:
    append(log, f"start {{ctx.idempotency_key}} {{ctx.attempt}}")
    time.sleep(random.uniform(0.005, 0.030))
    append(log, f"done {{ctx.idempotency_key}}")
    return ctx.idempotency_key


@workflow
def crash200(log: str):
    prev = []
    for layer in range({LAYERS}):
        row = []
        for i in range({WIDTH}):
            after = [prev[i], prev[(i + 1) % {WIDTH}]] if prev else []
            row.append(step.options(name=f"t{{layer:02d}}_{{i}}", after=after)(log))
        prev = row
'''


class Orchestrion:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.db = tmp_path / "crash.db"
        self.env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
        self.env.pop("ORCHESTRION_DATABASE_URL", None)
        self.spawned = 0

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        self.spawned += 1
        out = open(self.tmp / f"proc-{self.spawned:02d}.out", "wb")  # noqa: SIM115
        with out:
            return subprocess.Popen(
                [sys.executable, "-m", "orchestrion.cli.main", *args, "--db", db_arg(self.db)],
                cwd=self.tmp,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def call(self, *args: str) -> Any:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", *args, "--db", db_arg(self.db), "-o",
             "json"],
            cwd=self.tmp, env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stderr}"
        return json.loads(proc.stdout)

    def run_ids(self) -> list[str]:
        if not on_postgres() and not self.db.exists():
            return []
        return [r["id"] for r in self.call("runs", "list", "-n", "1000")]

    def output(self, number: int) -> str:
        return (self.tmp / f"proc-{number:02d}.out").read_text(errors="replace")


def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    seed = int(os.environ.get("ORCHESTRION_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\ncrash test seed: {seed} (ORCHESTRION_CRASH_SEED={seed} replays it)")
    rng = random.Random(seed)
    wf = tmp_path / "crash200.py"
    wf.write_text(WORKFLOW)
    log = tmp_path / "effects.log"
    cli = Orchestrion(tmp_path)
    began = time.monotonic()

    runs: list[str] = []  # every run started, oldest first
    current: str | None = None  # the run being driven, None to start a new one
    kills, schedule = 0, []
    while kills < KILLS or not runs:  # (a loaded machine may kill every start early)
        if current is None:
            proc = cli.start("run", str(wf), "-p", f"log={log}", "-q", "-c", str(CONCURRENCY))
        else:
            proc = cli.start("run", "--resume", current, "-q", "-c", str(CONCURRENCY))
        delay = rng.uniform(0.2, 2.0)
        try:
            code = proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            schedule.append(f"{delay:.2f}s")
            code = None
        if code is not None:  # it finished before the kill: the run must have succeeded
            assert code == 0, f"exit {code}:\n{cli.output(cli.spawned)}"
            schedule.append(f"(done in <{delay:.2f}s)")
        known = cli.run_ids()
        new = [r for r in reversed(known) if r not in runs]
        assert len(new) <= 1, f"one process created several runs: {new}"
        runs += new
        current = new[0] if new else current
        if code == 0:
            current = None  # finished: start another run while kills remain
    for run_id in runs:  # let every run finish
        proc = cli.start("run", "--resume", run_id, "-q", "-c", "8")
        code = proc.wait(timeout=120)
        assert code == 0, f"final resume of {run_id}: exit {code}\n{cli.output(cli.spawned)}"
    took = time.monotonic() - began

    assert runs, "no run was ever created"
    effects = parse_log(log)
    double_done = 0
    lost_total = 0
    for run_id in runs:
        doubles, lost = check_run(cli.call("runs", "show", run_id), effects)
        double_done += doubles
        lost_total += lost
    print(
        f"kills: {kills} ({', '.join(schedule)}); processes: {cli.spawned}; runs: {len(runs)}; "
        f"lost attempts: {lost_total}; tasks whose effect ran twice (a lost attempt had "
        f"written 'done'): {double_done}; took {took:.1f}s"
    )


def parse_log(path: Path) -> dict[str, dict[str, Any]]:
    """idempotency key -> {"starts": [attempt numbers], "done": count}."""
    effects: dict[str, dict[str, Any]] = collections.defaultdict(lambda: {"starts": [], "done": 0})
    for line in path.read_text().splitlines():
        kind, rest = line.split(" ", 1)
        if kind == "start":
            key, attempt = rest.rsplit(" ", 1)
            effects[key]["starts"].append(int(attempt))
        else:
            assert kind == "done", f"torn or unknown line in the side-effect log: {line!r}"
            effects[rest]["done"] += 1
    return effects


def check_run(show: dict[str, Any], effects: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """Assert the run's invariants; return (tasks with two 'done' lines, lost attempts)."""
    run = show["run"]
    assert run["state"] == "succeeded", run
    task_runs = show["task_runs"]
    assert len(task_runs) == LAYERS * WIDTH
    by_run: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for attempt in show["attempts"]:
        by_run[attempt["task_run_id"]].append(attempt)
    doubles = lost = 0
    for tr in task_runs:
        key = f"{run['id']}/{tr['task_name']}"
        assert tr["state"] == "succeeded", tr
        attempts = sorted(by_run[tr["id"]], key=lambda a: a["number"])
        outcomes = [a["outcome"] for a in attempts]
        assert outcomes.count("succeeded") == 1, (key, outcomes)
        assert outcomes[-1] == "succeeded", f"{key}: an attempt after the success: {outcomes}"
        assert set(outcomes[:-1]) <= {"lost"}, (key, outcomes)
        assert [a["number"] for a in attempts] == list(range(1, len(attempts) + 1)), attempts
        assert tr["attempts"] == len(attempts), (tr, attempts)
        won = attempts[-1]["number"]
        mine = effects.get(key, {"starts": [], "done": 0})
        assert mine["done"] >= 1, f"{key} succeeded but its effect never completed"
        starts = mine["starts"]
        assert won in starts, f"{key}: the successful attempt {won} never started: {starts}"
        assert max(starts) == won, f"{key}: attempt started after success: {starts} vs {won}"
        assert len(starts) == len(set(starts)), f"{key}: an attempt ran twice: {starts}"
        lost_here = outcomes.count("lost")
        lost += lost_here
        if mine["done"] > 1:
            doubles += 1
            assert lost_here >= mine["done"] - 1, (
                f"{key}: {mine['done']} 'done' lines but only {lost_here} lost attempts"
            )
    return doubles, lost


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    yield
    # Nothing to clean: every process was waited for; tmp_path holds the rest.

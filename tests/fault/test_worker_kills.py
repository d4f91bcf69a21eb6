"""Workers killed and paused on PostgreSQL (issue 4, "Fault tests that must exist").

* 4 ``orchestrion worker`` processes and a scheduler (which reaps expired leases) run
  fan-outs of tiny tasks; a random worker is SIGKILLed every ~2 s and restarted, for a
  while (CI: 1,000 tasks, 15 s; ``ORCHESTRION_FAULT_SCALE=full``: 5,000 tasks, 60 s). Runs
  are started one after another until the time is up, so every kill hits real work. Then:
  every run succeeded, no task is lost, each task run has exactly one ``succeeded``
  attempt (its last), every other attempt is ``lost`` and belonged to a killed worker, and
  every extra ``done`` line of the side-effect file belongs to such a lost attempt.
* A worker paused (SIGSTOP) past its lease: another worker takes the task; on SIGCONT the
  paused worker's heartbeat finds the lease fenced and stops the attempt, whose late result
  is recorded as superseded, never as the outcome.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import time
from collections.abc import Callable
from typing import Any

from tests.fault.conftest import APPEND, Cluster, query, scale, wait_for

TASKS = scale(1_000, 5_000)
DURATION = scale(15.0, 60.0)
KILL_EVERY = 2.0
WORKERS = 4
CONCURRENCY = 8

FANOUT = f'''"""Fan-outs of tiny tasks that append "done <key> <attempt>" to a side-effect file."""
import os
import random
import time
from typing import Any

from orchestrion.spec.python import task, workflow
{APPEND}

@task(retries=0)
def items(n: int) -> list[int]:
    return list(range(n))


@task(retries=0)
def step(i: int, log: str, pause: float, ctx: Any) -> int:
    time.sleep(random.uniform(0, 2 * pause))
    append(log, f"done {{ctx.idempotency_key}} {{ctx.attempt}}")
    return i


@workflow
def fault_fanout(n: int = 10, log: str = "effects.log", pause: float = 0.01):
    step.map(items(n), log=log, pause=pause)
'''

SLOW = f'''"""One task working for a number of 50 ms steps (not wall time); stops when asked."""
import os
import time
from typing import Any

from orchestrion.spec.python import task, workflow
{APPEND}

@task(retries=0)
def slow(log: str, steps: int, ctx: Any) -> int:
    append(log, f"start {{ctx.attempt}} {{os.getpid()}}")
    try:
        for _ in range(steps):
            ctx.check_cancel()
            time.sleep(0.05)
    except BaseException:
        append(log, f"stopped {{ctx.attempt}} {{os.getpid()}}")
        raise
    append(log, f"done {{ctx.attempt}} {{os.getpid()}}")
    return os.getpid()


@workflow
def fault_slow(log: str = "slow.log", steps: int = 60):
    slow(log, steps)
'''


def _pid(worker_id: str) -> int:
    """Worker ids are ``<host>-<pid>-<hex>``."""
    return int(worker_id.rsplit("-", 2)[1])


def test_sigkill_random_workers(pg_db: str, make_cluster: Callable[..., Cluster]) -> None:
    seed = int(os.environ.get("ORCHESTRION_FAULT_SEED", random.randrange(1 << 30)))
    print(f"seed {seed} (ORCHESTRION_FAULT_SEED replays it); {TASKS} tasks, {DURATION:.0f} s")
    rng = random.Random(seed)
    cluster = make_cluster(pg_db, "kills", lease=2.0, heartbeat=0.3)
    (cluster.flows / "fanout.py").write_text(FANOUT)
    effects = cluster.root / "effects.log"
    cluster.deploy()
    cluster.scheduler()
    slots = [cluster.worker(f"w{i}", concurrency=CONCURRENCY) for i in range(WORKERS)]
    cluster.wait_workers(WORKERS)
    # Each run should take about the whole duration, so that kills land mid-run.
    pause = max(0.005, DURATION * WORKERS * CONCURRENCY / TASKS / 2 * 0.6)
    params = {"n": TASKS, "log": str(effects), "pause": pause}
    runs = [cluster.trigger("fault_fanout", params)]
    killed: set[int] = set()
    start = time.monotonic()
    while time.monotonic() - start < DURATION:
        time.sleep(rng.uniform(0.5 * KILL_EVERY, 1.5 * KILL_EVERY))
        i = rng.randrange(WORKERS)
        victim = slots[i]
        assert victim.alive(), f"{victim.name} exited by itself\n{cluster.report()}"
        victim.kill_group()
        killed.add(victim.pid)
        slots[i] = cluster.worker(f"w{i}", concurrency=CONCURRENCY)
        if cluster.run_state(runs[-1]) in ("succeeded", "failed", "canceled"):
            runs.append(cluster.trigger("fault_fanout", params))
    took = {run: cluster.wait_run(run, timeout=120 + TASKS * 0.05) for run in runs}
    print(f"{len(killed)} kills in {time.monotonic() - start:.1f} s; runs {took}")
    assert set(took.values()) == {"succeeded"}, f"{took}\n{cluster.report()}"
    alive = [p.name for p in slots if not p.alive()]
    assert not alive, f"workers exited: {alive}"

    done: collections.Counter[tuple[str, int]] = collections.Counter()
    for line in effects.read_text().splitlines():
        word, key, attempt = line.split()
        assert word == "done", line
        done[(key, int(attempt))] += 1
    assert max(done.values()) == 1, [k for k, n in done.items() if n > 1][:5]
    effects_by_key: dict[str, set[int]] = collections.defaultdict(set)
    for key, number in done:
        effects_by_key[key].add(number)

    lost = extra = 0
    for run in runs:
        run_lost, run_extra = _check_run(pg_db, run, killed, effects_by_key)
        lost, extra = lost + run_lost, extra + run_extra
    print(
        f"{len(runs)} run(s) of {TASKS} tasks; {lost} attempts lost to kills (re-run);"
        f" {extra} tasks did their effect in a killed attempt too"
    )
    # every effect line is the succeeded attempt's or a lost attempt's, counted above
    assert sum(done.values()) == TASKS * len(runs) + extra


def _check_run(
    db: str, run: str, killed: set[int], effects: dict[str, set[int]]
) -> tuple[int, int]:
    """(attempts lost, effects done by lost attempts) of one run, after checking it."""
    task_runs = query(
        db, "SELECT id, task_name, map_index, kind, state FROM task_runs WHERE run_id = %s", (run,)
    )
    mapped = [t for t in task_runs if t["task_name"] == "step" and t["map_index"] >= 0]
    assert len(mapped) == TASKS, (run, len(mapped))
    assert {t["state"] for t in task_runs} == {"succeeded"}
    attempts = query(
        db,
        "SELECT task_run_id, number, worker, outcome FROM attempts WHERE run_id = %s"
        " ORDER BY task_run_id, number",
        (run,),
    )
    by_task: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for a in attempts:
        by_task[int(a["task_run_id"])].append(a)
    lost = extra = 0
    for t in task_runs:
        history = by_task[int(t["id"])]
        if t["kind"] == "group":
            assert not history, t  # the mapped task's gathering row runs nothing
            continue
        outcomes = [a["outcome"] for a in history]
        assert outcomes.count("succeeded") == 1, (t, history)
        assert outcomes[-1] == "succeeded", (t, history)  # nothing claimed after success
        for a in history[:-1]:
            # a re-run only ever follows an attempt lost by a killed worker
            assert a["outcome"] == "lost", (t, history)
            assert _pid(str(a["worker"])) in killed, (t, a, killed)
            lost += 1
        if t["task_name"] != "step" or t["map_index"] < 0:
            continue
        numbers = [int(a["number"]) for a in history]
        did = effects.get(f"{run}/step[{t['map_index']}]", set())
        assert numbers[-1] in did, (t, history)  # no task lost: the success did its effect
        assert did <= set(numbers), (t, history, did)  # every effect is a known attempt's
        extra += len(did) - 1
    return lost, extra


def test_paused_worker_is_fenced(pg_db: str, make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(pg_db, "pause", lease=2.0, heartbeat=0.3)
    (cluster.flows / "slow.py").write_text(SLOW)
    marks = cluster.root / "slow.log"
    cluster.deploy()
    cluster.scheduler()
    first = cluster.worker("first", concurrency=2)
    cluster.wait_workers(1)
    run = cluster.trigger("fault_slow", {"log": str(marks), "steps": 60})

    def lines() -> list[str]:
        return marks.read_text().splitlines() if marks.exists() else []

    wait_for("attempt 1 to start", lambda: "start 1" in " ".join(lines()), 30, cluster.report)
    assert f"start 1 {first.pid}" in lines()
    first.signal(signal.SIGSTOP)
    paused_at = time.monotonic()
    try:
        second = cluster.worker("second", concurrency=2)
        wait_for(
            "attempt 2 to start elsewhere",
            lambda: f"start 2 {second.pid}" in lines(),
            30,
            cluster.report,
        )
        print(f"taken over {time.monotonic() - paused_at:.1f} s after the pause (lease 2 s)")
    finally:
        first.signal(signal.SIGCONT)
    wait_for(
        "the paused worker to stop its fenced attempt",
        lambda: f"stopped 1 {first.pid}" in lines(),
        15,
        cluster.report,
    )
    assert cluster.wait_run(run, timeout=30) == "succeeded"

    def superseded() -> list[dict[str, object]]:
        return query(
            pg_db,
            "SELECT data FROM events WHERE run_id = %s AND kind = 'attempt.superseded'",
            (run,),
        )

    # the late report: recorded as superseded (the worker retries it until it gets through)
    events = wait_for("the late result to be recorded", superseded, 15, cluster.report)
    assert [json.loads(str(e["data"]))["epoch"] for e in events] == [1], events
    attempts = query(
        pg_db,
        "SELECT number, worker, outcome FROM attempts WHERE run_id = %s ORDER BY number",
        (run,),
    )
    assert [a["outcome"] for a in attempts] in (
        ["lost", "succeeded"],
        ["superseded", "succeeded"],
    ), attempts
    assert _pid(str(attempts[0]["worker"])) == first.pid
    assert _pid(str(attempts[1]["worker"])) == second.pid
    [task_run] = query(pg_db, "SELECT state, result FROM task_runs WHERE run_id = %s", (run,))
    assert task_run["state"] == "succeeded"
    assert int(str(task_run["result"])) == second.pid  # the outcome is the second worker's
    assert f"done 1 {first.pid}" not in lines()
    assert first.alive() and second.alive(), cluster.report()
    print("\n".join(lines()))

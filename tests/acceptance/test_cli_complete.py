"""The CLI's state commands (``schedules list``, ``workers list``, ``backfill
create|list|show|cancel``, ``tasks mark``, ``queues``) as real ``orchestrion`` processes,
each on the local database and with ``--server`` against a real server: the same JSON and
the same table either way.

One ``orchestrion server`` (one worker process) on one database (a SQLite file, or a
PostgreSQL schema with ``ORCHESTRION_TEST_DATABASE=postgres``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_server import wait_for
from tests.acceptance.test_versions import Setup, _ready

NIGHTLY = """\
name: nightly
schedules:
  - cron: "0 3 * * *"
tasks:
  check:
    shell: [sh, -c, "exit 1"]
  publish:
    shell: [echo, published]
    depends_on: check
"""


@pytest.fixture
def s(tmp_path: Path) -> Iterator[Setup]:
    setup = Setup(tmp_path)
    (setup.work / "nightly.yaml").write_text(NIGHTLY)
    try:
        wait_for("the server", lambda: _ready(setup), timeout=60, on_fail=setup.server.output)
        setup.local("deploy", "nightly.yaml")
        yield setup
    finally:
        setup.http.close()
        setup.server.kill_group()
        print(setup.server.output()[-6000:])  # shown by pytest only when the test failed


def both(s: Setup, *args: str) -> tuple[str, str]:
    """The stdout of one command run locally and through the server."""
    return s.local(*args).stdout, s.remote(*args).stdout


def same_json(s: Setup, *args: str) -> Any:
    """The JSON of one command, asserted equal locally and through the server."""
    here, there = both(s, *args, "-o", "json")
    assert json.loads(here) == json.loads(there), (here, there)
    return json.loads(here)


def refused(s: Setup, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", *args],
        cwd=s.work,
        env=s.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_schedules_and_workers_list_the_same_both_ways(s: Setup) -> None:
    # once the scheduler has seen the schedule, nothing changes between the two reads
    wait_for(
        "the scheduler",
        lambda: s.http.get("/api/v1/schedules").json()[0]["cursor"] is not None,
        timeout=30,
        on_fail=s.server.output,
    )
    rows = same_json(s, "schedules", "list")
    said = [(r["workflow"], r["describe"]) for r in rows]
    assert said == [("nightly", "cron '0 3 * * *' in UTC")]
    assert rows[0]["next_fire"] > time.time()
    here, there = both(s, "schedules", "list")
    assert here == there and "nightly" in here and "NEXT FIRE" in here
    assert same_json(s, "schedules", "list", "-w", "other") == []

    def workers(*where: str) -> list[dict[str, Any]]:
        done = s.cli("workers", "list", "-o", "json", *where)
        out: list[dict[str, Any]] = json.loads(done.stdout)
        return [{k: v for k, v in w.items() if k != "heartbeat_at"} for w in out]

    found = workers("--db", s.db)
    assert found == workers("--server", s.url)
    assert [w["state"] for w in found] == ["running"] and found[0]["running"] == []
    here, there = both(s, "workers", "list")
    assert here.splitlines()[0] == there.splitlines()[0] and "WORKER" in here
    assert found[0]["id"] in here and found[0]["id"] in there


#: A scheduled workflow whose runs outlast the test, so that its backfills are still
#: running when canceled (nightly's runs end in a few milliseconds).
SLOW = """\
name: slow
schedules:
  - cron: "0 4 * * *"
tasks:
  wait:
    shell: [sleep, "60"]
"""


def test_backfills_create_list_show_cancel_both_ways(s: Setup) -> None:
    (s.work / "slow.yaml").write_text(SLOW)
    s.local("deploy", "slow.yaml")
    # the old spelling still creates one, and `create` does the same through the server
    said = s.local("backfill", "slow", "--from", "2026-11-01", "--to", "2026-11-02")
    first = said.stdout.split()[1].rstrip(":")
    assert said.stdout.startswith(f"backfill {first}: will create 2 runs of slow"), said.stdout
    made = s.remote(
        "backfill", "create", "slow", "--from", "2026-10-01", "--to", "2026-10-03", "-o", "json"
    )
    second = json.loads(made.stdout)
    assert (second["total"], second["state"]) == (3, "running")
    plan = s.remote("backfill", "slow", "--from", "2026-09-01", "--to", "2026-09-09", "--dry-run")
    assert "would create 9 runs" in plan.stdout

    s.local("backfill", "cancel", first)
    cancel = json.loads(s.remote("backfill", "cancel", second["id"], "-o", "json").stdout)
    assert cancel["state"] == "canceled"
    rows = same_json(s, "backfill", "list")
    assert {r["id"]: r["state"] for r in rows} == {first: "canceled", second["id"]: "canceled"}
    assert same_json(s, "backfill", "list", "-w", "other") == []
    assert same_json(s, "backfill", "show", first)["id"] == first
    here, there = both(s, "backfill", "list")
    assert here == there and first in here and "BACKFILL" in here
    here, there = both(s, "backfill", "show", second["id"])
    assert here == there and f"backfill {second['id']}  canceled" in here

    for where in (("--db", s.db), ("--server", s.url)):
        assert "nope" in refused(s, "backfill", "show", "nope", *where)
        assert "nope" in refused(s, "backfill", "cancel", "nope", *where)


def _failed_run(s: Setup) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrion.cli.main",
            "trigger",
            "nightly",
            "--wait",
            *("--server", s.url),
        ],
        cwd=s.work,
        env=s.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and "run finished: failed" in done.stdout, done
    return done.stdout.split()[1]


def _finished(s: Setup, run_id: str) -> str:
    state = ""

    def done() -> bool:
        nonlocal state
        state = s.http.get(f"/api/v1/runs/{run_id}").json()["state"]
        return state in ("succeeded", "failed", "canceled")

    wait_for(f"run {run_id}", done, timeout=60, on_fail=s.server.output)
    return state


def test_tasks_mark_resumes_a_failed_run_both_ways(s: Setup) -> None:
    here, there = _failed_run(s), _failed_run(s)
    local = json.loads(s.local("tasks", "mark", here, "check", "succeeded", "-o", "json").stdout)
    said = s.remote("tasks", "mark", there, "check", "succeeded").stdout
    assert said == f"run {there}: check marked succeeded; the run is {local['state']}\n", said
    remote = json.loads(s.http.get(f"/api/v1/runs/{there}").text)
    assert set(local) == set(remote) and local["id"] == here
    # the worker runs what the mark let through
    assert _finished(s, here) == "succeeded" and _finished(s, there) == "succeeded"

    for where in (("--db", s.db), ("--server", s.url)):
        assert "nope" in refused(s, "tasks", "mark", here, "nope", "failed", *where)
        # a succeeded task cannot be marked failed: the store's refusal, as a message
        assert "cannot be marked" in refused(s, "tasks", "mark", here, "check", "failed", *where)


def test_queues_honour_server(s: Setup) -> None:
    s.remote("queues", "set-limit", "gpu", "3")
    rows = same_json(s, "queues", "list")
    assert [(r["queue"], r["max_running"], r["running"]) for r in rows] == [("gpu", 3, 0)]
    here, there = both(s, "queues", "list")
    assert here == there and "gpu" in here
    s.local("queues", "set-limit", "cpu", "5")
    assert [r["queue"] for r in same_json(s, "queues", "list")] == ["cpu", "gpu"]
    s.remote("queues", "clear-limit", "gpu")
    s.local("queues", "clear-limit", "cpu")
    assert same_json(s, "queues", "list") == []


WIDE = """\
from orchestrion.spec.python import task, workflow


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def check(x: int) -> int:
    if x % 1000 == 7:
        raise ValueError(f"item {x} is bad")
    return x


@workflow
def wide(n: int = 3000):
    check.map(numbers(n))
"""


def test_a_big_mapped_run_is_summarised_and_its_json_is_every_row(s: Setup) -> None:
    (s.work / "wide.py").write_text(WIDE)
    done = subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", "run", "wide.py", "-q", "--db", s.db],
        cwd=s.work,
        env=s.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    assert len(lines) < 40, done.stdout  # not 3,000 rows
    assert "check: 3,000 mapped items (2,997 succeeded, 3 failed)" in done.stdout, done.stdout
    for bad in ("check[7]", "check[1007]", "check[2007]"):
        assert bad in done.stdout and f"item {bad[6:-1]} is bad" in done.stdout
    run_id = next(line.split()[2] for line in lines if " run " in line and "failed" in line)

    here, there = both(s, "runs", "show", run_id)
    assert here == there, (here, there)
    assert len(here.splitlines()) < 60 and "check[1007]" in here and "--all" in here
    every = s.local("runs", "show", run_id, "--all").stdout
    assert len(every.splitlines()) > 6000  # every item and every attempt
    assert same_json(s, "runs", "list", "-w", "wide")[0]["id"] == run_id
    here, there = both(s, "runs", "list")
    assert here == there and run_id in here
    rows = same_json(s, "runs", "show", run_id)
    assert len(rows["task_runs"]) == 2 + 3000 and rows["run"]["state"] == "failed"
    failed = [t["map_index"] for t in rows["task_runs"] if t["state"] == "failed"]
    assert failed == [-1, 7, 1007, 2007]  # the group and its failed items

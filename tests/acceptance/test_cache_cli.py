"""Task result caching through the real command (docs/caching.md): ``orchestrion run``
processes on one database (SQLite file, or PostgreSQL with
``ORCHESTRION_TEST_DATABASE=postgres``), the body's executions counted in a file.

A hit, a miss on changed inputs, a miss on changed code (with an explicit key that
ignores code still hitting), ``--no-cache``, ``cache list|clear``; two runs with one key
at once compute it once; a computing attempt that fails hands the key to the waiter."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.acceptance.conftest import Cli, by_task
from tests.helpers import db_arg

_FLOW = """\
import os
import time

from orchestrion import task, workflow


def _count(name: str) -> None:
    with open(os.environ["CACHE_COUNT_FILE"], "a") as f:
        f.write(name + "\\n")


@task(cache=True)
def add(x: int) -> int:
    _count("add")
    return x + 1


@task(cache={{"key": "inputs.x", "ttl": "1h"}})
def dbl(x: int) -> int:
    _count("dbl")
    return x * 2


@workflow
def cw(n: int = 1):
    dbl(add(n))  # {marker}
"""

_SLOW = """\
import os
import time

from orchestrion import task, workflow


@task(cache=True)
def slow(x: int) -> int:
    marker = os.environ["CACHE_COUNT_FILE"]
    with open(marker, "a") as f:
        f.write("slow\\n")
    while not os.path.exists(os.environ["CACHE_GO_FILE"]):  # the test opens the gate
        time.sleep(0.05)
    if os.environ.get("CACHE_FAIL_FIRST") and open(marker).read().count("slow") == 1:
        raise RuntimeError("the first computation fails")
    return x * 3


@workflow
def sw(n: int = 5):
    slow(n)
"""


def _counts(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    lines = path.read_text().split()
    return {name: lines.count(name) for name in set(lines)}


def _show(cli: Cli, run_id: str) -> dict[str, dict[str, object]]:
    """The run's task runs (read in-process: only the runs themselves need processes)."""
    res = cli.inproc("runs", "show", run_id, "-o", "json")
    assert res.code == 0, res
    return by_task(res.json())


def _latest(cli: Cli) -> str:
    res = cli.inproc("runs", "list", "-o", "json")
    assert res.code == 0, res
    return str(res.json()[0]["id"])


def _run(cli: Cli, *args: str) -> dict[str, dict[str, object]]:
    res = cli("run", "cw.py", "-q", *args)
    assert res.code == 0, res
    return _show(cli, _latest(cli))


def test_hits_misses_refresh_and_clear(cli: Cli, tmp_path: Path) -> None:
    counts = tmp_path / "count.txt"
    cli.env["CACHE_COUNT_FILE"] = str(counts)
    flow = cli.cwd / "cw.py"
    flow.write_text(_FLOW.format(marker="v1"))

    first = _run(cli)
    assert _counts(counts) == {"add": 1, "dbl": 1}
    source = _latest(cli)

    again = _run(cli)  # a hit: nothing ran, each task links the run that computed it
    assert _counts(counts) == {"add": 1, "dbl": 1}
    assert again["add"]["cache_run_id"] == source and again["add"]["result"] == 2
    assert again["add"]["cache_task_run_id"] == first["add"]["id"]
    shown = cli.inproc("runs", "show", _latest(cli))
    assert f"from cache: run {source}" in shown.stdout, shown

    _run(cli, "-p", "n=2")  # other inputs: a miss for both
    assert _counts(counts) == {"add": 2, "dbl": 2}

    flow.write_text(_FLOW.format(marker="v2"))  # other code: a miss for the default key
    changed = _run(cli)
    assert _counts(counts) == {"add": 3, "dbl": 2}  # dbl's key (its input) did not change
    assert changed["add"]["cache_run_id"] is None
    assert changed["dbl"]["cache_run_id"] == source

    refreshed = _run(cli, "--no-cache")
    assert _counts(counts) == {"add": 4, "dbl": 3}
    assert refreshed["add"]["cache_run_id"] is None

    listed = cli.inproc("cache", "list", "--workflow", "cw", "-o", "json", "--db", db_arg(cli.db))
    assert listed.code == 0, listed
    assert {(e["task"], e["state"]) for e in listed.json()} >= {("add", "ready"), ("dbl", "ready")}
    cleared = cli.inproc("cache", "clear", "--workflow", "cw", "--db", db_arg(cli.db))
    assert cleared.code == 0 and "cleared" in cleared.stdout, cleared
    _run(cli)
    assert _counts(counts) == {"add": 5, "dbl": 4}


def _both_running(cli: Cli, tmp_path: Path) -> list[subprocess.Popen[str]]:
    """Two runs of sw started at once, and only once both of their cached tasks are
    running (one computing, held at the gate; one waiting for the key) the gate opens."""
    cli.env["CACHE_COUNT_FILE"] = str(tmp_path / "count.txt")
    cli.env["CACHE_GO_FILE"] = str(tmp_path / "go")
    (cli.cwd / "sw.py").write_text(_SLOW)
    procs = [cli.popen("run", "sw.py", "-q") for _ in range(2)]
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the two runs did not both start their task"
        assert all(p.poll() is None for p in procs)
        res = cli.inproc("runs", "list", "-o", "json")
        ids = [r["id"] for r in res.json()] if res.code == 0 else []
        if len(ids) == 2 and all(_show(cli, r)["slow"]["state"] == "running" for r in ids):
            break
        time.sleep(0.1)
    (tmp_path / "go").touch()
    return procs


def test_two_runs_with_one_key_compute_once(cli: Cli, tmp_path: Path) -> None:
    counts = tmp_path / "count.txt"
    procs = _both_running(cli, tmp_path)
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
    assert _counts(counts) == {"slow": 1}
    shows = [_show(cli, run_id)["slow"] for run_id in cli.run_ids()]
    assert sorted(s["result"] for s in shows) == [15, 15]  # type: ignore[type-var]
    assert sum(s["cache_run_id"] is not None for s in shows) == 1


def test_a_failed_computation_hands_the_key_to_the_waiter(cli: Cli, tmp_path: Path) -> None:
    counts = tmp_path / "count.txt"
    cli.env["CACHE_FAIL_FIRST"] = "1"
    procs = _both_running(cli, tmp_path)
    for proc in procs:
        proc.communicate(timeout=120)
    codes = sorted(proc.returncode for proc in procs)
    assert codes == [0, 1]  # the first computation failed its run; the other computed
    assert _counts(counts) == {"slow": 2}
    states = sorted(str(_show(cli, r)["slow"]["state"]) for r in cli.run_ids())
    assert states == ["failed", "succeeded"]

"""Peak memory of ``orchestrion runs show`` on a run with a big mapped task.

Usage: .venv/bin/python bench/cli_json_rss.py [--items 100000] [--db FILE] [--server]

Runs a mapped workflow of ``--items`` items to the end in a SQLite database (``--db``
keeps it, and reuses the run found there on the next call: making a 100,000-item run takes
minutes), then runs ``python -m orchestrion.cli.main runs show RUN -o json`` (and the table
form) as a child process with stdout to /dev/null, and prints each child's peak RSS
(``ru_maxrss``) and, for the table, how many lines it printed. Not a timed test: a figure
to report (issue 18 asked for under 200 MB at 100,000 items). ``--server`` also measures
the same commands through an ``orchestrion server`` on the database (``--server URL``).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
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


# Runs the CLI and, at exit, prints the process's own peak RSS (VmHWM, kB) to stderr.
# Not ru_maxrss from wait4: Linux keeps the forking parent's peak in it (the bench process
# itself, which may have just made a 100,000-item run), so it would measure the parent.
_PEAK = """
import atexit, runpy, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("PEAK_KB " + line.split()[1] + "\\n")
atexit.register(peak)
sys.argv = ["orchestrion", *sys.argv[1:]]
runpy.run_module("orchestrion.cli.main", run_name="__main__")
"""


def child_peak(args: list[str], env_extra: dict[str, str] | None = None) -> tuple[float, int]:
    """Peak RSS (MB) of one CLI child and how many lines it printed."""
    argv = [sys.executable, "-c", _PEAK, *args]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env_extra or {})}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        lines = sum(1 for _ in proc.stdout)
        err = proc.stderr.read().decode()
    if proc.returncode != 0 or "PEAK_KB" not in err:
        raise SystemExit(f"{args} exited {proc.returncode}: {err[-2000:]}")
    return int(err.rsplit("PEAK_KB ", 1)[1].split()[0]) / 1024, lines


def served(db: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """An ``orchestrion server`` (no workers) on `db`, its URL and an admin token."""
    app = App(Settings(database_url=f"sqlite:///{db}"))
    app.open()
    try:
        token, _ = app.accounts.create_token("bench", {"*": "admin"}, expires="1d")
    finally:
        app.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [sys.executable, "-m", "orchestrion.cli.main", "server", "--workers", "0"]
    argv += ["--port", str(port), "--db", str(db)]
    env = {**os.environ, "ORCHESTRION_DEV_MODE": "1"}  # no secrets here: the built-in key
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/v1/ready", timeout=1).status_code == 200:
                return server, url, token
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--server", action="store_true", help="Also through a server's API.")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="orchestrion-rss-")) / "rss.db"
    run_id = ensure_run(db, args.items)
    cases: list[tuple[str, list[str], dict[str, str]]] = [
        ("runs show -o json", ["runs", "show", run_id, "-o", "json", "--db", str(db)], {}),
        ("runs show (table)", ["runs", "show", run_id, "--db", str(db)], {}),
    ]
    server = None
    if args.server:
        server, url, token = served(db)
        env = {"ORCHESTRION_TOKEN": token}
        cases.append(
            ("--server -o json", ["runs", "show", run_id, "-o", "json", "--server", url], env)
        )
        cases.append(("--server (table)", ["runs", "show", run_id, "--server", url], env))
    try:
        for label, cmd, env_extra in cases:
            measure(label, cmd, env_extra, args.items)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    print(
        f"(interpreter baseline: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
        " MB in this process, which also made the run)"
    )


def measure(label: str, cmd: list[str], env_extra: dict[str, str], items: int) -> None:
    """Run one CLI child and print its peak RSS, lines printed and wall time."""
    start = time.perf_counter()
    peak, lines = child_peak(cmd, env_extra)
    took = time.perf_counter() - start
    print(f"{label:<20} {items:>9,} items: peak RSS {peak:6.0f} MB, {lines:>9,} lines, {took:.1f}s")


if __name__ == "__main__":
    main()

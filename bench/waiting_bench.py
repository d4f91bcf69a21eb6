"""What a thousand waiting runs cost: worker slots held, and the CPU of the processes.

Usage: .venv/bin/python bench/waiting_bench.py [--db URL] [--runs 1000] [--seconds 10]

Starts a real ``orchestrion server`` (its scheduler runs the waits duty) with one worker of
4 slots on a new database (a temporary SQLite file, or the PostgreSQL database `--db`
names), triggers `--runs` runs of a workflow whose one task is an approval (with a
timeout, so the duty has due-times to look at) and a sensor-free signal wait, then idles
`--seconds` and prints, as JSON: how many wait, how many attempts exist (every slot a
worker held for them), the server's and worker's CPU seconds while idle, and the time to
approve them all through the API and see every run succeed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

FLOW = """\
name: bench_wait
tasks:
  ok:
    approval: {timeout: 24h}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu(pid: int) -> float:
    """User + system CPU seconds of `pid` and its children that it waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _seed_admin(url: str) -> str:
    from orchestrion.app import App, Settings

    with App(Settings(database_url=url)) as app:
        token, _ = app.accounts.create_token("bench", {"*": "admin"}, expires="never")
    return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="waiting-bench-"))
    url = args.db or f"sqlite:///{work / 'bench.db'}"
    (work / "flows").mkdir()
    (work / "flows" / "bench_wait.yaml").write_text(FLOW)
    token = _seed_admin(url)
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "ORCHESTRION_LEASE_SECONDS": "10",
        # A fresh key: the bench stores no secret, but the processes refuse to start without.
        "ORCHESTRION_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    env.pop("ORCHESTRION_DATABASE_URL", None)
    base = [sys.executable, "-m", "orchestrion.cli.main"]
    flows = str(work / "flows")
    log = (work / "processes.log").open("wb")
    argv = {
        "server": ["server", "--port", str(port), "--workers", "0", "--workflows", flows],
        "worker": ["worker", "--workflows", flows, "--concurrency", "4"],
    }
    procs = {
        name: subprocess.Popen(
            [*base, *args, "--db", url],
            env=env,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name, args in argv.items()
    }
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    try:
        report = _measure(http, procs, args.runs, args.seconds)
    finally:
        http.close()
        for proc in procs.values():
            proc.terminate()
            proc.wait(15)
    print(json.dumps({"database": "postgresql" if args.db else "sqlite", **report}, indent=1))


def _measure(
    http: httpx.Client, procs: dict[str, subprocess.Popen[bytes]], runs: int, seconds: float
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        try:
            if any(w["name"] == "bench_wait" for w in http.get("/api/v1/workflows").json()):
                break
        except (httpx.HTTPError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start (see processes.log in the work folder)")
        time.sleep(0.2)
    started = time.monotonic()
    ids = [
        http.post("/api/v1/workflows/bench_wait/runs", json={"params": {}}).json()["id"]
        for _ in range(runs)
    ]
    trigger_s = time.monotonic() - started
    waiting = len(http.get("/api/v1/waits", params={"limit": 10_000}).json())
    before = {name: _cpu(p.pid) for name, p in procs.items()}
    time.sleep(seconds)
    idle = {name: round(_cpu(p.pid) - before[name], 3) for name, p in procs.items()}
    attempts = sum(len(http.get(f"/api/v1/runs/{i}/attempts").json()) for i in ids[:50])
    running = [w for w in http.get("/api/v1/workers").json() if w["state"] == "running"]
    started = time.monotonic()
    for run_id in ids:
        http.post(f"/api/v1/runs/{run_id}/tasks/ok/approve", json={"reason": "bench"})
    left = len(http.get("/api/v1/waits", params={"limit": 10_000}).json())
    approve_s = time.monotonic() - started
    return {
        "runs": runs,
        "waiting": waiting,
        "attempts_of_first_50_runs": attempts,
        "worker_slots": sum(w.get("slots") or 0 for w in running),
        "worker_slots_held_by_waits": attempts,
        "idle_seconds": seconds,
        "idle_cpu_seconds": idle,
        "trigger_seconds": round(trigger_s, 2),
        "approve_all_seconds": round(approve_s, 2),
        "waiting_after_approving": left,
    }


if __name__ == "__main__":
    main()

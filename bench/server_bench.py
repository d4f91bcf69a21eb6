"""Server benchmarks: trigger-to-first-task latency, API trigger throughput, idle cost.

Usage: .venv/bin/python bench/server_bench.py [--runs 1000] [--workers 1] [--idle 10]

Starts a real `orchestrion server` (SQLite, separate worker processes) on a free loopback
port with a 3-task workflow, then measures:
  - latency from the trigger request to the first task's attempt starting (p50, p99 over
    100 sequential triggers on an idle server);
  - 1,000 runs triggered as fast as one client can (runs/s accepted) and how long until all
    of them finished (runs/s completed);
  - the CPU and memory of the server process and of each of its worker processes (its
    children running `orchestrion worker`, found under /proc by their command line) while
    idle, all over the same window (`--idle`, 10 s by default): issue 20's "memory of an idle
    server and worker".
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx
from bench_auth import seed_admin

FLOW = textwrap.dedent("""
    from orchestrion import task, workflow

    @task
    def a() -> int:
        return 1

    @task
    def b(x: int) -> int:
        return x + 1

    @task
    def c(x: int) -> int:
        return x * 2

    @workflow
    def three():
        c(b(a()))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.get("/api/v1/workflows").json():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not come up")


def first_start(client: httpx.Client, run_id: str) -> float:
    while True:
        attempts = client.get(f"/api/v1/runs/{run_id}/attempts").json()
        if attempts:
            return float(min(a["started_at"] for a in attempts))
        time.sleep(0.002)


def latency(client: httpx.Client, count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.time()
        run = client.post("/api/v1/workflows/three/runs", json={}).json()
        out.append((first_start(client, run["id"]) - t0) * 1000)
        time.sleep(0.02)
    return out


def throughput(base: str, runs: int) -> tuple[float, float]:
    local = threading.local()

    def post(_: int) -> str:
        client = getattr(local, "client", None)
        if client is None:  # one keep-alive connection per client thread
            client = local.client = httpx.Client(base_url=base, timeout=30, headers=HEADERS)
        return str(client.post("/api/v1/workflows/three/runs", json={}).json()["id"])

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(post, range(runs)))
    accepted = time.perf_counter() - t0
    with httpx.Client(base_url=base, timeout=30, headers=HEADERS) as c:
        pending = set(ids)
        while pending:
            page = c.get(
                "/api/v1/runs", params={"workflow": "three", "state": "succeeded", "limit": 500}
            ).json()
            done = 0
            cursor = None
            seen: set[str] = set()
            while True:
                seen |= {r["id"] for r in page["items"]}
                cursor = page["next_cursor"]
                if not cursor:
                    break
                page = c.get(
                    "/api/v1/runs",
                    params={
                        "workflow": "three",
                        "state": "succeeded",
                        "limit": 500,
                        "cursor": cursor,
                    },
                ).json()
            pending -= seen
            done = len(ids) - len(pending)
            if pending:
                time.sleep(0.1)
            _ = done
    completed = time.perf_counter() - t0
    return runs / accepted, runs / completed


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def is_worker(pid: int) -> bool:
    """Whether `pid` runs ``orchestrion worker`` (as the server starts them:
    ``python -m orchestrion.cli.main worker ...``)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return False
    if "orchestrion.cli.main" in argv:
        command = argv[argv.index("orchestrion.cli.main") + 1 :]
    else:
        command = argv[1:] if argv[0].endswith("orchestrion") else []
    return command[:1] == ["worker"]


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_mb(pid: int) -> float:
    """`pid`'s resident memory in MB."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def idle(pids: list[int], seconds: float) -> dict[int, tuple[float, float]]:
    """Each process's CPU (% of one core) and resident MB over one idle window of
    `seconds`, the same for all of them."""
    before, t0 = {pid: cpu_seconds(pid) for pid in pids}, time.perf_counter()
    time.sleep(seconds)
    used = {pid: cpu_seconds(pid) - before[pid] for pid in pids}
    wall = time.perf_counter() - t0
    return {pid: (100 * used[pid] / wall, resident_mb(pid)) for pid in pids}


#: The admin token's header, for the throughput threads' clients.
HEADERS: dict[str, str] = {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="orchestrion-server-bench-"))
    (tmp / "flows").mkdir()
    (tmp / "flows" / "three.py").write_text(FLOW)
    port = free_port()
    token = seed_admin(tmp / "bench.db")
    headers = {"Authorization": f"Bearer {token}"}
    HEADERS.update(headers)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrion.cli.main",
            "server",
            "--port",
            str(port),
            "--workflows",
            str(tmp / "flows"),
            "--workers",
            str(args.workers),
            "--db",
            str(tmp / "bench.db"),
        ],
        cwd=tmp,
        # A throwaway database: the insecure development key is fine for it.
        env={**os.environ, "ORCHESTRION_DEV_MODE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
            wait_ready(client)
            time.sleep(1.0)
            lat = latency(client, 100)
            q = statistics.quantiles(lat, n=100)
            print(
                f"trigger -> first task start: p50 {statistics.median(lat):.1f} ms,"
                f" p99 {q[98]:.1f} ms (100 sequential triggers, idle server)"
            )
        accepted, completed = throughput(base, args.runs)
        print(
            f"{args.runs} runs of a 3-task workflow: {accepted:.0f} runs/s accepted,"
            f" {completed:.0f} runs/s completed ({args.workers} worker process(es))"
        )
        time.sleep(2.0)
        workers = [pid for pid in descendants(server.pid) if is_worker(pid)]
        if len(workers) != args.workers:
            print(f"found {len(workers)} worker process(es), expected {args.workers}")
        measured = idle([server.pid, *workers], args.idle)
        for pid, (cpu, mem) in measured.items():
            role = "server" if pid == server.pid else "worker"
            print(
                f"{role} pid {pid} idle {args.idle:.0f} s: {cpu:.2f}% of one core,"
                f" {mem:.0f} MB resident"
            )
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()

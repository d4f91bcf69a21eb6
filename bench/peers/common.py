"""What every peer script shares: the workloads' shapes, timing, and the printed rows.

Standard library only: each peer script runs in its own virtualenv, which has the peer's
packages and nothing of Orchestrion's. A peer script defines, with its library's own API,

  w1(width)  one task -> `width` parallel no-op tasks -> one join receiving all results
  w2(length) a chain of `length` no-op tasks, each waiting for the one before
  w3(d, w)   `d` layers of `w` tasks, each depending on every task of the layer before
  client()   a 3-task flow (a -> b -> c), run from a fresh process, start to exit

and calls `main()`, which times them and prints one JSON line per row (the driver,
`run.py`, turns them into a table). Row names match Orchestrion's `bench/run_all.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

CLIENT_HOME = "PEERS_CLIENT_HOME"

W1_WIDTH, W2_LENGTH, W3_DEPTH, W3_WIDTH, W4_WIDTH = 500, 100, 10, 10, 2000

# Row keys, in the order of the table, with the names `bench/run_all.py` prints.
ROWS = {
    "W1": "W1 1 -> 500 -> 1",
    "W2": "W2 chain of 100, wall per task",
    "W3": "W3 10 layers x 10",
    "W4": "W4 1 -> 2,000 -> 1",
    "CLIENT": "3-task flow, fresh process, start to exit",
}


def noop(x: object = None) -> int:
    """The task every peer runs: nothing, returning a small value (as Orchestrion's)."""
    return 1


def items(n: int) -> list[int]:
    """The first task of a fan-out: the list the middle tasks are mapped over."""
    return list(range(n))


def join(xs: object) -> int:
    """The last task of a fan-out: receives every middle task's result."""
    return len(xs) if isinstance(xs, list | tuple | dict) else 0


@dataclass
class Peer:
    """One peer's workloads; each returns the seconds from trigger to finished."""

    name: str
    w1: Callable[[int], float]
    w2: Callable[[int], float]
    w3: Callable[[int, int], float]
    client: Callable[[], None]
    setup: Callable[[], None] = lambda: None
    teardown: Callable[[], None] = lambda: None


def emit(key: str, value: float, unit: str, detail: str) -> None:
    print(
        json.dumps({"key": key, "row": ROWS[key], "value": value, "unit": unit, "detail": detail})
    )
    sys.stdout.flush()


def rate(key: str, tasks: int, times: list[float]) -> None:
    rates = [tasks / t for t in times]
    emit(
        key,
        statistics.median(rates),
        "tasks/s",
        f"{tasks} tasks; best {max(rates):,.0f}, worst {min(rates):,.0f} over {len(times)} runs",
    )


def client_times(script: str, runs: int) -> list[float]:
    """Wall seconds of `python script --client`, start to exit: one unmeasured run first
    (fills a bytecode cache in a temporary PYTHONPYCACHEPREFIX, as an installed package
    has), then `runs` measured ones."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="peers-pyc-")
    # The peer's state (database, home folder) is kept from one run to the next, as a
    # user's is: the unmeasured run creates it, the measured ones find it there.
    env[CLIENT_HOME] = tempfile.mkdtemp(prefix="peers-client-")
    argv = [sys.executable, script, "--client"]
    subprocess.run(argv, env=env, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main(peer: Peer, script: str) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs per row (median)")
    parser.add_argument("--only", default="W1,W2,W3,W4,CLIENT")
    parser.add_argument("--client", action="store_true", help="run the 3-task flow once")
    args = parser.parse_args()
    if args.client:
        peer.client()
        return
    only = set(args.only.split(","))
    try:
        peer.setup()  # inside: a peer that started something before failing stops it
        peer.w2(3)  # unmeasured: starts whatever the peer starts lazily (servers, pools)
        if "W1" in only:
            rate("W1", W1_WIDTH + 2, [peer.w1(W1_WIDTH) for _ in range(args.runs)])
        if "W2" in only:
            per = [peer.w2(W2_LENGTH) / W2_LENGTH * 1000 for _ in range(args.runs)]
            emit("W2", statistics.median(per), "ms", f"min {min(per):.2f} ms over {args.runs} runs")
        if "W3" in only:
            n = W3_DEPTH * W3_WIDTH
            rate("W3", n, [peer.w3(W3_DEPTH, W3_WIDTH) for _ in range(args.runs)])
        if "W4" in only:
            rate("W4", W4_WIDTH + 2, [peer.w1(W4_WIDTH) for _ in range(args.runs)])
        if "CLIENT" in only:
            times = client_times(script, args.runs)
            emit(
                "CLIENT",
                statistics.median(times),
                "s",
                f"min {min(times):.3f} s over {len(times)} runs",
            )
    finally:
        peer.teardown()


def client_home() -> str:
    """The folder a client run keeps its state in (kept between the measured runs)."""
    return os.environ.get(CLIENT_HOME) or tempfile.mkdtemp(prefix="peers-client-")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start

"""Celery: the four workloads as canvases (chains, groups, chords) on a Redis broker.

Mode: Redis as broker and result backend (PEERS_REDIS_URL, default
redis://127.0.0.1:6379/13), and one worker process that this script starts
(`celery worker --pool threads --concurrency 32`: Orchestrion's default worker is one
process of 32 threads, so both have the same number of task slots). Celery's defaults
otherwise: messages acknowledged early (on receipt, not after the task: a worker that dies
loses the tasks it held), results kept in Redis, Redis's own persistence as configured on
the server. The client side (this process) sends each canvas and waits for its result.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from celery import Celery, chain, chord, group
from common import Peer, items, join, main, noop, timed

URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/13")
QUEUE = "peers_bench"
CONCURRENCY = 32

app = Celery("peer_celery", broker=URL, backend=URL)
app.conf.task_default_queue = QUEUE
app.conf.worker_hijack_root_logger = False


@app.task(name="peers.noop")
def noop_t(x: object = None) -> int:
    return noop(x)


@app.task(name="peers.items")
def items_t(n: int) -> list[int]:
    return items(n)


@app.task(name="peers.join")
def join_t(xs: list[int]) -> int:
    return join(xs)


@app.task(name="peers.a")
def a() -> int:
    return 1


@app.task(name="peers.b")
def b(x: int) -> int:
    return x + 1


@app.task(name="peers.c")
def c(x: int) -> int:
    return x * 2


def fan(width: int) -> int:
    """The start task's result decides the fan-out, so the client waits for it first."""
    values = items_t.delay(width).get()
    return int(chord(noop_t.s(i) for i in values)(join_t.s()).get())


def w2(length: int) -> float:
    return timed(lambda: chain(noop_t.s(), *(noop_t.s() for _ in range(length - 1)))().get())


def w3(depth: int, width: int) -> float:
    # A group followed by a group: Celery makes each pair a chord (a barrier in Redis).
    layers = [group(noop_t.si() for _ in range(width)) for _ in range(depth)]
    return timed(lambda: chain(*layers)().get())


_WORKER: list[subprocess.Popen[bytes]] = []


def setup() -> None:
    app.control.purge()
    argv = [sys.executable, "-m", "celery", "-A", "peer_celery", "worker", "--pool", "threads"]
    argv += ["--concurrency", str(CONCURRENCY), "-Q", QUEUE, "--loglevel", "WARNING"]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    here = Path(__file__).resolve().parent
    _WORKER.append(subprocess.Popen(argv, cwd=here, stdout=subprocess.DEVNULL))
    deadline = time.monotonic() + 120
    while not app.control.ping(timeout=1.0):
        if time.monotonic() > deadline or _WORKER[0].poll() is not None:
            raise RuntimeError("the Celery worker did not start")


def teardown() -> None:
    for worker in _WORKER:
        worker.terminate()
        worker.wait(60)


def client() -> None:
    assert chain(a.s(), b.s(), c.s())().get() == 4


PEER = Peer(
    name="celery",
    w1=lambda width: timed(lambda: fan(width)),
    w2=w2,
    w3=w3,
    client=client,
    setup=setup,
    teardown=teardown,
)

if __name__ == "__main__":
    main(PEER, sys.argv[0])

"""DBOS Transact: the four workloads as durable workflows of steps, fan-outs on a queue.

Mode: the SQLite system database (DBOS's default when no URL is given; here a file in a
temporary folder, or DBOS_SYSTEM_DATABASE_URL, e.g. a PostgreSQL database). Every
workflow's status and every step's output is checkpointed there before the workflow goes
on. A chain is a workflow calling its steps in turn (DBOS runs a workflow's steps in the
workflow's thread); a fan-out enqueues each task as a step on a queue (the README's
pattern: `DBOS.enqueue_workflow(queue, step, ...)`, then `handle.get_result()`), with the
queue's defaults (no concurrency limit, polling interval 1 s).
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from common import Peer, client_home, items, join, main, noop, timed
from dbos import DBOS

QUEUE = "peers_bench"


def database_url(folder: str | None = None) -> str:
    folder = folder or tempfile.mkdtemp(prefix="peers-dbos-")
    default = f"sqlite:///{folder}/dbos.sqlite"
    return os.environ.get("DBOS_SYSTEM_DATABASE_URL", default)


@DBOS.step()
def noop_step(x: object = None) -> int:
    return noop(x)


@DBOS.step()
def items_step(n: int) -> list[int]:
    return items(n)


@DBOS.step()
def join_step(xs: list[int]) -> int:
    return join(xs)


@DBOS.workflow()
def fan(width: int) -> int:
    handles = [DBOS.enqueue_workflow(QUEUE, noop_step, i) for i in items_step(width)]
    return join_step([h.get_result() for h in handles])


@DBOS.workflow()
def chain(length: int) -> int:
    value: Any = None
    for _ in range(length):
        value = noop_step(value)
    return int(value)


@DBOS.workflow()
def layers(depth: int, width: int) -> None:
    for _ in range(depth):
        handles = [DBOS.enqueue_workflow(QUEUE, noop_step) for _ in range(width)]
        for h in handles:
            h.get_result()


@DBOS.step()
def a() -> int:
    return 1


@DBOS.step()
def b(x: int) -> int:
    return x + 1


@DBOS.step()
def c(x: int) -> int:
    return x * 2


@DBOS.workflow()
def three() -> int:
    return c(b(a()))


def setup(folder: str | None = None) -> None:
    url = database_url(folder)
    DBOS(config={"name": "peers_bench", "system_database_url": url, "log_level": "WARNING"})
    DBOS.launch()
    # PEERS_DBOS_POLL: the queue's polling interval (DBOS's default is 1 s).
    poll = float(os.environ.get("PEERS_DBOS_POLL", "1.0"))
    DBOS.register_queue(QUEUE, polling_interval_sec=poll)


def client() -> None:
    setup(client_home())
    three()
    DBOS.destroy()


PEER = Peer(
    name="dbos",
    w1=lambda width: timed(lambda: fan(width)),
    w2=lambda length: timed(lambda: chain(length)),
    w3=lambda depth, width: timed(lambda: layers(depth, width)),
    client=client,
    setup=setup,
    teardown=lambda: DBOS.destroy(),
)

if __name__ == "__main__":
    main(PEER, sys.argv[0])

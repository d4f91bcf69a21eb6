"""Prefect 3: the four workloads as flows, tasks through `.submit()` / `.map()`.

Mode: as a local user runs it, with no PREFECT_API_URL: Prefect starts its ephemeral API
server (a subprocess on a SQLite database under PREFECT_HOME, here a temporary folder)
and records every flow and task run state there. Tasks run on the flow's default task
runner (`ThreadPoolTaskRunner`, its default number of threads). Result persistence is
Prefect's default (off: results are kept in memory).
"""

from __future__ import annotations

import os
import sys
import tempfile

# Before Prefect is imported: its settings are read at import.
# A client run keeps its home (its SQLite database) from one run to the next.
HOME = os.environ.get("PEERS_CLIENT_HOME") or tempfile.mkdtemp(prefix="peers-prefect-")
os.environ.setdefault("PREFECT_HOME", HOME)
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no network here
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from common import Peer, items, join, main, noop, timed  # noqa: E402
from prefect import flow, task  # noqa: E402

noop_t = task(noop, name="noop")
items_t = task(items, name="items")
join_t = task(join, name="join")


@flow
def fan(width: int) -> int:
    start = items_t.submit(width)
    mids = noop_t.map(start.result())
    return join_t.submit(mids).result()  # a list of futures: Prefect passes their results


@flow
def chain(length: int) -> int:
    fut = noop_t.submit()
    for _ in range(length - 1):
        fut = noop_t.submit(fut)
    return fut.result()


@flow
def layers(depth: int, width: int) -> None:
    previous: list = []
    for _ in range(depth):
        previous = [noop_t.submit(wait_for=previous) for _ in range(width)]
    for fut in previous:
        fut.result()


@flow
def three() -> int:
    @task
    def a() -> int:
        return 1

    @task
    def b(x: int) -> int:
        return x + 1

    @task
    def c(x: int) -> int:
        return x * 2

    return c.submit(b.submit(a.submit())).result()


PEER = Peer(
    name="prefect",
    w1=lambda width: timed(lambda: fan(width)),
    w2=lambda length: timed(lambda: chain(length)),
    w3=lambda depth, width: timed(lambda: layers(depth, width)),
    client=lambda: three(),
)

if __name__ == "__main__":
    main(PEER, sys.argv[0])

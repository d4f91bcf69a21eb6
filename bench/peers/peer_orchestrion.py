"""Orchestrion itself, measured by the same harness as the peers (run with the project's
own `.venv`, not a peer virtualenv), so that its row is taken in the same session.

Mode: embedded SQLite (a fresh database file per run, as `bench/run_all.py` does), the
worker's default concurrency (32 threads), every state change committed before it is acted
on. The workloads are `bench/engine_bench.py`'s; the client row is `orchestrion run` of a
3-task file into a database that exists (the user's usual case).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import Peer, client_home, main

BENCH = Path(__file__).resolve().parent.parent

THREE = """
from orchestrion.spec.python import task, workflow

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
"""


def measure(build: str, *args: int) -> float:
    """Seconds from trigger to finished of one run of `engine_bench.<build>(*args)`."""
    sys.path.insert(0, str(BENCH))
    import engine_bench

    from orchestrion.app import App
    from orchestrion.app.settings import Settings
    from orchestrion.worker.sizing import DEFAULT_CONCURRENCY

    tmp = tempfile.mkdtemp(prefix="peers-orchestrion-")
    with App(Settings(database_url=f"sqlite:///{tmp}/bench.db")) as app:
        app.code.add(
            {
                "bench:noop": engine_bench.noop,
                "bench:join": engine_bench.join,
                "bench:items": engine_bench.items,
            }
        )
        spec = getattr(engine_bench, build)(*args)
        elapsed, _, _ = engine_bench.run_workload(app, spec, DEFAULT_CONCURRENCY)
    return elapsed


def client() -> None:
    from orchestrion.cli.main import main as cli

    home = Path(client_home())
    flow = home / "three.py"
    if not flow.exists():
        flow.write_text(THREE)
    cli.main(["run", str(flow), "--db", str(home / "existing.db"), "-q"], prog_name="orchestrion")


PEER = Peer(
    name="orchestrion",
    w1=lambda width: measure("fan", f"w{width}", width),  # type: ignore[arg-type]
    w2=lambda length: measure("chain", length),
    w3=lambda depth, width: measure("layers", depth, width),
    client=client,
)

if __name__ == "__main__":
    main(PEER, sys.argv[0])

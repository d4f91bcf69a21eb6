"""Large results: a 50 MB result from a Python task to a shell task and a Python task, each
on a worker process of its own (one queue each), and the peak RSS of every worker.

    uv run --frozen python -m bench.large_result_bench [MEGABYTES]

What to read in the output (one JSON line per worker): ``peak_mb`` is the worker's peak
resident set (VmHWM) and ``idle_mb`` its size before the run. The producer holds the value
itself (a Python ``str`` of the result's size) plus one encoder chunk (at most 1 MiB): its
growth is about 1x the result, not the 2-3x of ``json.dumps`` then a copy into a database
parameter. The shell consumer only gets a path: its growth stays near zero, far under the
result size. The Python consumer must hold the value it asked for: it grows by the value
plus the JSON text being parsed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrion.app import App
from orchestrion.app.settings import Settings

FLOW = """\
from orchestrion import task, workflow
from orchestrion.spec.python import shell


@task(queue="produce")
def produce(megabytes: int) -> str:
    return "x" * (megabytes * 1_000_000)


@task(queue="check")
def check(data: str) -> int:
    return len(data)


@workflow
def large(megabytes: int = 50):
    data = produce(megabytes)
    check(data)
    shell("measure", script='wc -c < "$DATA"', env={"DATA": f"{data}"}, queue="measure")
"""


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main(megabytes: int = 50) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = root / "bench.db"
        (root / "large.py").write_text(FLOW)
        with App(Settings(database_url=f"sqlite:///{db}")) as app:
            app.workflows.load(root / "large.py")
            env = {**os.environ, "ORCHESTRION_DEV_MODE": "1"}
            env.pop("ORCHESTRION_DATABASE_URL", None)
            command = [sys.executable, "-m", "orchestrion.cli.main", "worker", "--db", str(db)]
            workers = {
                queue: subprocess.Popen(
                    [*command, "--queue", queue, "--concurrency", "1"],
                    cwd=root,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for queue in ("produce", "measure", "check")
            }
            try:
                time.sleep(3)  # started and idle
                idle = {q: _kb(p.pid, "VmRSS") for q, p in workers.items()}
                started = time.monotonic()
                run = app.runs.trigger("large", {"megabytes": megabytes})
                while not app.runs.get_run(run.id).state.finished:
                    time.sleep(0.1)
                took = time.monotonic() - started
                done = app.runs.get_run(run.id)
                results = {
                    t.task_name: {
                        "result": t.result,
                        "seconds": round((t.finished_at or 0) - (t.started_at or 0), 2),
                    }
                    for t in app.runs.task_runs(run.id)
                }
                for queue, proc in workers.items():
                    print(
                        json.dumps(
                            {
                                "worker": queue,
                                "result_mb": megabytes,
                                "idle_mb": round(idle[queue] / 1024, 1),
                                "peak_mb": round(_kb(proc.pid, "VmHWM") / 1024, 1),
                            }
                        )
                    )
                summary = {"run": done.state.value, "seconds": round(took, 2), **results}
                print(json.dumps(summary, default=str))
            finally:
                for proc in workers.values():
                    proc.terminate()
                for proc in workers.values():
                    proc.wait(10)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))

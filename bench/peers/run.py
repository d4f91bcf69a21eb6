"""Peer comparison: Orchestrion's four workloads on Prefect 3, Dagster, Luigi, DBOS and Celery.

Usage (from the project's root; needs `uv`, Redis on 127.0.0.1:6379 for Celery):

    python3 bench/peers/run.py                          # every peer, median of 3
    python3 bench/peers/run.py --runs 1 --peers luigi,celery
    python3 bench/peers/run.py --json bench/peers/.logs/results.json

Each peer gets a virtualenv of its own under `bench/peers/.venvs/<venv>` (git-ignored),
made with `uv venv` and filled with `uv pip sync requirements-<venv>.txt` (every package at
an exact version; the `.in` file beside it names the peer's version, and
`uv pip compile requirements-<venv>.in -o requirements-<venv>.txt` makes the `.txt`). A
virtualenv is made again when its requirements file changes. Then the peer's script,
`peer_<name>.py`, runs in it and prints one JSON line per workload; this driver prints the
table. Orchestrion's own row runs in the project's `.venv` (`./scripts/bootstrap` makes it).
Each peer's stderr goes to `bench/peers/.logs/<peer>.log`.

This file uses the standard library only, so any Python 3.11+ runs it. Nothing here is
imported by the test suite, and no peer is a dependency of the project.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ROWS = ("W1", "W2", "W3", "W4", "CLIENT")


@dataclass
class Target:
    """One column of the table: a script run in a virtualenv, with extra environment."""

    name: str
    script: str
    venv: str | None  # None: the project's own .venv
    env: dict[str, str] = field(default_factory=dict)


TARGETS = {
    t.name: t
    for t in (
        Target("orchestrion", "peer_orchestrion.py", None),
        Target("prefect", "peer_prefect.py", "prefect"),
        Target("dagster", "peer_dagster.py", "dagster"),
        Target("luigi", "peer_luigi.py", "luigi"),
        Target("dbos", "peer_dbos.py", "dbos"),
        # The same DBOS with its queue polled every 50 ms instead of every second.
        Target("dbos-poll50ms", "peer_dbos.py", "dbos", {"PEERS_DBOS_POLL": "0.05"}),
        Target("celery", "peer_celery.py", "celery"),
        # DBOS on PostgreSQL (not in the default list: it needs the server); DBOS creates
        # the database if it is missing.
        Target(
            "dbos-postgres",
            "peer_dbos.py",
            "dbos",
            {"DBOS_SYSTEM_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/dbos_bench"},
        ),
    )
}
DEFAULT = [name for name in TARGETS if name != "dbos-postgres"]


def python_of(target: Target, python: str) -> Path:
    """The interpreter to run `target` with, making its virtualenv first if needed."""
    if target.venv is None:
        return ROOT / ".venv" / "bin" / "python"
    venv = HERE / ".venvs" / target.venv
    requirements = HERE / f"requirements-{target.venv}.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / ".requirements-sha256"
    if not stamp.exists() or stamp.read_text() != digest:
        print(f"# {target.venv}: making {venv.relative_to(ROOT)}", file=sys.stderr)
        subprocess.run(["uv", "venv", "-q", "--clear", "--python", python, str(venv)], check=True)
        interpreter = str(venv / "bin" / "python")
        subprocess.run(
            ["uv", "pip", "sync", "-q", "--python", interpreter, str(requirements)], check=True
        )
        stamp.write_text(digest)
    return venv / "bin" / "python"


def run_target(target: Target, python: str, runs: int, only: str, timeout: float) -> dict[str, Any]:
    interpreter = python_of(target, python)
    logs = HERE / ".logs"
    logs.mkdir(exist_ok=True)
    # Every temporary folder the peer makes (databases, homes, output files) goes under
    # one of its own, removed afterwards.
    scratch = Path(tempfile.mkdtemp(prefix=f"peers-{target.name}-"))
    env = {**os.environ, **target.env, "TMPDIR": str(scratch)}
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with (logs / f"{target.name}.log").open("w") as err:
        try:
            out = subprocess.run(
                [str(interpreter), target.script, "--runs", str(runs), "--only", only],
                cwd=HERE,
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                timeout=timeout,
                check=False,
            )
            stdout, code = out.stdout, out.returncode
        except subprocess.TimeoutExpired as e:
            stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            code = -1
    shutil.rmtree(scratch, ignore_errors=True)
    rows = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            rows[row["key"]] = row
    return {
        "peer": target.name,
        "rows": rows,
        "exit": code,
        "load_before": load,
        "load_after": os.getloadavg()[0],
        "seconds": time.perf_counter() - started,
    }


def cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    value, unit = row["value"], row["unit"]
    if unit == "tasks/s":
        return f"{value:,.0f} tasks/s"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:.2f} s"


def print_table(results: list[dict[str, Any]]) -> None:
    names = {
        "W1": "W1 1 -> 500 -> 1",
        "W2": "W2 chain of 100, wall per task",
        "W3": "W3 10 layers x 10",
        "W4": "W4 1 -> 2,000 -> 1",
        "CLIENT": "3-task flow, fresh process",
    }
    header = ["row", *(r["peer"] for r in results)]
    table = [[names[k], *(cell(r["rows"].get(k)) for r in results)] for k in ROWS]
    table.append(
        [
            "load average (1 min) before/after",
            *(f"{r['load_before']:.1f}/{r['load_after']:.1f}" for r in results),
        ]
    )
    table.append(
        ["peer's wall time, exit code", *(f"{r['seconds']:.0f} s, {r['exit']}" for r in results)]
    )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=True)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for line in table:
        print(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--peers", default=",".join(DEFAULT), help=f"comma-separated, of {', '.join(TARGETS)}"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per row (median)")
    parser.add_argument("--only", default=",".join(ROWS), help="rows: W1,W2,W3,W4,CLIENT")
    parser.add_argument("--python", default="3.11", help="the peers' Python (uv venv --python)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per peer")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    results = []
    for name in args.peers.split(","):
        print(f"# {name} ...", file=sys.stderr, flush=True)
        result = run_target(TARGETS[name], args.python, args.runs, args.only, args.timeout)
        results.append(result)
        print(f"# {name}: {json.dumps(result['rows'])}", file=sys.stderr, flush=True)
    print_table(results)
    print(f"\n{os.cpu_count()} CPUs; runs per row: {args.runs} (median)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

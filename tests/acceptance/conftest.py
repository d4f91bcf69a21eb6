"""Running the real ``orchestrion`` command: as a subprocess (the default) or in-process.

`cli` runs ``python -m orchestrion.cli.main`` in a fresh directory (``tmp_path/work``),
with ``--db`` pointing into ``tmp_path`` for every command that takes it, so tests never
touch ``./.orchestrion`` of the repository and their side effects stay in ``tmp_path``.
With ``ORCHESTRION_TEST_DATABASE=postgres`` that ``--db`` is a fresh PostgreSQL schema
standing for the file instead (`tests.helpers.db_arg`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.helpers import database_url_for, db_arg, on_postgres

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

#: Commands that take ``--db``.
_DB_COMMANDS = frozenset(
    {"run", "runs", "logs", "retry", "cancel", "users", "tokens", "audit", "secrets", "assets"}
)


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"$ orchestrion {' '.join(self.args)}\n-> exit {self.code} in {self.seconds:.2f}s\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


class Cli:
    """The command, bound to one working directory and one database."""

    def __init__(self, cwd: Path, db: Path) -> None:
        self.cwd = cwd
        self.db = db
        self.env = {
            **os.environ,
            "COLUMNS": "250",  # no wrapped lines in what the tests read
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
            # examples/api_chain.py calls a demo API it serves on 127.0.0.1: HTTP tasks
            # refuse loopback unless an admin allow-lists it, as this does.
            "ORCHESTRION_HTTP_ALLOW": "127.0.0.1/32",
        }
        self.env.pop("ORCHESTRION_DATABASE_URL", None)

    def argv(self, args: Sequence[str], db: Path | None = None) -> list[str]:
        args = [str(a) for a in args]
        if args and args[0] in _DB_COMMANDS and "--db" not in args:
            args += ["--db", db_arg(db or self.db)]
        return args

    def __call__(
        self, *args: Any, db: Path | None = None, timeout: float = 120, stdin: str | None = None
    ) -> Result:
        """Run the command to completion in a subprocess (``stdin`` is its input)."""
        full = self.argv(args, db)
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", *full],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=stdin,
        )
        took = time.monotonic() - start
        return Result(tuple(full), proc.returncode, proc.stdout, proc.stderr, took)

    def popen(self, *args: Any, db: Path | None = None) -> subprocess.Popen[str]:
        """Start the command and return at once (stdout and stderr are piped)."""
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrion.cli.main", *self.argv(args, db)],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def inproc(self, *args: Any, db: Path | None = None) -> Result:
        """Run the command in this process with click's CliRunner (fast; same code path)."""
        from orchestrion.cli import main as cli_main

        full = self.argv(args, db)
        runner = CliRunner()
        old = os.getcwd()
        os.chdir(self.cwd)
        start = time.monotonic()
        try:
            res = runner.invoke(cli_main.main, full, catch_exceptions=True)
        finally:
            os.chdir(old)
        took = time.monotonic() - start
        stderr = res.stderr
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            import traceback

            stderr += "".join(traceback.format_exception(res.exception))
        return Result(tuple(full), res.exit_code, res.stdout, stderr, took)

    # ------------------------------------------------------------------ helpers

    def run_ids(self, db: Path | None = None) -> list[str]:
        """Ids of the runs in the database, newest first."""
        res = self("runs", "list", "-o", "json", db=db)
        assert res.code == 0, res
        return [r["id"] for r in res.json()]

    def show(self, run_id: str, db: Path | None = None) -> dict[str, Any]:
        res = self("runs", "show", run_id, "-o", "json", db=db)
        assert res.code == 0, res
        data: dict[str, Any] = res.json()
        return data


def db_rows(db: Path) -> dict[str, int]:
    """Row counts of the runs and workflows tables; {} when the database file does not exist
    (on PostgreSQL: of the schema standing for `db`, {} when it has no such tables)."""
    if on_postgres():
        import psycopg

        with psycopg.connect(database_url_for(db)) as pconn:
            counts: dict[str, int] = {}
            for t in ("runs", "workflows"):
                found = pconn.execute("SELECT to_regclass(%s)", (t,)).fetchone()
                if found is not None and found[0] is not None:
                    row = pconn.execute(f"SELECT count(*) FROM {t}").fetchone()
                    counts[t] = int(row[0]) if row else 0
            return counts
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("runs", "workflows")
            if t in tables
        }
    finally:
        con.close()


def by_task(show: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task runs of a ``runs show -o json`` answer, by display name (``name[i]`` for items)."""
    out = {}
    for tr in show["task_runs"]:
        name = tr["task_name"] + (f"[{tr['map_index']}]" if tr["map_index"] >= 0 else "")
        out[name] = tr
    return out


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def cli(tmp_path: Path, workdir: Path) -> Cli:
    return Cli(workdir, tmp_path / "orchestrion.db")

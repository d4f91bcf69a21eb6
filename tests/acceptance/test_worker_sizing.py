"""How many attempts a real `orchestrion worker` runs at once when not told (its first line
says), and that a bad ``ORCHESTRION_CONCURRENCY`` is refused by name."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.acceptance.conftest import Cli
from tests.helpers import db_arg


def _first_line(cli: Cli, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrion.cli.main", "worker", "--db", db_arg(cli.db), *args],
        cwd=cli.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        return proc.stdout.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ((), {}, "(concurrency 32, executor thread)"),
        (("--executor", "process"), {}, f"(concurrency {os.cpu_count()}, executor process)"),
        (("--executor", "process", "-c", "3"), {}, "(concurrency 3, executor process)"),
        ((), {"ORCHESTRION_CONCURRENCY": "5"}, "(concurrency 5, executor thread)"),
        (("-c", "7"), {"ORCHESTRION_CONCURRENCY": "5"}, "(concurrency 7, executor thread)"),
    ],
    ids=["thread-default", "process-default", "process-flag", "env", "flag-over-env"],
)
def test_a_worker_sizes_itself_by_its_executor(
    cli: Cli, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    line = _first_line(cli, *args, env={**os.environ, **env})
    assert line.startswith("worker ") and line.rstrip().endswith(expected), line


def test_a_bad_concurrency_setting_is_refused_by_name(cli: Cli) -> None:
    env = {**os.environ, "ORCHESTRION_CONCURRENCY": "lots"}
    res = subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", "worker", "--db", db_arg(cli.db)],
        cwd=cli.cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode != 0
    assert "ORCHESTRION_CONCURRENCY must be a whole number from 1 to 512, not 'lots'" in (
        res.stdout + res.stderr
    )

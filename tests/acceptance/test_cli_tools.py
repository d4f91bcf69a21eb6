"""``orchestrion completion`` and ``orchestrion init`` as real processes: the completion
scripts, the shell's completion requests answered from the lazy command tree, and an
init'd project that validates, whose two workflows run and whose tests pass."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import db_arg


def cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None, code: int = 0
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRION_")}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", *args],
        cwd=cwd,
        env={**base, "NO_COLOR": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == code, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_shell_script(tmp_path: Path, shell: str) -> None:
    script = cli(tmp_path, "completion", shell).stdout
    assert "_ORCHESTRION_COMPLETE" in script and "orchestrion" in script
    if shutil.which(shell) and shell != "fish":  # fish -n needs a fish of its own version
        (tmp_path / "c.sh").write_text(script)
        syntax = subprocess.run([shell, "-n", str(tmp_path / "c.sh")], capture_output=True)
        assert syntax.returncode == 0, syntax.stderr


def _complete(tmp_path: Path, words: str, shell: str = "bash") -> list[str]:
    env = {
        "_ORCHESTRION_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    out = cli(tmp_path, env=env).stdout
    return [line.split(",", 1)[1] for line in out.splitlines() if "," in line]


def test_completion_answers_from_every_command(tmp_path: Path) -> None:
    # commands whose modules were never imported are offered too (the group is lazy)
    assert _complete(tmp_path, "orchestrion sch") == ["scheduler", "schedules", "schema"]
    assert _complete(tmp_path, "orchestrion backfill ") == ["cancel", "create", "list", "show"]
    assert _complete(tmp_path, "orchestrion runs show 01 -o ") == ["table", "json"]
    assert _complete(tmp_path, "orchestrion completion ") == ["bash", "zsh", "fish"]


def test_init_makes_a_project_that_validates_and_runs(tmp_path: Path) -> None:
    said = cli(tmp_path, "init", "myproject").stdout
    project = tmp_path / "myproject"
    made = ("workflows/greet.py", "workflows/report.yaml", "tests/test_workflows.py")
    for rel in (*made, "README.md", ".gitignore"):
        assert (project / rel).is_file() and f"wrote myproject/{rel}" in said
    assert "# myproject" in (project / "README.md").read_text()

    db = db_arg(tmp_path / "project.db")
    checked = cli(project, "validate", "workflows/", "--db", db).stdout
    assert "greet_friends" in checked and "disk_report" in checked
    greet = cli(project, "run", "workflows/greet.py", "-p", "count=4", "-q", "--db", db)
    assert "succeeded  run" in greet.stdout and "hello, friend 4" in greet.stdout
    report = cli(project, "run", "workflows/report.yaml", "-q", "--db", db)
    assert "succeeded  run" in report.stdout and ". holds" in report.stdout

    # the scaffolded tests pass, in pytest of their own (the harness fixture comes with
    # Orchestrion's pytest plugin, nothing of this repository's conftest)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRION_", "PYTEST"))}
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/"],
        cwd=project,
        env=base,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "3 passed" in tested.stdout

    # a second init writes nothing over the first
    again = cli(tmp_path, "init", "myproject", code=2)
    assert "already has workflows/greet.py" in again.stderr
    # and init with no argument starts a project here
    here = tmp_path / "here"
    here.mkdir()
    cli(here, "init")
    assert (here / "workflows" / "greet.py").is_file()

"""``orchestrion completion bash|zsh|fish`` and ``orchestrion init [DIR]``.

`completion` prints click's own completion script for the shell: the shell then calls
``orchestrion`` with ``_ORCHESTRION_COMPLETE`` set to ask for candidates, which click
answers from the command tree (the lazy group lists every command). `init` writes a small
project: a Python workflow, a YAML workflow, their tests (with the test harness,
`orchestrion.testing`) and a README saying what to run next.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrion.cli.common import errors

__all__ = ["SCAFFOLD", "completion", "init"]

#: What the shell sets to ask ``orchestrion`` for completions (also for ``python -m``).
COMPLETE_VAR = "_ORCHESTRION_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash:  eval "$(orchestrion completion bash)"   (in ~/.bashrc)
    zsh:   eval "$(orchestrion completion zsh)"    (in ~/.zshrc)
    fish:  orchestrion completion fish > ~/.config/fish/completions/orchestrion.fish
    """
    from click.shell_completion import get_completion_class

    from orchestrion.cli.main import main

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - the Choice above lists only shells click has
        raise click.UsageError(f"no completion for {shell}")
    click.echo(cls(main, {}, "orchestrion", COMPLETE_VAR).source())


PYTHON_WORKFLOW = '''\
"""greet_friends: a Python workflow.

    orchestrion run workflows/greet.py
    orchestrion run workflows/greet.py -p count=5

`names` makes a list, `greet` runs once per item of it (``.map``: in parallel, each item
retried on its own) and `summary` receives every greeting.
"""

from orchestrion.spec.python import task, workflow


@task
def names(count: int) -> list[str]:
    return [f"friend {i}" for i in range(1, count + 1)]


@task(retries=2, backoff="1s")
def greet(name: str) -> str:
    print(f"hello, {name}")
    return f"hello, {name}"


@task
def summary(greetings: list[str]) -> int:
    print(f"{len(greetings)} greetings")
    return len(greetings)


@workflow
def greet_friends(count: int = 3):
    """Greet a few friends in parallel, then count the greetings."""
    summary(greet.map(names(count)))
'''

YAML_WORKFLOW = """\
# disk_report: a YAML workflow of shell tasks.
#
#   orchestrion run workflows/report.yaml
#   orchestrion run workflows/report.yaml -p path=/tmp
#
# `files` counts the files under a path; `report` reads its result through the
# `{{ tasks.files }}` template, which also makes it run after `files`.
name: disk_report
description: Count the files under a directory and report it.

params:
  path:
    type: string
    default: "."

tasks:
  files:
    shell:
      script: find "$TARGET" -type f | wc -l | tr -d ' '
      env: {TARGET: "{{ params.path }}"}
    timeout: 1m

  report:
    shell: [echo, "{{ params.path }} holds {{ tasks.files }} files"]

# Uncomment to run it every day at 06:00 UTC under `orchestrion server`:
# schedules:
#   - cron: "0 6 * * *"
"""

TESTS = '''\
"""The project's workflows, tested with Orchestrion's harness: each test runs a workflow
in this process, on a database of its own, under a clock the test moves.

    pytest tests/

The ``orchestrion_harness`` fixture comes with Orchestrion (its pytest plugin); see
https://orchestrion.dev/testing/ or docs/testing.md.
"""

from pathlib import Path

from orchestrion.testing import Harness

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


def test_greet_friends_greets_everyone(orchestrion_harness: Harness) -> None:
    orchestrion_harness.load(WORKFLOWS / "greet.py")
    result = orchestrion_harness.run("greet_friends", params={"count": 2})
    result.assert_succeeded()
    assert result.task("greet").items[1].result == "hello, friend 2"
    assert result.task("summary").result == 2


def test_a_failed_greeting_is_retried(orchestrion_harness: Harness) -> None:
    # The stub fails once: `greet` retries after its backoff (the harness's clock jumps
    # there at once), then every greeting comes from the stub.
    orchestrion_harness.load(WORKFLOWS / "greet.py")
    orchestrion_harness.stub("greet", raises=ConnectionError("no answer"), times=1, result="hi")
    result = orchestrion_harness.run("greet_friends", params={"count": 1})
    result.assert_succeeded()
    assert [a.outcome for a in result.task("greet").items[0].attempts] == ["failed", "succeeded"]


def test_disk_report_counts_files(orchestrion_harness: Harness, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a.txt", "b.txt"):
        (data / name).write_text(name)
    orchestrion_harness.load(WORKFLOWS / "report.yaml")
    result = orchestrion_harness.run("disk_report", params={"path": str(data)})
    result.assert_succeeded()
    assert result.task("report").result == f"{data} holds 2 files"
'''

README = """\
# {name}

An Orchestrion project, made by `orchestrion init`.

    workflows/greet.py        a Python workflow: a mapped task and a summary
    workflows/report.yaml     a YAML workflow of shell tasks
    tests/test_workflows.py   their tests, with Orchestrion's test harness

## Run them here

    orchestrion validate workflows/
    orchestrion run workflows/greet.py -p count=5
    orchestrion run workflows/report.yaml

Runs are kept in `.orchestrion/orchestrion.db`: `orchestrion runs list`, then
`orchestrion runs show RUN_ID`.

## Test them

    pytest tests/

Each test runs a workflow in the test's process on a database of its own; stubs stand in
for tasks that need the network, and the harness's clock jumps over retry backoffs.

## Serve them

    orchestrion server                      # the API, the UI and workers on :8642
    orchestrion deploy workflows/greet.py   # register a version (another terminal)
    orchestrion trigger greet_friends --wait

`orchestrion --help` lists every command; `orchestrion completion bash` prints shell
completion.
"""

GITIGNORE = """\
.orchestrion/
__pycache__/
"""

#: The files `init` writes, relative to the project directory.
SCAFFOLD: dict[str, str] = {
    "workflows/greet.py": PYTHON_WORKFLOW,
    "workflows/report.yaml": YAML_WORKFLOW,
    "tests/test_workflows.py": TESTS,
    "README.md": README,
    ".gitignore": GITIGNORE,
}


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Start a project in DIRECTORY (default: here): a Python and a YAML workflow, their
    tests and a README. Writes no file that already exists."""
    taken = [rel for rel in SCAFFOLD if (directory / rel).exists()]
    if taken:
        errors.print(
            f"error: {directory} already has {', '.join(taken)}; nothing was written",
            markup=False,
        )
        sys.exit(2)
    name = directory.resolve().name or "orchestrion project"
    for rel, text in SCAFFOLD.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace("{name}", name) if rel == "README.md" else text)
        click.echo(f"wrote {target}")
    click.echo(f"next: cd {directory} && orchestrion run workflows/greet.py")

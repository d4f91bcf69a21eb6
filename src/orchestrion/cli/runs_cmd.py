"""``orchestrion runs``, ``logs`` and ``cancel``: look at runs and stop them, in the local
database or (``--server``) through a server's API, with the same output either way."""

from __future__ import annotations

import json
import sys
import time

import click
from rich.markup import escape

from orchestrion.cli.common import (
    console,
    db_option,
    errors,
    output_option,
    reader,
    server_option,
)
from orchestrion.errors import IllegalTransition
from orchestrion.states import RunState
from orchestrion.store.records import RunFilter

__all__ = ["cancel", "logs", "runs"]


@click.group()
def runs() -> None:
    """List and inspect runs."""


@runs.command("list")
@click.option("--workflow", "-w", default=None)
@click.option("--state", "-s", type=click.Choice([s.value for s in RunState]), default=None)
@click.option("--limit", "-n", type=click.IntRange(1, 1000), default=20)
@click.option("--before", default=None, metavar="RUN_ID", help="Page: runs older than this id.")
@db_option
@server_option
@output_option
def runs_list(
    workflow: str | None,
    state: str | None,
    limit: int,
    before: str | None,
    db: str | None,
    server: str | None,
    output: str,
) -> None:
    """Recent runs, newest first."""
    from orchestrion.cli.render import dump_json, runs_table

    with reader(db, server) as source:
        found = source.list_runs(
            RunFilter(
                workflow=workflow,
                state=RunState(state) if state else None,
                limit=limit,
                before=before,
            )
        )
        if output == "json":
            console.print_json(dump_json(found))
        else:
            console.print(runs_table(found))


@runs.command("show")
@click.argument("run_id")
@db_option
@server_option
@output_option
def runs_show(run_id: str, db: str | None, server: str | None, output: str) -> None:
    """Every task run and attempt of a run, with timings, results and errors."""
    from orchestrion.cli.render import attempts_table, dump_json, state_text, task_runs_table, when

    with reader(db, server) as source:
        run = source.get_run(run_id)
        task_runs = source.task_runs(run.id)
        attempts = source.attempts(run.id)
        if output == "json":
            console.print_json(
                dump_json({"run": run, "task_runs": task_runs, "attempts": attempts})
            )
            return
        header = state_text(run.state.value)
        console.print(f"[bold]run {run.id}[/]  workflow {run.workflow} ({run.version})")
        console.print(header)
        console.print(
            f"created {when(run.created_at)}  finished {when(run.finished_at)}"
            f"  trigger {run.trigger}"
        )
        console.print(f"params {json.dumps(run.params)}", markup=False)
        if run.error:
            console.print(f"[red]error: {escape(run.error)}[/]")
        console.print()
        console.print(task_runs_table(task_runs))
        console.print()
        names = {
            tr.id: (f"{tr.task_name}[{tr.map_index}]" if tr.map_index >= 0 else tr.task_name)
            for tr in task_runs
        }
        console.print(attempts_table(attempts, names))


@click.command()
@click.argument("run_id")
@click.argument("task", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
@db_option
@server_option
def logs(run_id: str, task: str | None, follow: bool, db: str | None, server: str | None) -> None:
    """Captured stdout, stderr and logging of a run's attempts."""
    with reader(db, server) as source:
        run = source.get_run(run_id)
        last = 0
        while True:
            for line in source.logs(run.id, task, after_id=last):
                last = line.id
                style = "red" if line.stream == "stderr" else ""
                prefix = f"[dim]{line.task_name}#{line.attempt} {line.stream}[/] "
                console.print(prefix, end="", markup=True)
                console.print(line.line, style=style, markup=False, highlight=False)
            if not follow or source.get_run(run.id).state.finished:
                break
            time.sleep(0.3)


@click.command()
@click.argument("run_id")
@db_option
@server_option
def cancel(run_id: str, db: str | None, server: str | None) -> None:
    """Cancel a run: its unfinished tasks stop (running shell tasks are killed)."""
    with reader(db, server) as source:
        run = source.get_run(run_id)
        try:
            source.cancel_or_raise(run.id)
        except IllegalTransition as exc:
            errors.print(escape(str(exc)))
            sys.exit(1)
        console.print(f"run {run.id} canceled", markup=False)

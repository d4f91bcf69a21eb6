"""``orchestrion runs``, ``logs`` and ``cancel``: look at runs and stop them, in the local
database or (``--server``) through a server's API, with the same output either way."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click
from rich.markup import escape

from orchestrion.cli.common import (
    RunReader,
    console,
    db_option,
    errors,
    output_option,
    reader,
    server_option,
)
from orchestrion.cli.outputs_cmd import runs_artifacts, runs_result
from orchestrion.cli.retention_cmd import runs_keep, runs_prune, runs_unkeep
from orchestrion.errors import IllegalTransition
from orchestrion.states import RunState
from orchestrion.store.records import RunFilter, RunRecord

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
    from orchestrion.cli.render import runs_table

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
        from orchestrion.api.wire import RUN
        from orchestrion.cli.render import as_shown

        # without the fields the API does not carry: the same locally and with --server
        click.echo(json.dumps(list(map(as_shown(RUN), found)), indent=2, default=str))
    else:
        console.print(runs_table(found))


@runs.command("show")
@click.argument("run_id")
@click.option("--all", "every_item", is_flag=True, help="Every mapped item, not a summary.")
@db_option
@server_option
@output_option
def runs_show(
    run_id: str, every_item: bool, db: str | None, server: str | None, output: str
) -> None:
    """Every task run and attempt of a run, with timings, results and errors. A mapped task
    of many items is summarised: its counts by state, its failures and its slowest items
    (--all lists every item; -o json always has every row)."""
    from orchestrion.cli.render import (
        attempts_table,
        state_text,
        summarise,
        task_runs_table,
        when,
    )

    with reader(db, server) as source:
        run = source.get_run(run_id)
        if output == "json":
            _stream_run(source, run)
            return
        task_runs = source.task_runs(run.id)
        total = len(task_runs)
        shown, notes = (task_runs, []) if every_item else summarise(task_runs)
        del task_runs  # a big run's rows are let go before its attempts are read
        attempts = source.attempts(run.id)
    console.print(f"[bold]run {run.id}[/]  workflow {run.workflow} ({run.version})")
    console.print(state_text(run.state.value))
    console.print(
        f"created {when(run.created_at)}  finished {when(run.finished_at)}  trigger {run.trigger}"
    )
    console.print(f"params {json.dumps(run.params)}", markup=False)
    if run.error:
        console.print(f"[red]error: {escape(run.error)}[/]")
    console.print()
    console.print(task_runs_table(shown))
    for note in notes:
        console.print(note, markup=False, style="dim")
    console.print()
    names = {
        tr.id: (f"{tr.task_name}[{tr.map_index}]" if tr.map_index >= 0 else tr.task_name)
        for tr in shown
    }
    console.print(attempts_table([a for a in attempts if a.task_run_id in names], names))
    if len(names) < total:
        left = sum(1 for a in attempts if a.task_run_id not in names)
        console.print(f"({left:,} attempts of the items not shown: --all)", style="dim")


def _stream_run(source: RunReader, run: RunRecord) -> None:
    """A run's JSON, its rows written as they are shown: the task runs are fetched, written
    and let go before the attempts are fetched, so the peak holds one of the two lists."""
    from orchestrion.api.wire import ATTEMPT, RUN, TASK_RUN
    from orchestrion.cli.render import as_shown, stream_json

    def rows(fetch: Callable[[str], list[Any]], shown: Callable[[Any], Any]) -> Iterator[Any]:
        yield from map(shown, fetch(run.id))

    fields = [
        ("run", as_shown(RUN)(run)),
        ("task_runs", rows(source.task_runs, as_shown(TASK_RUN))),
        ("attempts", rows(source.attempts, as_shown(ATTEMPT))),
    ]
    stream_json(sys.stdout.write, fields)


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


# Retention's commands live with the rest of retention (`retention_cmd`).
runs.add_command(runs_prune)
runs.add_command(runs_keep)
runs.add_command(runs_unkeep)
runs.add_command(runs_artifacts)
runs.add_command(runs_result)

"""Commands that run workflow files here: `run`, `retry`, `rerun`, `validate`, `schema`.

Exit codes: 0 success, 1 the run failed or was canceled, 2 bad input (invalid workflow
file, bad parameters, unknown run).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click
from rich.markup import escape

from orchestrion.cli.common import (
    console,
    db_option,
    errors,
    opened,
    output_option,
    remote,
    server_option,
)
from orchestrion.errors import IllegalTransition, NotFound, SpecError
from orchestrion.states import RunState

if TYPE_CHECKING:
    # Imported where a command works here: `retry` and `rerun` with --server need none
    # of the App or the spec (see `common.opened`).
    from orchestrion.app import App

__all__ = ["rerun", "retry", "run", "schema", "validate"]


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--db",
    envvar="ORCHESTRION_DATABASE_URL",
    default=None,
    help="Also accept sub-workflows deployed in this database.",
)
@click.option(
    "--server",
    envvar="ORCHESTRION_SERVER",
    default=None,
    help="Also accept sub-workflows deployed on this server.",
)
@output_option
def validate(paths: tuple[str, ...], db: str | None, server: str | None, output: str) -> None:
    """Check workflow files (.py or .yaml, or folders of them) without running them: their
    shape, every Python reference (imported in a child process, as a worker would), and
    every sub-workflow they call. Lists every problem with its file and line."""
    from orchestrion.app.validation import validate_files
    from orchestrion.cli.processes import WorkflowFolder

    files: list[Path] = []
    found: list[Path] = []  # in folders: a .py file without a workflow is a helper module
    for path in map(Path, paths):
        if path.is_dir():
            found += WorkflowFolder(str(path)).files()
        else:
            files.append(path)
    found = [f for f in found if f not in files]
    with _deployed_lookup(db, server) as deployed:
        reports = validate_files(
            [*files, *(f for f in found if f.suffix != ".py")],
            deployed=deployed,
            modules=[f for f in found if f.suffix == ".py"],
        )
    files += found
    rows: list[dict[str, Any]] = []
    for report in reports:
        where = str(report.file)
        for item in [] if report.problems else report.loaded:
            spec = item.spec
            rows.append(
                {
                    "file": where,
                    "workflow": spec.name,
                    "version": spec.version,
                    "tasks": len(spec.tasks),
                    "ok": True,
                }
            )
            if output == "table":
                console.print(
                    f"[green]ok[/] {escape(where)}: workflow [bold]{spec.name}[/]"
                    f" version {spec.version}, {len(spec.tasks)} tasks"
                )
        for problem in report.problems:
            rows.append({"file": where, "ok": False, "error": str(problem), "line": problem.line})
            if output == "table":
                errors.print(
                    f"[red]invalid[/] {escape(str(problem))}", markup=True, highlight=False
                )
    if output == "json":
        console.print_json(json.dumps(rows))
    elif any(r.problems for r in reports):
        count = sum(len(r.problems) for r in reports)
        errors.print(f"{count} problem(s) in {len(files)} file(s)")
    sys.exit(2 if any(r.problems for r in reports) else 0)


@contextmanager
def _deployed_lookup(db: str | None, server: str | None) -> Iterator[Callable[[str], bool] | None]:
    """Whether a workflow is deployed, asked of `server` or `db`; None when neither is given."""
    if server is not None:
        with remote(server) as api:

            def on_server(name: str) -> bool:
                try:
                    api.call("GET", f"/api/v1/workflows/{quote(name, safe='')}")
                except NotFound:
                    return False
                return True

            yield on_server
    elif db is not None:
        with opened(db) as app:

            def known(name: str) -> bool:
                try:
                    app.workflows.workflow_record(name)
                except NotFound:
                    return False
                return True

            yield known
    else:
        yield None


@click.command()
@click.argument("path", required=False, type=click.Path())
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A run parameter; repeat for more.",
)
@click.option("--workflow", "-w", "name", help="Which workflow, when the file defines several.")
@click.option("--resume", "resume", metavar="RUN_ID", help="Finish an interrupted or failed run.")
@click.option("--concurrency", "-c", type=click.IntRange(1, 512), default=None)
@click.option("--idempotency-key", default=None, help="Start at most one run for this key.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the final summary.")
@click.option(
    "--no-cache", is_flag=True, help="Cached tasks compute again and overwrite their entries."
)
@db_option
@output_option
def run(
    path: str | None,
    params: tuple[str, ...],
    name: str | None,
    resume: str | None,
    concurrency: int | None,
    idempotency_key: str | None,
    quiet: bool,
    no_cache: bool,
    db: str | None,
    output: str,
) -> None:
    """Run a workflow file here and now, with live progress."""
    if (path is None) == (resume is None):
        errors.print("[red]error:[/] give a workflow file, or --resume RUN_ID")
        sys.exit(2)
    from orchestrion.spec.loading import load_workflows
    from orchestrion.spec.params import parse_cli_params

    with opened(db) as app:
        if resume is not None:
            record = app.runs.prepare_resume(resume)
        else:
            assert path is not None
            loaded = load_workflows(path)
            spec = _pick([item.spec for item in loaded], name, path)
            values = parse_cli_params(spec, list(params))
            # only once the choice and params are good
            app.workflows.register_loaded(loaded, source=path)
            record = app.runs.trigger(
                spec.name, values, idempotency_key=idempotency_key, no_cache=no_cache
            )
        if output == "table":
            console.print(
                f"run [bold]{record.id}[/] of [bold]{record.workflow}[/] ({record.version})"
            )
        from orchestrion.cli.render import Progress

        progress = None if quiet or output == "json" else _follow(app, Progress(console))
        final = app.runtime.run_until_done(
            record.id, concurrency=concurrency, on_progress=progress, every=0.1
        )
        if progress is not None:
            progress(final, app.runs.task_runs(final.id))
        _summary(app, final.id, output)
        sys.exit(0 if final.state is RunState.SUCCEEDED else 1)


def _follow(app: App, progress: Any) -> Callable[[Any, Any], None]:
    """Feed the run's new events to the progress printer on every poll."""

    def tick(run: Any, task_runs: Any) -> None:
        progress(run, task_runs)
        progress.events(app.runs.events(run.id, after_id=progress.last_event))

    return tick


def _pick(specs: list[Any], name: str | None, path: str) -> Any:
    if name is not None:
        for spec in specs:
            if spec.name == name:
                return spec
        raise SpecError(f"no workflow named {name!r} in {path}")
    called = {t.action.workflow for s in specs for t in s.tasks if t.action.kind == "workflow"}
    roots = [s for s in specs if s.name not in called]
    if len(specs) > 1 and len(roots) == 1:
        return roots[0]  # a parent and the sub-workflows it calls: run the parent
    if not specs:
        raise SpecError("the file defines no workflow (no @workflow function)", source=path)
    if len(specs) != 1:
        names = ", ".join(s.name for s in specs)
        raise SpecError(f"{path} defines {len(specs)} workflows ({names}); choose one with -w")
    return specs[0]


def _summary(app: App, run_id: str, output: str) -> None:
    """The finished run: its task runs, a big mapped task summarised (`render.summarise`);
    with -o json every row, streamed."""
    from orchestrion.cli.render import (
        as_shown,
        state_text,
        stream_json,
        summarise,
        task_runs_table,
        took,
    )

    run = app.runs.get_run(run_id)
    task_runs = app.runs.task_runs(run_id)
    if output == "json":
        from orchestrion.api.wire import RUN, TASK_RUN

        rows = map(as_shown(TASK_RUN), task_runs)
        stream_json(sys.stdout.write, [("run", as_shown(RUN)(run)), ("task_runs", rows)])
        return
    console.print()
    shown, notes = summarise(task_runs)
    console.print(task_runs_table(shown))
    for note in notes:
        console.print(note, markup=False, style="dim")
    console.print()
    line = state_text(run.state.value)
    line.append(f"  run {run.id} in {took(run.started_at, run.finished_at)}", style="")
    console.print(line)
    if run.error:
        errors.print(f"[red]{escape(run.error)}[/]", markup=True)


@click.command()
@click.argument("run_id")
@click.option("--wait/--no-wait", default=True, help="Run the retried tasks here and wait.")
@db_option
@server_option
@output_option
def retry(run_id: str, wait: bool, db: str | None, server: str | None, output: str) -> None:
    """Resume a failed run from what failed; succeeded tasks keep their results. A
    compensated run re-runs the undo steps that failed and ends failed again.

    Locally the retried tasks run here; with --server the server's workers run them."""
    if server is not None:
        _retry_remote(run_id, wait, server, output)
        return
    with opened(db) as app:
        run = app.runs.get_run(run_id)
        if run.state not in (RunState.FAILED, RunState.CANCELED) and not wait:
            errors.print(
                f"[red]error:[/] run {run.id} is {run.state.value}; only failed or"
                " canceled runs can be retried"
            )
            sys.exit(2)
        record = app.runs.prepare_resume(run.id)
        if record.state.finished:
            errors.print(
                f"[red]error:[/] run {run.id} is {record.state.value} and cannot be"
                " retried (it was compensated and every undo step succeeded: start a new one)"
            )
            sys.exit(2)
        if not wait:
            console.print(f"run {record.id} re-opened")
            return
        from orchestrion.cli.render import Progress

        progress = None if output == "json" else _follow(app, Progress(console))
        final = app.runtime.run_until_done(record.id, on_progress=progress, every=0.1)
        if progress is not None:
            progress(final, app.runs.task_runs(final.id))
        _summary(app, final.id, output)
        sys.exit(0 if final.state is RunState.SUCCEEDED else 1)


@click.command()
@click.argument("run_id")
@click.option(
    "--from",
    "from_task",
    required=True,
    metavar="TASK",
    help="The task to start again from; its upstream results are reused.",
)
@db_option
@server_option
def rerun(run_id: str, from_task: str, db: str | None, server: str | None) -> None:
    """Start a new run that reuses an earlier run's results up to TASK and reruns the rest.

    Locally the new run is driven here; with --server the server's workers run it."""
    if server is not None:
        with remote(server) as api:
            new = api.call("POST", f"/api/v1/runs/{run_id}/rerun", json={"from_task": from_task})
            console.print(f"run {new['id']} reruns {run_id} from {from_task}", markup=False)
        return
    from orchestrion.spec.loading import load_workflows

    with opened(db) as app:
        old = app.runs.get_run(run_id)
        record = app.workflows.workflow_record(old.workflow, old.version)
        if record.spec.code is None and record.source and Path(record.source).exists():
            # Code from before versions carried it: load the file for its callables.
            app.workflows.register_loaded(load_workflows(record.source), source=record.source)
        new_run = app.runs.rerun_from(old.id, from_task)
        console.print(f"run {new_run.id} reruns {old.id} from {from_task}", markup=False)
        from orchestrion.cli.render import Progress

        progress = _follow(app, Progress(console))
        final = app.runtime.run_until_done(new_run.id, on_progress=progress, every=0.1)
        progress(final, app.runs.task_runs(final.id))
        _summary(app, final.id, "table")
        sys.exit(0 if final.state is RunState.SUCCEEDED else 1)


def _retry_remote(run_id: str, wait: bool, server: str, output: str) -> None:
    with remote(server) as api:
        run = api.get_run(run_id)
        try:
            api.retry_or_raise(run.id)
        except IllegalTransition as exc:
            errors.print(f"[red]error:[/] {escape(str(exc))}", markup=True)
            sys.exit(2)
        console.print(f"run {run.id} re-opened", markup=False)
        if not wait:
            return
        while not (final := api.get_run(run.id)).state.finished:
            time.sleep(0.2)
        console.print(f"run {final.id} {final.state.value}", markup=False)
        sys.exit(0 if final.state is RunState.SUCCEEDED else 1)


@click.command()
def schema() -> None:
    """Print the JSON Schema of the YAML workflow format (for editors), with every
    installed task kind."""
    from orchestrion.spec.json_schema import yaml_json_schema
    from orchestrion.spec.kinds import installed_kinds

    click.echo(json.dumps(yaml_json_schema(installed_kinds()), indent=2))

"""``orchestrion plan``, ``apply`` and ``projects``: declarative projects (issue 19).

``plan`` exits 0 when there is nothing to change, 2 when there are changes and 1 on an
error (terraform's ``-detailed-exitcode``), so a script or CI job can tell them apart.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import console, db_option, output_option, server_option
from orchestrion.cli.render import when

__all__ = ["apply", "plan", "projects"]

_file_option = click.option(
    "-f", "--file", "path", required=True, type=click.Path(dir_okay=False), help="The project file."
)


def _run(
    path: str, *, do_apply: bool, db: str | None, server: str | None, commit: str | None
) -> dict[str, Any]:
    """The plan (and outcome) as JSON data, locally or through a server; an error is one
    line on stderr and exit code 1."""
    from orchestrion.errors import OrchestrionError

    try:
        if server is not None:
            from orchestrion.cli.remote import Remote, translated

            with Remote(server) as api, translated():
                return api.client.project(path, apply=do_apply, commit=commit)
        from orchestrion.app import App, Settings
        from orchestrion.cli.common import cli_actor
        from orchestrion.spec.project import load_project

        loaded = load_project(path)
        with App(Settings.from_env(db=db), actor=cli_actor()) as app:
            if not do_apply:
                return app.projects.plan(loaded).to_data()
            done = app.projects.apply(loaded, commit=commit)
            return {**done.plan.to_data(), "outcome": done.outcome, "apply_id": done.apply_id}
    except OrchestrionError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def _show(data: dict[str, Any], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    click.echo(f"project {data['project']} -> namespace {data['namespace']}")
    for change in data["changes"]:
        click.echo(f"  {change['line']}")
    for item in data["unmanaged"]:
        click.echo(f"  ? {item['kind']} {item['key']} (unmanaged: not in the project; left alone)")
    for note in data.get("notes", []):
        click.echo(f"  note: {note}")
    s = data["summary"]
    if data["changes"]:
        click.echo(f"{s['create']} to create, {s['update']} to update, {s['delete']} to delete")
    else:
        click.echo("no changes")


@click.command()
@_file_option
@db_option
@server_option
@output_option
def plan(path: str, db: str | None, server: str | None, output: str) -> None:
    """Show what applying the project file would change (exit 0: nothing, 2: changes)."""
    data = _run(path, do_apply=False, db=db, server=server, commit=None)
    _show(data, output)
    sys.exit(2 if data["changes"] else 0)


@click.command()
@_file_option
@click.option("--commit", default=None, help="Record this commit on the deployed versions.")
@db_option
@server_option
@output_option
def apply(path: str, commit: str | None, db: str | None, server: str | None, output: str) -> None:
    """Apply the project file: every change, or none (a failure part way is undone)."""
    data = _run(path, do_apply=True, db=db, server=server, commit=commit)
    _show(data, output)
    if output != "json":
        click.echo("applied" if data["outcome"] == "applied" else "nothing to apply")


@click.command()
@click.option("--namespace", default=None)
@db_option
@server_option
@output_option
def projects(namespace: str | None, db: str | None, server: str | None, output: str) -> None:
    """The apply history: who applied which project, when, from which commit."""
    from orchestrion.store.record import as_dict

    if server is not None:
        from orchestrion.cli.common import remote

        with remote(server) as api:
            params = {"namespace": namespace} if namespace else None
            rows = list(api.call("GET", "/api/v1/projects", params=params))
    else:
        from orchestrion.cli.common import opened

        with opened(db) as app:
            rows = [as_dict(a) for a in app.projects.applies(namespace)]
    if output == "json":
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    table = Table("namespace", "project", "outcome", "by", "commit", "changes", "at")
    for r in rows:
        s = r["summary"]
        counts = f"+{s.get('create', 0)} ~{s.get('update', 0)} -{s.get('delete', 0)}"
        table.add_row(
            escape(r["namespace"]),
            escape(r["project"]),
            escape(r["outcome"]),
            escape(r["actor"]),
            escape((r["commit_sha"] or "")[:12]),
            counts,
            when(r["created_at"]),
        )
    console.print(table)

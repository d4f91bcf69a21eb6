"""``orchestrion workflows``: list, show, versions, set-version, pause, unpause.

Each command reads the local database through `App.workflows`, or a server's API with
``--server`` (``ORCHESTRION_SERVER``). Both sides produce the API's own `Workflow` view (a
JSON object), so a command renders the same either way, and ``-o json`` prints exactly
what the API returns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import console, db_option, opened, output_option, remote, server_option
from orchestrion.cli.render import when

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.cli.remote import Remote  # loaded with the first --server call (httpx)
    from orchestrion.store.records import WorkflowRecord

__all__ = ["workflows"]

View = dict[str, Any]


class _Workflows(Protocol):
    """The workflow verbs a command calls, on the local database or on a server."""

    def every(self) -> list[View]: ...
    def show(self, name: str, version: str | None) -> View: ...
    def versions(self, name: str) -> list[View]: ...
    def set_version(self, name: str, version: str) -> View: ...
    def set_paused(self, name: str, paused: bool) -> View: ...


class _Local:
    """`App.workflows`, shown as the API shows it."""

    def __init__(self, app: App) -> None:
        self.app = app

    def _view(
        self, rec: WorkflowRecord, *, current: bool | None = None, full: bool = False
    ) -> View:
        wf = self.app.workflows
        if current is None:
            current = wf.workflow_record(rec.name).version == rec.version
        paused = rec.name in wf.paused_workflows()
        # Imported here, as `common.opened` imports the App: with --server the API's
        # pydantic view is the server's to build.
        from orchestrion.api.schemas import Workflow

        view = Workflow.of(rec, paused=paused, current=current, full=full)
        return view.model_dump(mode="json")

    def every(self) -> list[View]:
        return [self._view(r, current=True) for r in self.app.workflows.list_workflows()]

    def show(self, name: str, version: str | None) -> View:
        return self._view(self.app.workflows.workflow_record(name, version), full=True)

    def versions(self, name: str) -> list[View]:
        return [
            {**self._view(v.record, current=v.current), "commit": v.commit}
            for v in self.app.workflows.versions(name)
        ]

    def set_version(self, name: str, version: str) -> View:
        return self._view(self.app.workflows.set_version(name, version))

    def set_paused(self, name: str, paused: bool) -> View:
        self.app.workflows.set_paused(name, paused)
        return self._view(self.app.workflows.workflow_record(name), current=True)


class _Server:
    """The same verbs over the server's ``/api/v1/workflows`` routes."""

    def __init__(self, api: Remote) -> None:
        self.api = api

    def every(self) -> list[View]:
        return list(self.api.call("GET", "/api/v1/workflows"))

    def show(self, name: str, version: str | None) -> View:
        params = {"version": version} if version else None
        return dict(self.api.call("GET", f"/api/v1/workflows/{quote(name)}", params=params))

    def versions(self, name: str) -> list[View]:
        return list(self.api.call("GET", f"/api/v1/workflows/{quote(name)}/versions"))

    def set_version(self, name: str, version: str) -> View:
        path = f"/api/v1/workflows/{quote(name)}/current"
        return dict(self.api.call("POST", path, json={"version": version}))

    def set_paused(self, name: str, paused: bool) -> View:
        verb = "pause" if paused else "unpause"
        return dict(self.api.call("POST", f"/api/v1/workflows/{quote(name)}/{verb}"))


@contextmanager
def _opened(db: str | None, server: str | None) -> Iterator[_Workflows]:
    """The server's API when one is configured, else the local database; errors become a
    message and exit code 2."""
    if server is None:
        with opened(db) as app:
            yield _Local(app)
        return
    with remote(server) as api:
        yield _Server(api)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group()
def workflows() -> None:
    """Registered workflows: their versions, which one is current, pausing."""


@workflows.command("list")
@db_option
@server_option
@output_option
def list_workflows(db: str | None, server: str | None, output: str) -> None:
    """Every workflow with its current version."""
    with _opened(db, server) as wf:
        rows = wf.every()
    if output == "json":
        _print_json(rows)
        return
    table = Table(box=None)
    for column in ("NAME", "CURRENT VERSION", "NAMESPACE", "TASKS", "PAUSED", "REGISTERED"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            escape(r["name"]),
            r["version"],
            escape(r["namespace"]),
            str(r["tasks"]),
            "yes" if r["paused"] else "no",
            when(r["created_at"]),
        )
    console.print(table)


@workflows.command()
@click.argument("name")
@click.option("--version", default=None, help="A registered version (default: the current one).")
@db_option
@server_option
@output_option
def show(name: str, version: str | None, db: str | None, server: str | None, output: str) -> None:
    """One workflow version: its tasks, parameters and schedules."""
    with _opened(db, server) as wf:
        view = wf.show(name, version)
    if output == "json":
        _print_json(view)
        return
    spec = view.get("spec") or {}
    console.print(f"[bold]{escape(view['name'])}[/] {view['version']}", end="")
    console.print(" (current)" if view["current"] else " (not current)")
    for label, value in (
        ("namespace", view["namespace"]),
        ("description", view["description"] or "-"),
        ("paused", "yes" if view["paused"] else "no"),
        ("registered", when(view["created_at"])),
        ("params", ", ".join(view["params"]) or "-"),
        ("schedules", ", ".join(str(s.get("cron")) for s in view["schedules"]) or "-"),
    ):
        console.print(f"  {label:<12} {escape(str(value))}")
    tasks = [t.get("name", "?") for t in spec.get("tasks", [])]
    console.print(f"  {'tasks':<12} {escape(', '.join(tasks)) or '-'}")
    used = [
        f"{t.get('name', '?')} from {t['template'].get('ref')}"
        for t in spec.get("tasks", [])
        if isinstance(t.get("template"), dict)
    ]
    if used:  # expanded at deploy: the version keeps the template's ref and digest
        console.print(f"  {'templates':<12} {escape(', '.join(used))}")


@workflows.command()
@click.argument("name")
@db_option
@server_option
@output_option
def versions(name: str, db: str | None, server: str | None, output: str) -> None:
    """Every registered version of a workflow, newest first; the current one is marked."""
    with _opened(db, server) as wf:
        rows = wf.versions(name)
    if output == "json":
        _print_json(rows)
        return
    table = Table(box=None)
    for column in ("VERSION", "CURRENT", "TASKS", "REGISTERED", "COMMIT"):
        table.add_column(column)
    for r in rows:
        commit = (r.get("commit") or "")[:12] or "-"
        table.add_row(
            r["version"],
            "*" if r["current"] else "",
            str(r["tasks"]),
            when(r["created_at"]),
            commit,
        )
    console.print(table)


@workflows.command("set-version")
@click.argument("name")
@click.argument("version")
@db_option
@server_option
def set_version(name: str, version: str, db: str | None, server: str | None) -> None:
    """Make VERSION (already registered) NAME's current version: a rollback, or forward
    again. Triggers, schedules and runs without a version use it from now on."""
    with _opened(db, server) as wf:
        view = wf.set_version(name, version)
    click.echo(f"{view['name']}: current version {view['version']}")


@workflows.command()
@click.argument("name")
@db_option
@server_option
def pause(name: str, db: str | None, server: str | None) -> None:
    """Stop NAME's schedules and event triggers from starting runs (manual triggers still
    work)."""
    with _opened(db, server) as wf:
        wf.set_paused(name, True)
    click.echo(f"{name}: paused")


@workflows.command()
@click.argument("name")
@db_option
@server_option
def unpause(name: str, db: str | None, server: str | None) -> None:
    """Let NAME's schedules and event triggers start runs again."""
    with _opened(db, server) as wf:
        wf.set_paused(name, False)
    click.echo(f"{name}: unpaused")

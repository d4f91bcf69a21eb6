"""Commands that start runs: `trigger`, `backfill` (create, list, show, cancel), `events send`.

They talk to a server's API when one is configured (``--server`` or
``ORCHESTRION_SERVER``); otherwise they write to the local database, where any worker on
it picks the runs up. Backfills print the API's JSON view either way.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import (
    api_request,
    cli_actor,
    console,
    db_option,
    errors,
    opened,
    output_option,
    remote,
    server_option,
)
from orchestrion.cli.render import state_text, when
from orchestrion.errors import OrchestrionError
from orchestrion.store.record import as_dict

if TYPE_CHECKING:
    from orchestrion.app import App
    from orchestrion.store.policy_records import Finding

__all__ = ["backfill", "events", "trigger"]


@click.command()
@click.argument("workflow")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE")
@click.option("--idempotency-key", default=None)
@click.option("--wait", is_flag=True, help="Wait for the run to finish; exit code = outcome.")
@click.option(
    "--no-cache", is_flag=True, help="Cached tasks compute again and overwrite their entries."
)
@click.option("--server", envvar="ORCHESTRION_SERVER", default=None)
@click.option("--db", envvar="ORCHESTRION_DATABASE_URL", default=None)
def trigger(
    workflow: str,
    params: tuple[str, ...],
    idempotency_key: str | None,
    wait: bool,
    no_cache: bool,
    server: str | None,
    db: str | None,
) -> None:
    """Start a run of a registered workflow."""
    try:
        if server:
            typed: dict[str, Any] = {}
            if params:  # typed by the workflow's parameter schema, read from the server
                spec_data = api_request(server, "GET", f"/api/v1/workflows/{workflow}")
                from orchestrion.spec.model import WorkflowSpec
                from orchestrion.spec.params import parse_cli_params

                spec = WorkflowSpec.model_validate(spec_data["spec"])
                typed = parse_cli_params(spec, list(params))
            # Without --param, nothing here needs the spec (the server applies defaults
            # and refuses a missing required one), so the command imports no pydantic.
            body = {
                "params": typed,
                "idempotency_key": idempotency_key,
                **({"no_cache": True} if no_cache else {}),
            }
            from orchestrion.cli.remote import Remote, translated

            with Remote(server) as api, translated():
                run = api.client.request("POST", f"/api/v1/workflows/{workflow}/runs", json=body)
                notes = [f"{f['effect']}: {f['text']}" for f in api.client.policy_findings]
            console.print(f"run {run['id']} of {workflow} {run['state']}")
            for note in notes:
                console.print(f"  [yellow]{escape(note)}[/]")
            state = _waitapi_request(server, run["id"]) if wait else run["state"]
        else:
            from orchestrion.app import App  # locally only: see `common.opened`
            from orchestrion.app.settings import Settings
            from orchestrion.spec.params import parse_cli_params

            with App(Settings.from_env(db=db), actor=cli_actor()) as app:
                spec = app.workflows.workflow(workflow)
                found: list[Finding] = []
                rec = app.runs.trigger(
                    workflow,
                    parse_cli_params(spec, list(params)),
                    idempotency_key=idempotency_key,
                    no_cache=no_cache,
                    findings=found,
                )
                console.print(f"run {rec.id} of {workflow} {rec.state.value}")
                for finding in found:
                    console.print(f"  [yellow]{finding.effect}: {escape(str(finding))}[/]")
                state = _wait_local(app, rec.id) if wait else rec.state.value
    except OrchestrionError as exc:
        errors.print(f"[red]error:[/] {exc}", markup=True)
        sys.exit(2)
    if wait:
        console.print(f"run finished: {state}")
        sys.exit(0 if state == "succeeded" else 1)


def _wait_local(app: App, run_id: str) -> str:
    return app.runs.wait_until_finished(run_id, every=0.5).state.value


def _waitapi_request(server: str, run_id: str) -> str:
    """Follow the run's event stream until it finishes (`Client.wait`: no polling while
    the stream is up; it reconnects with Last-Event-ID if the connection drops)."""
    from orchestrion.cli.remote import Remote

    with Remote(server, timeout=30.0) as api:
        return api.client.wait(run_id).state.value


class _CreateByDefault(click.Group):
    """A group whose first argument, when it names no subcommand, is the `create`
    subcommand's: ``backfill WF --from ..`` stays ``backfill create WF --from ..``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Click's, with ``create`` put first when the first argument is not a subcommand."""
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_CreateByDefault)
def backfill() -> None:
    """Backfills: runs for a schedule's past times (backfill WORKFLOW --from .. --to ..
    is short for backfill create)."""


@backfill.command("create")
@click.argument("workflow")
@click.option("--from", "start", required=True, help="First nominal date or datetime.")
@click.option("--to", "end", required=True, help="Last nominal date (inclusive) or datetime.")
@click.option("--schedule", default=None, help="Which schedule, when there are several.")
@click.option("--max-active", default=1, show_default=True, type=click.IntRange(1, 1000))
@click.option("--dry-run", is_flag=True, help="Show the runs it would create; create none.")
@db_option
@server_option
@output_option
def create(
    workflow: str,
    start: str,
    end: str,
    schedule: str | None,
    max_active: int,
    dry_run: bool,
    db: str | None,
    server: str | None,
    output: str,
) -> None:
    """Runs for every nominal schedule time in a range, paced by the scheduler."""
    if server is None:
        with opened(db) as app:
            record = app.triggers.create_backfill(
                workflow, start, end, schedule=schedule, max_active=max_active, dry_run=dry_run
            )
            view = as_dict(record)
    else:
        body = {
            "workflow": workflow,
            "start": start,
            "end": end,
            "schedule": schedule,
            "max_active": max_active,
            "dry_run": dry_run,
        }
        with remote(server) as api:
            view = dict(api.call("POST", "/api/v1/backfills", json=body))
    if output == "json":
        click.echo(json.dumps(view, indent=2))
        return
    verb = "would create" if dry_run else "will create"
    console.print(
        f"backfill {view['id']}: {verb} {view['total']} runs of {workflow}"
        f" ({view['state']}, at most {max_active} at once)",
        markup=False,
    )


def _backfills(db: str | None, server: str | None, verb: str, arg: str | None) -> Any:
    """`verb` (list, show, cancel) on the local database or the server: the API's JSON."""
    if server is not None:
        with remote(server) as api:
            if verb == "list":
                return api.call(
                    "GET", "/api/v1/backfills", params={"workflow": arg} if arg else None
                )
            path = f"/api/v1/backfills/{quote(arg or '')}"
            return api.call("POST", f"{path}/cancel") if verb == "cancel" else api.call("GET", path)
    with opened(db) as app:
        if verb == "list":
            return [as_dict(b) for b in app.triggers.list_backfills(arg)]
        assert arg is not None
        if verb == "cancel":
            app.triggers.get_backfill(arg)  # an unknown id is NotFound, not a no-op
            app.triggers.cancel_backfill(arg)
        return as_dict(app.triggers.get_backfill(arg))


def _counts(view: dict[str, Any]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(view["counts"].items())) or "-"


@backfill.command("list")
@click.option("--workflow", "-w", default=None, help="Only this workflow's backfills.")
@db_option
@server_option
@output_option
def list_backfills(workflow: str | None, db: str | None, server: str | None, output: str) -> None:
    """Backfills, newest first, with how many of their runs are in each state."""
    rows = _backfills(db, server, "list", workflow)
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None, header_style="bold")
    for column in ("BACKFILL", "WORKFLOW", "STATE", "CREATED", "MAX ACTIVE", "RUNS", "STARTED"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            escape(r["id"]),
            escape(r["workflow"]),
            state_text(r["state"]),
            f"{r['created']}/{r['total']}",
            str(r["max_active"]),
            _counts(r),
            when(r["created_at"]),
        )
    console.print(table)


def _print_backfill(view: dict[str, Any]) -> None:
    console.print(f"backfill {view['id']}  {view['state']}", markup=False)
    for label, value in (
        ("workflow", f"{view['workflow']} ({view['version']})"),
        ("schedule", view["schedule_key"]),
        ("range", f"{when(view['start'])} .. {when(view['end'])}"),
        ("created", f"{view['created']} of {view['total']} runs"),
        ("max active", view["max_active"]),
        ("runs", _counts(view)),
        ("started", when(view["created_at"])),
        ("finished", when(view["finished_at"])),
    ):
        console.print(f"  {label:<11} {value}", markup=False)


@backfill.command("show")
@click.argument("backfill_id")
@db_option
@server_option
@output_option
def show_backfill(backfill_id: str, db: str | None, server: str | None, output: str) -> None:
    """One backfill: its range, progress and its runs' states."""
    view = _backfills(db, server, "show", backfill_id)
    if output == "json":
        click.echo(json.dumps(view, indent=2))
        return
    _print_backfill(view)


@backfill.command("cancel")
@click.argument("backfill_id")
@db_option
@server_option
@output_option
def cancel_backfill(backfill_id: str, db: str | None, server: str | None, output: str) -> None:
    """Stop a backfill: it creates no more runs and its unfinished runs are canceled."""
    view = _backfills(db, server, "cancel", backfill_id)
    if output == "json":
        click.echo(json.dumps(view, indent=2))
        return
    _print_backfill(view)


@click.group()
def events() -> None:
    """Send events that start workflows with matching triggers."""


@events.command("send")
@click.argument("event_type")
@click.argument("payload", default="null")
@click.option("--id", "event_id", default=None, help="De-duplication id.")
@click.option("--server", envvar="ORCHESTRION_SERVER", default=None)
@click.option("--db", envvar="ORCHESTRION_DATABASE_URL", default=None)
def send(
    event_type: str, payload: str, event_id: str | None, server: str | None, db: str | None
) -> None:
    """Send EVENT_TYPE with a JSON PAYLOAD."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        errors.print(f"error: payload is not JSON: {exc}", markup=False)
        sys.exit(2)
    try:
        if server:
            receipt = api_request(
                server,
                "POST",
                "/api/v1/events",
                {"type": event_type, "payload": data, "id": event_id},
            )
            runs = receipt["run_ids"]
        else:
            from orchestrion.app import App  # locally only: see `common.opened`
            from orchestrion.app.settings import Settings

            with App(Settings.from_env(db=db), actor=cli_actor()) as app:
                runs = app.triggers.send_event(event_type, data, event_id, source="cli")
    except OrchestrionError as exc:
        errors.print(f"error: {exc}", markup=False)
        sys.exit(2)
    console.print(f"started {len(runs)} run(s): {' '.join(runs)}", markup=False)

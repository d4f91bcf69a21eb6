"""``orchestrion schedules list``, ``workers list`` and ``tasks mark``.

Each reads or changes the local database through `App`, or a server through its REST API
with ``--server`` (``ORCHESTRION_SERVER``). Both sides build the API's own JSON view
(`api.schemas` models, or the route's ``as_dict``), so ``-o json`` prints exactly what the
API returns and a table looks the same either way.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click
from rich.markup import escape
from rich.table import Table

from orchestrion.cli.common import console, db_option, opened, output_option, remote, server_option
from orchestrion.cli.render import state_text, when
from orchestrion.store.record import as_dict

__all__ = ["print_json", "schedules", "tasks", "workers"]

View = dict[str, Any]


def print_json(data: Any) -> None:
    """`data` (already the API's JSON shape) as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2))


# ------------------------------------------------------------------------- schedules


@click.group()
def schedules() -> None:
    """Schedules of the current workflow versions, and when each fires next."""


def _local_schedules(db: str | None) -> list[View]:
    with opened(db) as app:
        out = []
        for info in app.triggers.list_schedules():
            item = as_dict(info)
            item["schedule"] = info.schedule.model_dump(mode="json")  # as the API shows it
            out.append(item)
        return out


@schedules.command("list")
@click.option("--workflow", "-w", default=None, help="Only this workflow's schedules.")
@db_option
@server_option
@output_option
def list_schedules(workflow: str | None, db: str | None, server: str | None, output: str) -> None:
    """Every schedule: its workflow, what it is, whether it is paused, its last and next
    fire."""
    if server is None:
        rows = _local_schedules(db)
    else:
        with remote(server) as api:
            rows = list(api.call("GET", "/api/v1/schedules"))
    # The API lists them all: filtered here, on both sides, so that they answer the same
    # (an unknown workflow has no schedules).
    rows = [r for r in rows if workflow is None or r["workflow"] == workflow]
    if output == "json":
        print_json(rows)
        return
    table = Table(box=None, header_style="bold")
    for column in ("WORKFLOW", "SCHEDULE", "WHEN", "PAUSED", "LAST FIRE", "NEXT FIRE"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            escape(r["workflow"]),
            escape(r["name"]),
            escape(r["describe"]),
            "yes" if r["paused"] else "no",
            when(r["last_fire"]),
            when(r["next_fire"]),
        )
    console.print(table)


# --------------------------------------------------------------------------- workers


@click.group()
def workers() -> None:
    """Worker processes: where they run, their queues, what they are running."""


def _local_workers(db: str | None) -> list[View]:
    from orchestrion.api.schemas import Worker, WorkerTask

    with opened(db) as app:
        running = app.reads.running_by_worker()
        return [
            Worker.of(w, running=[WorkerTask.of(t) for t in running.get(w.id, [])]).model_dump(
                mode="json"
            )
            for w in app.reads.list_workers()
        ]


@workers.command("list")
@click.option("--all", "show_all", is_flag=True, help="Stopped and lost workers too.")
@db_option
@server_option
@output_option
def list_workers(show_all: bool, db: str | None, server: str | None, output: str) -> None:
    """Known workers (running ones unless --all), with their heartbeat and running tasks."""
    if server is None:
        rows = _local_workers(db)
    else:
        with remote(server) as api:
            rows = list(api.call("GET", "/api/v1/workers"))
    if not show_all:
        rows = [r for r in rows if r["state"] == "running"]
    if output == "json":
        print_json(rows)
        return
    table = Table(box=None, header_style="bold")
    for column in ("WORKER", "HOST", "PID", "STATE", "QUEUES", "LABELS", "HEARTBEAT", "RUNNING"):
        table.add_column(column)
    for r in rows:
        labels = ",".join(f"{k}={v}" for k, v in sorted(r["labels"].items()))
        table.add_row(
            escape(r["id"]),
            escape(r["host"]),
            str(r["pid"]),
            state_text(r["state"]),
            escape(",".join(r["queues"])),
            escape(labels) or "-",
            when(r["heartbeat_at"]),
            str(len(r["running"])),
        )
    console.print(table)


# ----------------------------------------------------------------------------- tasks


@click.group()
def tasks() -> None:
    """Act on one task of a run."""


@tasks.command("mark")
@click.argument("run_id")
@click.argument("task")
@click.argument("state", type=click.Choice(["succeeded", "failed"]))
@db_option
@server_option
@output_option
def mark(
    run_id: str, task: str, state: str, db: str | None, server: str | None, output: str
) -> None:
    """Set TASK's outcome in RUN_ID by hand. Marking a failed task succeeded lets its
    downstream tasks run (a finished run resumes, on a worker)."""
    if server is None:
        from orchestrion.api.schemas import Run

        with opened(db) as app:
            run = app.runs.mark_task(run_id, task, succeeded=state == "succeeded")
            view: View = Run.of(run).model_dump(mode="json")
    else:
        path = f"/api/v1/runs/{quote(run_id)}/tasks/{quote(task)}/mark"
        with remote(server) as api:
            view = dict(api.call("POST", path, json={"outcome": state}))
    if output == "json":
        print_json(view)
        return
    console.print(
        f"run {view['id']}: {task} marked {state}; the run is {view['state']}", markup=False
    )
